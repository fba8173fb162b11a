#!/usr/bin/env bash
# Instructions per delivery, counted by valgrind's callgrind: user-space instructions of the
# gateway process (alertrelay, or the do-nothing forwarder) per webhook, for a 1-alert and a
# 10-alert payload. Unlike deliveries/s on a shared 2-core host, the count moves by a few
# tenths of a percent between runs, so it shows what a change to the hot path is worth.
# It leaves out the kernel's share and the cost of allocations touching memory, so confirm
# wins with bench/load.sh.
#   bash bench/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_MEASURED=${SECONDS_MEASURED:-6}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v valgrind >/dev/null || missing+=(valgrind)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Release speed with line tables, so `callgrind_annotate` on the kept output names functions.
cargo build --profile profiling --quiet --bin alertrelay --example forwarder

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; return 1
}

robot_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_header_buffer_size 16k;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$robot_port;
    location / { default_type application/json; return 200 '{"errcode":0,"errmsg":"ok"}'; }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)
wait_port "$robot_port"
robot="http://127.0.0.1:$robot_port/robot/send?access_token=bench"
printf 'profiles:\n  bench:\n    url: %s\n    rate_limit: 0\n' "$robot" > "$work/profiles.yaml"

python3 - "$work" <<'PY'
import json, sys
base = json.load(open("tests/data/firing_single.json"))
json.dump(base, open(sys.argv[1] + "/1.json", "w"), ensure_ascii=False)
ten = dict(base)
alert = base["alerts"][0]
ten["alerts"] = [dict(alert, labels=dict(alert["labels"], instance=f"10.0.0.{i}:9100"), fingerprint=f"{i:016x}") for i in range(10)]
json.dump(ten, open(sys.argv[1] + "/10.json", "w"), ensure_ascii=False)
PY

# count NAME PAYLOAD COMMAND... -> instructions per delivery after a warm-up
count() {
  local name=$1 payload=$2 port vg requests instructions
  shift 2
  port=$(free_port)
  local cmd=("$@")
  cmd=("${cmd[@]//PORT/$port}")
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "${cmd[@]}" > "$work/$name.log" 2>&1 &
  vg=$!; pids+=($vg)
  wait_port "$port"
  local url="http://127.0.0.1:$port/dingtalk/bench/send"
  PAYLOAD="$payload" timeout 60 wrk -t1 -c4 -d2s -s bench/post.lua "$url" > /dev/null
  callgrind_control -z "$vg" > /dev/null 2>&1
  PAYLOAD="$payload" timeout 60 wrk -t1 -c4 -d"${SECONDS_MEASURED}s" -s bench/post.lua "$url" > "$work/$name.wrk"
  callgrind_control -d "$vg" > /dev/null 2>&1
  kill "$vg"; wait "$vg" 2>/dev/null || true
  requests=$(grep -oP '\d+(?= requests in)' "$work/$name.wrk")
  instructions=$(awk '/^summary:/ { print $2 }' "$work/$name.out.1")
  printf '%-28s %10d instructions per delivery (%d deliveries)\n' "$name" $((instructions / requests)) "$requests"
  cp "$work/$name.out.1" "target/callgrind.$name.out"
}

echo "user-space instructions per delivery, callgrind; annotate with: callgrind_annotate --inclusive=yes target/callgrind.<run>.out"
count forwarder "$work/1.json" ./target/profiling/examples/forwarder 127.0.0.1:PORT "$robot"
for n in 1 10; do
  count "alertrelay-$n" "$work/$n.json" ./target/profiling/alertrelay --config.file="$work/profiles.yaml" --web.listen-address=127.0.0.1:PORT
done
