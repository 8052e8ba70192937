#!/usr/bin/env bash
# Added latency of one small non-streaming chat request through switchyard, against the same
# mock upstream called directly, measured back to back in one run (machines here are noisy,
# so only the ratio is meaningful). Sequential requests (1 connection) isolate per-request cost.
#   bash load-tests/latency.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --workspace --bins -q
mock_port=19181; gw_port=19180
./target/release/mock-upstream 127.0.0.1:$mock_port lat >/dev/null &
mock=$!
OPENAI_API_KEY=sk-upstream OPENAI_BASE_URL=http://127.0.0.1:$mock_port/v1 SWITCHYARD_API_KEYS=sk-load \
  SWITCHYARD_LISTEN=127.0.0.1:$gw_port RUST_LOG=warn ./target/release/switchyard 2>/dev/null &
gw=$!
trap 'kill $mock $gw 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs -o /dev/null 127.0.0.1:$gw_port/healthz && break; sleep 0.1; done

run() { # url -> "p50_us p99_us rps"
  wrk -t1 -c1 -d"${secs}s" --latency -s load-tests/chat.lua "$1" 2>/dev/null | awk '
    function us(v){ if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1000000; return v }
    / 50%/ {p50=us($2)} / 99%/ {p99=us($2)} /Requests\/sec/ {rps=$2}
    END {printf "%.0f %.0f %.0f\n", p50, p99, rps}'
}
# Warm both paths, then measure: direct, gateway, direct again (drift check).
MODEL=gpt-4o-mini wrk -t1 -c1 -d2s -s load-tests/chat.lua http://127.0.0.1:$mock_port/v1/chat/completions >/dev/null
MODEL=openai/gpt-4o-mini wrk -t1 -c1 -d2s -s load-tests/chat.lua http://127.0.0.1:$gw_port/v1/chat/completions >/dev/null
read d1_p50 d1_p99 d1_rps < <(MODEL=gpt-4o-mini run http://127.0.0.1:$mock_port/v1/chat/completions)
read g_p50 g_p99 g_rps < <(MODEL=openai/gpt-4o-mini run http://127.0.0.1:$gw_port/v1/chat/completions)
read d2_p50 d2_p99 d2_rps < <(MODEL=gpt-4o-mini run http://127.0.0.1:$mock_port/v1/chat/completions)
d_p50=$(( (d1_p50 + d2_p50) / 2 )); d_p99=$(( (d1_p99 + d2_p99) / 2 ))
echo "path      p50_us  p99_us  req/s"
echo "direct1   $d1_p50  $d1_p99  $d1_rps"
echo "gateway   $g_p50  $g_p99  $g_rps"
echo "direct2   $d2_p50  $d2_p99  $d2_rps"
awk -v g=$g_p50 -v d=$d_p50 -v g99=$g_p99 -v d99=$d_p99 'BEGIN {
  printf "p50 ratio gateway/direct: %.2f (added %.0f us); p99 ratio %.2f (added %.0f us)\n", g/d, g-d, g99/d99, g99-d99 }'
