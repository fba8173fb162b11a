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

source bench/common.sh
install_missing wrk:wrk nginx:nginx-light valgrind:valgrind
# Release speed with line tables, so `callgrind_annotate` on the kept output names functions.
cargo build --profile profiling --quiet --bin alertrelay --example forwarder --example render_count
start_robot
write_payloads

# count NAME PAYLOAD PROFILE COMMAND... -> instructions per delivery after a warm-up
count() {
  local name=$1 payload=$2 profile=$3 port vg requests instructions
  shift 3
  port=$(free_port)
  local cmd=("$@")
  cmd=("${cmd[@]//PORT/$port}")
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "${cmd[@]}" > "$work/$name.log" 2>&1 &
  vg=$!; pids+=($vg)
  wait_port "$port"
  local url="http://127.0.0.1:$port/dingtalk/$profile/send"
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
count forwarder "$work/1.json" bench ./target/profiling/examples/forwarder 127.0.0.1:PORT "$robot"
# The shipped template (profile `bench`) and an operator's edited copy (`edited`).
for profile in bench edited; do
  for n in 1 10; do
    # Under valgrind /proc/self/exe is valgrind's tool: name the binary workers start from.
    ALERTRELAY_RENDER_WORKER=./target/profiling/alertrelay \
      count "alertrelay-$profile-$n" "$work/$n.json" "$profile" ./target/profiling/alertrelay --config.file="$work/profiles.yaml" --web.listen-address=127.0.0.1:PORT
  done
done

# What a render worker spends composing one message (render and fit to the cap), without the
# round trip: callgrind's count for 200 composes minus that for none, over 200.
echo "user-space instructions per compose in a render worker (the shipped template, and an edited copy)"
write_templates
compose_count() {
  valgrind --tool=callgrind --callgrind-out-file="$work/compose.out" ./target/profiling/examples/render_count "$@" > /dev/null 2>&1
  awk '/^summary:/ { print $2 }' "$work/compose.out"
}
for template in - edited.md.tera; do
  for n in 1 10; do
    none=$(compose_count "$work/$n.json" "$work/templates" "$template" 0)
    many=$(compose_count "$work/$n.json" "$work/templates" "$template" 200)
    printf '%-28s %10d instructions per compose\n' "$([ "$template" = - ] && echo shipped || echo edited), $n alert(s)" $(((many - none) / 200))
  done
done
# The other channels' shipped templates (a 10-alert WeCom markdown message passes its
# 4096-byte cap, so it is cut: several renders).
for channel in wecom:http://127.0.0.1:1/cgi-bin/webhook/send?key=k feishu:http://127.0.0.1:1/open-apis/bot/v2/hook/t; do
  for n in 1 10; do
    none=$(compose_count "$work/$n.json" "$work/templates" - 0 "${channel#*:}")
    many=$(compose_count "$work/$n.json" "$work/templates" - 200 "${channel#*:}")
    printf '%-28s %10d instructions per compose\n' "${channel%%:*} shipped, $n alert(s)" $(((many - none) / 200))
  done
done
