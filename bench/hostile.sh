#!/usr/bin/env bash
# Hostile-input benchmark (issue 13): what the attacks that used to take alertrelay down cost
# it now. Against the nginx robot double, release build, on 127.0.0.1:
#   1. memory: the gateway's peak RSS after a preview that doubles a string 24 times, after
#      five concurrent 31 MB webhooks, and after 100 concurrent previews of a 10,000-alert
#      payload (render workers are separate processes: their peak is printed apart);
#   2. webhooks while previews run: wrk's p50/p99 for the 10-alert webhook alone, then with
#      100 clients posting 10,000-alert previews in a loop.
#   bash bench/hostile.sh          # DURATION=20s for steadier figures
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
PROFILE=${PROFILE:-release}

source bench/common.sh
install_missing wrk:wrk nginx:nginx-light
cargo build --profile "$PROFILE" --quiet --bin alertrelay

start_robot
port=$(free_port)
./target/"$PROFILE"/alertrelay --config.file="$work/profiles.yaml" --web.listen-address="127.0.0.1:$port" 2>"$work/alertrelay.log" & pid=$!; pids+=($pid)
wait_port "$port"
write_payloads
base="http://127.0.0.1:$port"

kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
workers() { cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true; }
report() {
  local peak=0 w
  for w in $(workers); do peak=$(( $(kb "$w" VmHWM || echo 0) > peak ? $(kb "$w" VmHWM) : peak )); done
  printf '%-58s gateway RSS %4d MB, peak %4d MB; largest worker peak %4d MB\n' "$1" \
    $(( $(kb "$pid" VmRSS) / 1024 )) $(( $(kb "$pid" VmHWM) / 1024 )) $(( peak / 1024 ))
}

echo "machine: $(nproc) cores; profile ${PROFILE}; $(date -u +%F)"
report "idle"

python3 - "$base" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
text = '{% set s = "xxxxxxxxxxxxxxxx" %}' + '{% set s = s ~ s %}' * 24 + '{{ s | length }}'
req = urllib.request.Request(base + "/preview/bench", json.dumps({"template": text}).encode())
try:
    urllib.request.urlopen(req, timeout=30)
    print("doubling preview: answered 200 (unexpected)")
except urllib.error.HTTPError as e:
    print(f"doubling preview: {e.code} {json.load(e).get('message')}")
PY
report "after the 24-doublings preview"

python3 - "$base" <<'PY'
import json, sys, threading, urllib.request
base = sys.argv[1]
body = json.dumps({"receiver": "x", "status": "firing", "alerts": [], "pad": "x" * (31 * 1024 * 1024)}).encode()
codes = []
def post():
    req = urllib.request.Request(base + "/dingtalk/bench/send", body, {"content-type": "application/json"})
    try:
        codes.append(urllib.request.urlopen(req, timeout=60).status)
    except urllib.error.HTTPError as e:
        codes.append(e.code)
    except Exception as e:
        codes.append(type(e).__name__)
threads = [threading.Thread(target=post) for _ in range(5)]
[t.start() for t in threads]; [t.join() for t in threads]
print("five 31 MB webhooks answered:", sorted(map(str, codes)))
PY
report "after five concurrent 31 MB webhooks"
sleep 2
report "  two seconds later"

python3 - "$work" <<'PY'
import json, sys
base = json.load(open("tests/data/firing_single.json"))
alert = base["alerts"][0]
base["alerts"] = [dict(alert, labels=dict(alert["labels"], instance=f"10.0.{i // 256}.{i % 256}:9100")) for i in range(10000)]
json.dump(base, open(sys.argv[1] + "/10000.json", "w"))
PY
cat > "$work/previews.py" <<'PY'
import sys, threading, time, urllib.request, collections
base, payload, seconds = sys.argv[1], open(sys.argv[2], "rb").read(), float(sys.argv[3])
codes = collections.Counter()
stop = time.time() + seconds
def loop():
    while time.time() < stop:
        req = urllib.request.Request(base + "/preview/bench", payload)
        try:
            codes[urllib.request.urlopen(req, timeout=30).status] += 1
        except urllib.error.HTTPError as e:
            codes[e.code] += 1
        except Exception as e:
            codes[type(e).__name__] += 1
threads = [threading.Thread(target=loop) for _ in range(100)]
[t.start() for t in threads]; [t.join() for t in threads]
print("previews answered:", dict(codes))
PY
python3 "$work/previews.py" "$base" "$work/10000.json" 5
report "after 100 concurrent 10,000-alert previews (5 s)"

wrk_run() {
  PAYLOAD="$work/10.json" timeout 120 wrk -t2 -c8 -d"$DURATION" --latency -s bench/post.lua "$base/dingtalk/bench/send" |
    awk '/Requests\/sec/ { rate = $2 } /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 } /Non-2xx/ { bad = $NF }
         END { printf "%8.0f/s  p50 %8s  p99 %8s  non-2xx %s\n", rate, p50, p99, bad + 0 }'
}
PAYLOAD="$work/10.json" timeout 30 wrk -t2 -c8 -d3s -s bench/post.lua "$base/dingtalk/bench/send" >/dev/null
printf '%-44s %s\n' "10-alert webhooks alone:" "$(wrk_run)"
python3 "$work/previews.py" "$base" "$work/10000.json" "${DURATION%s}" > "$work/previews.txt" & loader=$!
sleep 0.5
printf '%-44s %s\n' "10-alert webhooks, 100 previewers running:" "$(wrk_run)"
wait "$loader"; cat "$work/previews.txt"
report "at the end"
