#!/usr/bin/env bash
# The operations test under load (issue 7): steady keep-alive load, mixed streaming and
# non-streaming, while the operator in turn sends a valid SIGHUP, an invalid SIGHUP (a broken
# config file), performs a binary upgrade (`--upgrade` then SIGQUIT to the old process) and
# finally a SIGTERM. Prints the failed requests per operation; the target is zero for each.
#
#   bash load-tests/ops.sh                 # debug build (the one `cargo build` made)
#   PROFILE=release bash load-tests/ops.sh
#   GAP=8 JSON=8 STREAMS=8 bash load-tests/ops.sh
#
# Everything listens on 127.0.0.1 and stops by itself (about 50 s with GAP=8). The load
# client is `opsload` (load-tests/mock-upstream/src/bin/opsload.rs): each client keeps one
# connection and sends request after request; a request fails when it was sent and got no
# complete 200 answer. For the SIGTERM row only requests in flight when the signal is sent
# count: after it the listener is closed on purpose, and what starts then is reported apart.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROFILE=${PROFILE:-debug}
GAP=${GAP:-8}            # seconds of steady load before and after each operation
JSON=${JSON:-8}          # keep-alive clients sending non-streamed requests
STREAMS=${STREAMS:-8}    # keep-alive clients sending streamed requests (~0.3 s each)
MOCK_PORT=${MOCK_PORT:-19410}
PORT=${PORT:-19411}
BIN=$ROOT/target/$PROFILE
OUT=$(mktemp -d /tmp/switchyard-ops.XXXXXX)

log() { printf '== %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
mark() { echo "$(now_ms) $1" >>"$OUT/marks"; log "$1"; }

flag=""; [ "$PROFILE" = release ] && flag="--release"
log "building ($PROFILE)"
cargo build -q $flag --bin switchyard
cargo build -q $flag -p mock-upstream --bins

for port in $MOCK_PORT $PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use: stop what listens there first" >&2; exit 1
  fi
done

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$OUT"; else log "logs kept in $OUT"; fi
}
trap cleanup EXIT

config() { # the serving config; $1 = extra model name, to make a reload visible
  cat <<EOF
listen: ["127.0.0.1:$PORT"]
server: { threads: 2, grace_period: 10s, shutdown_timeout: 2s, pid_file: $OUT/sy.pid, upgrade_sock: $OUT/sy.sock }
access_log: $OUT/access.log
providers:
  up: { type: openai, endpoints: ["127.0.0.1:$MOCK_PORT"], health_check: { path: /v1/models, interval: 2s, timeout: 1s } }
models:
  $1:
    targets: [ { provider: up, model: m } ]
EOF
}

wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }
wait_gone() { # pid limit_s -> prints the seconds it took
  local start; start=$(now_ms)
  while kill -0 "$1" 2>/dev/null; do
    if [ $(( $(now_ms) - start )) -gt $(( $2 * 1000 )) ]; then echo "timeout"; return 1; fi
    sleep 0.05
  done
  awk -v ms=$(( $(now_ms) - start )) 'BEGIN { printf "%.2f", ms / 1000 }'
}
wait_log() { # file text limit_s
  for _ in $(seq $(( $3 * 20 ))); do grep -q "$2" "$1" && return 0; sleep 0.05; done
  echo "not in $1: $2" >&2; return 1
}

"$BIN/mock-upstream" "127.0.0.1:$MOCK_PORT" ops >"$OUT/mock.log" 2>&1 &
PIDS+=($!)
config alias-a >"$OUT/sy.yaml"
env -u RUST_LOG "$BIN/switchyard" --config "$OUT/sy.yaml" >"$OUT/gw1.log" 2>&1 &
GW=$!; PIDS+=($GW)
wait_http "http://127.0.0.1:$MOCK_PORT/v1/models"
wait_http "http://127.0.0.1:$PORT/readyz"

: >"$OUT/marks"
"$BIN/opsload" "127.0.0.1:$PORT" "$JSON" "$STREAMS" "$OUT/marks" "$OUT/stop" 600 >"$OUT/table" 2>"$OUT/failures" &
LOAD=$!; PIDS+=($LOAD)
sleep "$GAP"

mark sighup-valid
config alias-b >"$OUT/sy.yaml"
kill -HUP "$GW"
wait_log "$OUT/gw1.log" "configuration reloaded" 10
sleep "$GAP"

mark sighup-invalid
printf 'listen: ["127.0.0.1:%s"]\nproviders: [ this is not a provider map\n' "$PORT" >"$OUT/sy.yaml"
kill -HUP "$GW"
wait_log "$OUT/gw1.log" "reload rejected" 10
config alias-b >"$OUT/sy.yaml"   # the file the upgrade starts from
sleep "$GAP"

mark upgrade
env -u RUST_LOG "$BIN/switchyard" --config "$OUT/sy.yaml" --upgrade >"$OUT/gw2.log" 2>&1 &
NEW=$!; PIDS+=($NEW)
sleep 1   # the new process waits on upgrade_sock for the sockets
kill -QUIT "$GW"
UPGRADE_EXIT=$(wait_gone "$GW" 40) || { echo "the old process did not exit" >&2; exit 1; }
wait "$GW" 2>/dev/null && UPGRADE_RC=0 || UPGRADE_RC=$?
kill -0 "$NEW" 2>/dev/null || { echo "the new process is gone; see $OUT/gw2.log" >&2; KEEP=1; exit 1; }
GW=$NEW
sleep "$GAP"

mark sigterm
kill -TERM "$GW"
TERM_EXIT=$(wait_gone "$GW" 30) || { echo "the process did not exit after SIGTERM" >&2; exit 1; }
wait "$GW" 2>/dev/null && TERM_RC=0 || TERM_RC=$?
sleep 1
touch "$OUT/stop"
wait "$LOAD" || true

echo
echo "switchyard operations under load ($PROFILE build; $JSON JSON + $STREAMS streaming keep-alive clients)"
cat "$OUT/table"
if [ -s "$OUT/failures" ]; then echo "failures (first 5 per phase):"; cat "$OUT/failures"; fi
echo "old process exited ${UPGRADE_EXIT}s after SIGQUIT (status $UPGRADE_RC); new process exited ${TERM_EXIT}s after SIGTERM (status $TERM_RC)"
echo "access log lines: $(wc -l <"$OUT/access.log")"
grep -q '^FAILED 0$' "$OUT/table"
