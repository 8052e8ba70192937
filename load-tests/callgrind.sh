#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: repeatable where wall-clock and
# CPU-time numbers on this shared VM drift by ±40 % within an hour.
#
#   bash load-tests/callgrind.sh            # N=2000 requests after a 300-request warm-up
#   (with realistic-accounted.yaml present, also switchyard with limits, budget and cost on)
#   BASELINE_BIN=/path/to/old/switchyard bash load-tests/callgrind.sh   # also an earlier build
#   SWITCHYARD_BIN=/path/to/switchyard bash load-tests/callgrind.sh     # that build instead of this tree
#   TRANSLATED=1 bash load-tests/callgrind.sh   # also the translated paths (issue 8):
#       Anthropic client -> OpenAI upstream, plain and streamed
#
# Runs the mock upstream natively, then each proxy under `valgrind --tool=callgrind` with
# collection zeroed after the warm-up, sends N small chat completions over 8 keep-alive
# connections (oha), dumps, and prints instructions per request: the bare Pingora proxy
# (examples/bare_proxy.rs) and switchyard with the realistic configuration (realistic.yaml).
# Profiles stay in load-tests/out/callgrind/ for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${N:-2000}
WARM=${WARM:-300}
OUT=$ROOT/load-tests/out/callgrind
OHA=$ROOT/load-tests/.tools/bin/oha
MOCK=19401; BARE=19402; SY=19403
mkdir -p "$OUT"
rm -f "$OUT"/*.out* "$OUT"/*.log

command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
[ -x "$OHA" ] || cargo install -q oha --version 1.16.0 --locked --root "$ROOT/load-tests/.tools"
# SWITCHYARD_BIN: measure that build of switchyard instead of this tree's (e.g. an issue's
# last commit, built elsewhere); the mock and the bare proxy still come from this tree.
SY_BIN=${SWITCHYARD_BIN:-$ROOT/target/release/switchyard}
if [ -n "${SWITCHYARD_BIN:-}" ]; then
  cargo build -q --release -p mock-upstream --bins
else
  cargo build -q --release --workspace --bins
fi
cargo build -q --release --example bare_proxy

for port in $MOCK $BARE $SY; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (a leftover from an interrupted run?): stop it first" >&2; exit 1
  fi
done
export RUST_LOG=warn
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$ROOT/target/release/mock-upstream" "127.0.0.1:$MOCK" mock >"$OUT/mock.log" 2>&1 &
PIDS+=($!)


body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":8}'
endpoint=/v1/chat/completions
load() { # port count
  "$OHA" --no-tui -n "$2" -c 8 -m POST -H "content-type: application/json" \
    -H "authorization: Bearer sk-load" -H "anthropic-version: 2023-06-01" -d "$body" --output-format json \
    "http://127.0.0.1:$1$endpoint" >"$OUT/oha.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["statusCodeDistribution"]; ok=c.get("200",0); sys.exit(0 if ok==int(sys.argv[2]) else "not all 200: %s" % c)' "$OUT/oha.json" "$2"
}
measure() { # name port command...
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.%p.out" "$@" >"$OUT/$name.log" 2>&1 &
  local pid=$!; PIDS+=($pid)
  for _ in $(seq 120); do curl -fs -o /dev/null "http://127.0.0.1:$port/v1/models" -H "authorization: Bearer sk-load" && break; sleep 0.5; done
  load "$port" "$WARM"
  callgrind_control -z "$pid" >/dev/null 2>&1
  load "$port" "$N"
  callgrind_control -d "$pid" >/dev/null 2>&1
  local f; f=$(ls -t "$OUT/$name".*.out.* | head -1)
  local total; total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  printf '%s\t%s\t%s\n' "$name" "$total" "$(( total / N ))"
}

{
  printf 'proxy\tinstructions\tper request\n'
  measure pingora-bare "$BARE" "$ROOT/target/release/examples/bare_proxy" "127.0.0.1:$BARE" "127.0.0.1:$MOCK"
  if [ -n "${BASELINE_BIN:-}" ]; then
    # An earlier build (e.g. the commit before an issue), same config, same mock, same run.
    RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load \
      measure switchyard-baseline "$SY" "$BASELINE_BIN" --config "$ROOT/load-tests/realistic.yaml"
  fi
  RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load \
    measure switchyard "$SY" "$SY_BIN" --config "$ROOT/load-tests/realistic.yaml"
  if [ -f "$ROOT/load-tests/realistic-accounted.yaml" ]; then
    # Limits (key and model), a budget and cost on, memory store (issue 9).
    RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load \
      measure switchyard-accounted "$SY" "$SY_BIN" --config "$ROOT/load-tests/realistic-accounted.yaml"
  fi
  if [ -n "${TRANSLATED:-}" ]; then
    endpoint=/v1/messages
    body='{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"Say hello in one word."}]}'
    RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load \
      measure messages-to-openai "$SY" "$SY_BIN" --config "$ROOT/load-tests/realistic.yaml"
    body='{"model":"gpt-4o-mini","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"Say hello in one word."}]}'
    RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load \
      measure messages-to-openai-stream "$SY" "$SY_BIN" --config "$ROOT/load-tests/realistic.yaml"
    endpoint=/v1/chat/completions
    body='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":8}'
    RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load \
      measure chat-stream-same-dialect "$SY" "$SY_BIN" --config "$ROOT/load-tests/realistic.yaml"
  fi
} | tee "$OUT/summary.tsv"
