# What the bench scripts share, sourced by bench/load.sh and bench/instructions.sh: the
# Debian packages they need, a scratch directory cleaned up on exit, ports, the nginx robot
# double and the 1- and 10-alert payloads. Sets `work`, `pids` and, after start_robot, `robot`
# and "$work/profiles.yaml" (profiles `bench` and `edited` on DingTalk, `wecom` and `feishu`).

# install_missing COMMAND:PACKAGE ... — apt-get installs the packages of missing commands.
install_missing() {
  local missing=() pair sudo=""
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT — until something listens there (60 s at most: valgrind starts slowly).
wait_port() {
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; return 1
}

# start_robot — nginx playing a DingTalk robot that always answers errcode 0, and a
# profiles.yaml with one profile pointing at it, its rate budget off.
start_robot() {
  local port
  port=$(free_port)
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  # The whole request in one read: with the default 1k, a 5 KB message costs nginx four
  # syscalls instead of one (on the cores the gateway shares), which is the double's cost,
  # not the gateway's.
  client_header_buffer_size 16k;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$port;
    location / { default_type application/json; return 200 '{"errcode":0,"errmsg":"ok"}'; }
    location /open-apis/ { default_type application/json; return 200 '{"code":0,"msg":"success","data":{}}'; }
  }
}
CONF
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)
  wait_port "$port"
  robot="http://127.0.0.1:$port/robot/send?access_token=bench"
  # Profile `bench` uses the shipped template; `edited` an operator's copy of it.
  write_templates
  # Profile `budget` has a rate budget too high to spend: every message takes a slot (from
  # Redis, with state.redis), one request at a time per robot as always.
  printf 'templates: templates\nprofiles:\n  bench:\n    url: %s\n    rate_limit: 0\n  edited:\n    url: %s\n    rate_limit: 0\n    template: edited.md.tera\n  wecom:\n    url: %s\n    rate_limit: 0\n  feishu:\n    url: %s\n    rate_limit: 0\n  budget:\n    url: %s\n    rate_limit: 100000000\n' \
    "$robot" "$robot" "http://127.0.0.1:$port/cgi-bin/webhook/send?key=bench" "http://127.0.0.1:$port/open-apis/bot/v2/hook/bench" "${robot/access_token=bench/access_token=budget}" > "$work/profiles.yaml"
}

# write_templates — $work/templates/edited.md.tera: the shipped markdown template as an
# operator's edit starts, one comment line added; it must render as fast (one template path).
write_templates() {
  mkdir -p "$work/templates"
  { echo '{# edited by an operator #}'; cat templates/default.md.tera; } > "$work/templates/edited.md.tera"
}

# write_payloads — $work/1.json (a captured single-alert webhook) and $work/10.json (ten
# alerts of it, each with its own instance and fingerprint).
write_payloads() {
  python3 - "$work" <<'PY'
import json, sys
base = json.load(open("tests/data/firing_single.json"))
json.dump(base, open(sys.argv[1] + "/1.json", "w"), ensure_ascii=False)
ten = dict(base)
alert = base["alerts"][0]
ten["alerts"] = [dict(alert, labels=dict(alert["labels"], instance=f"10.0.0.{i}:9100"), fingerprint=f"{i:016x}") for i in range(10)]
json.dump(ten, open(sys.argv[1] + "/10.json", "w"), ensure_ascii=False)
PY
}
