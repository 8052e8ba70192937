#!/usr/bin/env bash
# The cost of accounting under load (issue 9): switchyard with no limits (realistic.yaml), with
# limits + budget + cost on the memory store, and the same on a Redis store (a private
# redis-server on loopback). Same mock, same load (oha, 16 connections, N requests a case),
# cases interleaved over ROUNDS rounds. Reports per case: requests/s, the gateway's CPU per
# request (user+system from /proc), redis-server's CPU per request, and Redis script calls
# per request (INFO commandstats: evalsha + eval), which is the round-trip count.
#
#   bash load-tests/accounting.sh          # N=4000, ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${N:-4000}
ROUNDS=${ROUNDS:-3}
OUT=$ROOT/load-tests/out/accounting
OHA=$ROOT/load-tests/.tools/bin/oha
MOCK=19601; SY=19602; REDIS=19603
mkdir -p "$OUT"
rm -f "$OUT"/*.log
[ -x "$OHA" ] || cargo install -q oha --version 1.16.0 --locked --root "$ROOT/load-tests/.tools"
command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
SY_BIN=${SWITCHYARD_BIN:-$ROOT/target/release/switchyard}   # another build of switchyard, if set
if [ -n "${SWITCHYARD_BIN:-}" ]; then
  cargo build -q --release -p mock-upstream --bins
else
  cargo build -q --release --workspace --bins
fi
for port in $MOCK $SY $REDIS; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (a leftover from an interrupted run?): stop it first" >&2; exit 1
  fi
done
export RUST_LOG=warn
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
ticks() { read -r -a f < "/proc/$1/stat"; echo $(( f[13] + f[14] )); }
rcli() { # a Redis command over /dev/tcp, inline protocol; prints the reply
  exec 5<>"/dev/tcp/127.0.0.1/$REDIS"; printf '%s\r\n' "$*" >&5
  timeout 2 cat <&5 | head -c 65536 || true; exec 5>&-
}
script_calls() { rcli INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_eval(sha)?:/ {n += $3} END {print n+0}'; }

"$ROOT/target/release/mock-upstream" "127.0.0.1:$MOCK" mock >"$OUT/mock.log" 2>&1 &
PIDS+=($!)
redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!; PIDS+=($REDIS_PID)
sed 's|^ratelimit: .*|ratelimit: { store: redis, url: "redis://127.0.0.1:'"$REDIS"'" }|' \
  load-tests/realistic-accounted.yaml >"$OUT/realistic-redis.yaml"

body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":8}'
run_case() { # name config
  RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load \
    "$SY_BIN" --config "$2" >>"$OUT/$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$SY/healthz" && break; sleep 0.1; done
  "$OHA" --no-tui -n 300 -c 16 -m POST -H "authorization: Bearer sk-load" -d "$body" \
    "http://127.0.0.1:$SY/v1/chat/completions" >/dev/null
  local t0 r0 c0; t0=$(ticks "$pid"); r0=$(ticks "$REDIS_PID"); c0=$(script_calls)
  "$OHA" --no-tui -n "$N" -c 16 -m POST -H "content-type: application/json" \
    -H "authorization: Bearer sk-load" -d "$body" --output-format json \
    "http://127.0.0.1:$SY/v1/chat/completions" >"$OUT/oha-$1.json"
  sleep 0.3 # queued settlements reach Redis
  local t1 r1 c1; t1=$(ticks "$pid"); r1=$(ticks "$REDIS_PID"); c1=$(script_calls)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$OUT/oha-$1.json" "$1" "$N" "$((t1 - t0))" "$((r1 - r0))" "$((c1 - c0))" "$HZ" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); name = sys.argv[2]; n = int(sys.argv[3])
gw, rd, calls, hz = (int(x) for x in sys.argv[4:8])
codes = d["statusCodeDistribution"]
assert codes.get("200", 0) == n, f"{name}: not all 200: {codes}"
print(f"{name}\t{d['summary']['requestsPerSec']:.0f}\t{gw / hz / n * 1e6:.1f}\t{rd / hz / n * 1e6:.1f}\t{calls / n:.3f}")
PY
}

{
  printf 'case\treq/s\tgateway CPU us/req\tredis CPU us/req\tredis script calls/req\n'
  for _ in $(seq "$ROUNDS"); do
    run_case no-limits load-tests/realistic.yaml
    run_case memory-store load-tests/realistic-accounted.yaml
    run_case redis-store "$OUT/realistic-redis.yaml"
  done
} | tee "$OUT/summary.tsv"
