#!/usr/bin/env bash
# Load benchmark: alertrelay against the do-nothing forwarder, both posting to nginx playing
# a DingTalk robot that always answers {"errcode":0,"errmsg":"ok"}, driven by wrk with
# 8 connections on 127.0.0.1. Prints deliveries/s, p50/p99 latency, idle and peak RSS and
# CPU seconds per 1,000 deliveries (alertrelay's with its render workers') for a 1-alert and
# a 10-alert payload, each through the shipped template, through an operator's edited
# copy of it, and through the shipped WeCom and Feishu templates to the same nginx (a WeCom
# path answers errcode 0, a Feishu one code 0), and the ratio to the forwarder (each run to a
# forwarder run just before it), measured in ROUNDS (default 3) rounds and summarised by the
# median. A third configuration, a second alertrelay sharing state
# through a redis-server on 127.0.0.1 (state.redis), gives the latency Redis adds per
# delivery (duplicate suppression's claim and record; with a rate budget, the shared
# budget's slot too: profile `budget`, beside the same profile without Redis). Every
# run is bounded: DURATION (default 10s) per load, 60 s for startup.
#   bash bench/load.sh            # ROUNDS=5 DURATION=20s bash bench/load.sh for steadier figures
#   PROFILE=dist bash bench/load.sh   # both built with link-time optimisation
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
PROFILE=${PROFILE:-release}   # or dist: both binaries built the same way
CONNECTIONS=${CONNECTIONS:-8}

source bench/common.sh
install_missing wrk:wrk nginx:nginx-light redis-server:redis-server
cargo build --profile "$PROFILE" --quiet --bin alertrelay --example forwarder

start_robot
relay_port=$(free_port)
./target/"$PROFILE"/alertrelay --config.file="$work/profiles.yaml" --web.listen-address="127.0.0.1:$relay_port" 2>"$work/alertrelay.log" & relay_pid=$!; pids+=($relay_pid)
forwarder_port=$(free_port)
./target/"$PROFILE"/examples/forwarder "127.0.0.1:$forwarder_port" "$robot" & forwarder_pid=$!; pids+=($forwarder_pid)
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null & pids+=($!)
wait_port "$redis_port"
{ printf 'state:\n  redis: redis://127.0.0.1:%s/0\n  key_prefix: bench\n' "$redis_port"; cat "$work/profiles.yaml"; } > "$work/profiles-redis.yaml"
shared_port=$(free_port)
./target/"$PROFILE"/alertrelay --config.file="$work/profiles-redis.yaml" --web.listen-address="127.0.0.1:$shared_port" 2>"$work/alertrelay-redis.log" & shared_pid=$!; pids+=($shared_pid)
wait_port "$relay_port"; wait_port "$forwarder_port"; wait_port "$shared_port"
sleep 1
write_payloads

rss_kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true; }
# CPU of a process and its children (alertrelay renders in worker processes): its own, that
# of children it reaped, and that of the live ones.
cpu_ticks() {
  local total c
  total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat")
  for c in $(children "$1"); do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0))); done
  echo "$total"
}
# Sum of the peak RSS of a process's children.
children_peak_kb() {
  local total=0 c
  for c in $(children "$1"); do total=$((total + $(rss_kb "$c" VmHWM 2>/dev/null || echo 0))); done
  echo "$total"
}
ticks_per_s=$(getconf CLK_TCK)
idle_rss=$(rss_kb "$relay_pid" VmRSS)
forwarder_idle_rss=$(rss_kb "$forwarder_pid" VmRSS)

# run NAME PID PORT PAYLOAD [PROFILE] -> "deliveries/s p50_ms p99_ms cpu_s_per_1000 non2xx
# socket_errors" (socket_errors 1 when wrk saw any)
run() {
  local pid=$2 port=$3 payload=$4 profile=${5:-bench} before after out path
  # DingTalk profiles at their own path, as receivers post them; the other channels at the
  # neutral one (the forwarder's path is the DingTalk one).
  path="/dingtalk/$profile/send"
  case $profile in wecom | feishu) path="/send/$profile" ;; esac
  before=$(cpu_ticks "$pid")
  out=$(PAYLOAD="$payload" timeout 120 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua "http://127.0.0.1:$port$path")
  after=$(cpu_ticks "$pid")
  echo "$out" > "$work/wrk-$1.txt"
  python3 - "$before" "$after" "$ticks_per_s" <<PY
import re, sys
out = open("$work/wrk-$1.txt").read()
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors = re.search(r"Socket errors: (.*)", out)
# Anchored: "81.50%" in the thread stats must not pass for the 50th percentile.
p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
cpu = (int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3])
non2xx = int(bad.group(1)) if bad else 0
print(f"{rate:.0f} {p50:.2f} {p99:.2f} {cpu / total * 1000:.3f} {non2xx} {1 if errors else 0}")
PY
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); profile ${PROFILE}; wrk ${CONNECTIONS} connections, ${DURATION} per run, ${ROUNDS} rounds; $(date -u +%F)"
# Warm-up, not counted: first requests pay for connection pools, allocator arenas, page faults.
for target in "$forwarder_port" "$relay_port" "$shared_port"; do
  PAYLOAD="$work/10.json" timeout 30 wrk -t2 -c"$CONNECTIONS" -d3s -s bench/post.lua "http://127.0.0.1:$target/dingtalk/bench/send" >/dev/null
done
label() {
  case $1 in bench) echo "shipped" ;; edited) echo "edited" ;; budget) echo "shipped, budget" ;; *) echo "$1 shipped" ;; esac
}
printf '%-34s %12s %8s %8s %14s %8s\n' "" "deliveries/s" "p50 ms" "p99 ms" "CPU s/1000" "non-2xx"
# Each alertrelay run is paired with a forwarder run just before it, and its ratio is to that
# run: on a shared host whose speed drifts within seconds, a forwarder measured once a round
# (a minute before the round's last rows) made ratios of the drift. The summary is the median
# of the rounds; the forwarder's row is the median of all its runs.
: > "$work/rounds.txt"
# paired NAME PID PORT PAYLOAD PROFILE LABEL — a forwarder run, then this one, and the ratio.
paired() {
  local name=$1 pid=$2 port=$3 payload=$4 profile=$5 label=$6 f_rate f_p50 f_p99 f_cpu f_bad f_errs rate p50 p99 cpu bad errs ratio
  read -r f_rate f_p50 f_p99 f_cpu f_bad f_errs <<<"$(run forwarder "$forwarder_pid" "$forwarder_port" "$work/1.json")"
  echo "forwarder $f_rate $f_p50 $f_p99 $f_cpu $f_bad 1" >> "$work/rounds.txt"
  read -r rate p50 p99 cpu bad errs <<<"$(run "$name" "$pid" "$port" "$payload" "$profile")"
  ratio=$(python3 -c "print(f'{$rate / $f_rate:.2f}')")
  printf '%-34s %12s %8s %8s %14s %8s   ratio %s (forwarder just before: %s)%s\n' "$label" "$rate" "$p50" "$p99" "$cpu" "$bad" "$ratio" "$f_rate" \
    "$([ "$errs$f_errs" = 00 ] || echo '   socket errors')"
  echo "$name $rate $p50 $p99 $cpu $bad $ratio" >> "$work/rounds.txt"
}
for round in $(seq "$ROUNDS"); do
  # The shipped template and an operator's edited copy (profile `edited`), and the shipped
  # WeCom markdown and Feishu card templates, in the same round.
  for profile in bench edited wecom feishu; do
    for n in 1 10; do
      paired "$profile$n" "$relay_pid" "$relay_port" "$work/$n.json" "$profile" "[$round] alertrelay, $(label "$profile"), $n"
    done
  done
  # Redis beside it: the shipped template through state.redis, and a rate budget's slots
  # without Redis and with it.
  for row in "bench 1 redis" "bench 10 redis" "budget 1 local" "budget 1 redis"; do
    read -r profile n where <<<"$row"
    pid=$relay_pid; port=$relay_port; name="$profile$n"
    [ "$where" = redis ] && { pid=$shared_pid; port=$shared_port; name="redis-$profile$n"; }
    paired "$name" "$pid" "$port" "$work/$n.json" "$profile" "[$round] alertrelay, $(label "$profile"), $n ($where)"
  done
done
forwarder_peak=$(rss_kb "$forwarder_pid" VmHWM)
echo "median of $ROUNDS rounds (non-2xx: the total):"
python3 - "$work/rounds.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *values = line.split()
    rows.setdefault(name, []).append([float(v) for v in values])
labels = {"forwarder": "forwarder, 1 alert",
          "bench1": "alertrelay, shipped, 1 alert", "bench10": "alertrelay, shipped, 10 alerts",
          "edited1": "alertrelay, edited, 1 alert", "edited10": "alertrelay, edited, 10 alerts",
          "wecom1": "alertrelay, wecom shipped, 1 alert", "wecom10": "alertrelay, wecom shipped, 10 alerts",
          "feishu1": "alertrelay, feishu shipped, 1 alert", "feishu10": "alertrelay, feishu shipped, 10 alerts",
          "redis-bench1": "+redis, shipped, 1 alert", "redis-bench10": "+redis, shipped, 10 alerts",
          "budget1": "budget, shipped, 1 alert", "redis-budget1": "+redis, budget, shipped, 1 alert"}
for name, label in labels.items():
    rate, p50, p99, cpu, _, ratio = (statistics.median(column) for column in zip(*rows[name]))
    worst_p99 = max(r[2] for r in rows[name])
    bad = sum(r[4] for r in rows[name])  # every failed answer counts, in any round
    tail = "" if name == "forwarder" else f"   ratio {ratio:.2f}"
    print(f"{label:<34} {rate:>12.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>14.3f} {bad:>8.0f}{tail}   (worst p99 {worst_p99:.2f} ms)")
PY
echo "alertrelay RSS: idle $((idle_rss / 1024)) MB, peak under load $(( $(rss_kb "$relay_pid" VmHWM) / 1024 )) MB, its render workers' peaks together $(( $(children_peak_kb "$relay_pid") / 1024 )) MB (forwarder: idle $((forwarder_idle_rss / 1024)) MB, peak $((forwarder_peak / 1024)) MB)"
