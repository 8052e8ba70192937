#!/usr/bin/env bash
# switchyard's load rig: switchyard against the plain-proxy limit (nginx), a bare Pingora proxy,
# LiteLLM, and the mock upstream called directly, all in one run, same mock, same load.
#
#   bash load-tests/run.sh            # DUR=10 seconds per measurement by default
#   DUR=5 SKIP_LITELLM=1 bash load-tests/run.sh
#
# Builds in release mode, starts everything on 127.0.0.1, runs each scenario for a fixed time,
# stops everything it started, prints the table and writes load-tests/RESULTS.md.
#
# Pinning (2-core machine): the proxy under test runs alone on CPU 1 (one worker: nginx
# worker_processes 1, switchyard/Pingora threads 1, LiteLLM num_workers 1); the load generator
# and the mock upstream share CPU 0. Only one proxy is under load at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DUR=${DUR:-8}
OUT=$ROOT/load-tests/out
TOOLS=$ROOT/load-tests/.tools
OHA_VERSION=1.16.0
# 1.106.2: the newest litellm[proxy] whose dependencies resolve from the registry mirror
# here (1.106.10+ need a certifi or litellm-proxy-extras release the mirror lacks).
LITELLM_VERSION=1.106.2
UV_VERSION=0.9.7
mkdir -p "$OUT" "$TOOLS"
rm -f "$OUT"/*.log "$OUT"/results.tsv "$OUT"/cpu.tsv "$OUT"/s4-* "$OUT"/s4b-*

log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  log "installing wrk and nginx (Debian)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
fi
if [ ! -x "$TOOLS/bin/oha" ]; then
  log "installing oha $OHA_VERSION from crates.io"
  cargo install -q oha --version "$OHA_VERSION" --locked --root "$TOOLS"
fi
OHA=$TOOLS/bin/oha
if [ -z "${SKIP_LITELLM:-}" ] && [ ! -x "$TOOLS/litellm-venv/bin/litellm" ]; then
  log "installing litellm[proxy] $LITELLM_VERSION (uv $UV_VERSION)"
  python3 -m venv "$TOOLS/litellm-venv"
  "$TOOLS/litellm-venv/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
  "$TOOLS/litellm-venv/bin/uv" pip install -q --python "$TOOLS/litellm-venv/bin/python" "litellm[proxy]==$LITELLM_VERSION"
fi

log "building (release)"
cargo build -q --release --workspace --bins
cargo build -q --release --example bare_proxy
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # 2,000 streams need ~8,000 descriptors across the processes

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then LOAD_CPU=0; PROXY_CPU=1; else LOAD_CPU=0; PROXY_CPU=0; fi
# Foreground helpers only: a backgrounded shell function runs in a subshell, whose $! is not
# the server's PID, so servers are started with `taskset ... &` directly.
pin_load() { taskset -c "$LOAD_CPU" "$@"; }

MOCK=19301; NGINX=19302; SY=19303; BARE=19304; LITELLM=19305; SYMIN=19306
for port in $MOCK $NGINX $SY $BARE $LITELLM $SYMIN; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (a leftover from an interrupted run?): stop it first" >&2; exit 1
  fi
done
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${LITELLM_PID:-}" ] && kill -- "-$LITELLM_PID" 2>/dev/null || true
  [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_http() { # url [tries]
  for _ in $(seq "${2:-100}"); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "not up: $1" >&2; return 1
}

# ---------------------------------------------------------------- services
log "starting mock upstream, nginx, switchyard, bare pingora"
taskset -c "$LOAD_CPU" "$ROOT/target/release/mock-upstream" "127.0.0.1:$MOCK" mock >"$OUT/mock.log" 2>&1 &
PIDS+=($!)

cat >"$OUT/nginx.conf" <<EOF
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_max_body_size 64m;
  client_body_buffer_size 2m;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX backlog=4096;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 120s;
    }
  }
}
EOF
taskset -c "$PROXY_CPU" nginx -c "$OUT/nginx.conf" -e "$OUT/nginx-error.log"

# The realistic configuration (scenario 5): load-tests/realistic.yaml.
RIG_PORT=$SY RIG_MOCK=$MOCK RIG_OUT=$OUT RIG_KEY=sk-load RUST_LOG=warn \
  taskset -c "$PROXY_CPU" "$ROOT/target/release/switchyard" --config "$ROOT/load-tests/realistic.yaml" >"$OUT/switchyard.log" 2>&1 &
SY_PID=$!; PIDS+=($SY_PID)

# A stripped configuration for comparison: open gateway, provider/model addressing, access log off.
cat >"$OUT/switchyard-min.yaml" <<EOF
listen: ["127.0.0.1:$SYMIN"]
server: { threads: 1, grace_period: 1s, shutdown_timeout: 1s, pid_file: $OUT/symin.pid, upgrade_sock: $OUT/symin.sock }
access_log: /dev/null
providers:
  fleet: { type: openai, endpoints: ["127.0.0.1:$MOCK"] }
EOF
RUST_LOG=warn taskset -c "$PROXY_CPU" "$ROOT/target/release/switchyard" --config "$OUT/switchyard-min.yaml" >"$OUT/switchyard-min.log" 2>&1 &
SYMIN_PID=$!; PIDS+=($SYMIN_PID)

taskset -c "$PROXY_CPU" "$ROOT/target/release/examples/bare_proxy" "127.0.0.1:$BARE" "127.0.0.1:$MOCK" >"$OUT/bare.log" 2>&1 &
BARE_PID=$!; PIDS+=($BARE_PID)

wait_http "http://127.0.0.1:$MOCK/v1/models"
NGINX_PID=$(pgrep -P "$(cat "$OUT/nginx.pid")" | head -1)
wait_http "http://127.0.0.1:$NGINX/v1/models"
wait_http "http://127.0.0.1:$SY/healthz"
wait_http "http://127.0.0.1:$SYMIN/healthz"
wait_http "http://127.0.0.1:$BARE/v1/models"
for pid in $SY_PID $SYMIN_PID $BARE_PID $NGINX_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a server exited at start (pid $pid); see $OUT/*.log" >&2; exit 1; }
done

# ---------------------------------------------------------------- measurement helpers
record() { printf '%s\n' "$*" >>"$OUT/results.tsv"; }

# CPU ticks (1/100 s) used by a process and its children so far.
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
    total=$(( total + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}
pid_of() {
  case $1 in
    nginx) echo "$NGINX_PID" ;; switchyard) echo "$SY_PID" ;; switchyard-min) echo "$SYMIN_PID" ;;
    pingora-bare) echo "$BARE_PID" ;; litellm) echo "${LITELLM_PID:-}" ;; *) echo "" ;;
  esac
}

# wrk closed loop: scenario target url model concurrency lua -> rps p50_ms p99_ms
wrk_run() {
  local scen=$1 target=$2 url=$3 model=$4 conc=$5 lua=$6
  local out pid t0=0 t1=0
  pid=$(pid_of "$target"); [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  out=$(MODEL=$model pin_load wrk -t1 -c"$conc" -d"${DUR}s" --latency -s "$lua" "$url" 2>&1)
  [ -n "$pid" ] && t1=$(cpu_ticks "$pid")
  echo "$out" >"$OUT/$scen-$target.wrk.log"
  local n; n=$(echo "$out" | awk '/requests in/ {print $1}')
  [ -n "$pid" ] && [ "${n:-0}" -gt 0 ] && printf '%s\t%s\t%s\n' "$scen" "$target" "$(( (t1 - t0) * 10000 / n ))" >>"$OUT/cpu.tsv"
  local non2xx
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "$out" | awk -v s="$scen" -v t="$target" -v bad="${non2xx:-0}" '
    function ms(v){ if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    / 50%/ {p50=ms($2)} / 99%/ {p99=ms($2)} /Requests\/sec/ {rps=$2}
    END {printf "%s\t%s\t%.0f\t%.3f\t%.3f\t%s\n", s, t, rps, p50, p99, bad}' >>"$OUT/results.tsv"
}

# oha open loop at a fixed rate: scenario target url model rate
oha_run() {
  local scen=$1 target=$2 url=$3 model=$4 rate=$5
  local body="{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in one word.\"}],\"max_tokens\":8}"
  pin_load "$OHA" --no-tui -z "${DUR}s" -q "$rate" -c 64 --latency-correction \
    -m POST -H "content-type: application/json" -H "authorization: Bearer sk-load" -d "$body" \
    --output-format json "$url" >"$OUT/$scen-$target.oha.json" 2>"$OUT/$scen-$target.oha.err" || true
  python3 - "$OUT/$scen-$target.oha.json" "$scen" "$target" >>"$OUT/results.tsv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
bad = sum(v for k, v in codes.items() if not k.startswith("2"))
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{s['requestsPerSec']:.0f}\t{p['p50']*1000:.3f}\t{p['p99']*1000:.3f}\t{bad}")
PY
}

# RSS sampler: prints the peak VmRSS (KiB) of PID while it runs in the background.
rss_peak_start() { # pid file
  ( peak=0; while kill -0 "$1" 2>/dev/null; do
      r=$(awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
      [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$2"
      sleep 0.05; done ) &
  RSS_SAMPLER=$!
}

# ---------------------------------------------------------------- scenarios
CHAT_LUA=$ROOT/load-tests/chat.lua
BIG_LUA=$ROOT/load-tests/chat-1mib.lua
D="http://127.0.0.1:$MOCK/v1/chat/completions"

ROUNDS=${ROUNDS:-3}
log "scenario 1: small non-streaming chat, 64 connections, ${DUR}s each, $ROUNDS interleaved rounds (median reported)"
for _ in $(seq "$ROUNDS"); do
  wrk_run s1 direct "$D" gpt-4o-mini 64 "$CHAT_LUA"
  wrk_run s1 nginx "http://127.0.0.1:$NGINX/v1/chat/completions" gpt-4o-mini 64 "$CHAT_LUA"
  wrk_run s1 pingora-bare "http://127.0.0.1:$BARE/v1/chat/completions" gpt-4o-mini 64 "$CHAT_LUA"
  wrk_run s1 switchyard "http://127.0.0.1:$SY/v1/chat/completions" gpt-4o-mini 64 "$CHAT_LUA"
  wrk_run s1 switchyard-min "http://127.0.0.1:$SYMIN/v1/chat/completions" fleet/gpt-4o-mini 64 "$CHAT_LUA"
done
# LiteLLM runs only around its own measurement: even idle, its background tasks take CPU
# that would disturb the other proxies on the same core. Own process group, to stop its workers.
if [ -z "${SKIP_LITELLM:-}" ]; then
  cat >"$OUT/litellm.yaml" <<EOF
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:$MOCK/v1", api_key: sk-upstream }
general_settings: { master_key: sk-load }
EOF
  LITELLM_MASTER_KEY=sk-load LITELLM_LOG=ERROR setsid taskset -c "$PROXY_CPU" "$TOOLS/litellm-venv/bin/litellm" --config "$OUT/litellm.yaml" \
    --host 127.0.0.1 --port "$LITELLM" --num_workers 1 >"$OUT/litellm.log" 2>&1 &
  LITELLM_PID=$!
  wait_http "http://127.0.0.1:$LITELLM/health/liveliness" 900
  wrk_run s1 litellm "http://127.0.0.1:$LITELLM/v1/chat/completions" gpt-4o-mini 64 "$CHAT_LUA"
  kill -- "-$LITELLM_PID" 2>/dev/null || true
  LITELLM_PID=
fi

SY_RPS=$(awk -F'\t' '$1=="s1" && $2=="switchyard" {print $3}' "$OUT/results.tsv" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
RATE=$(( SY_RPS / 2 ))
# The p99 at a fixed rate is made of the VM's stall windows (FINDINGS.md): one 8 s run can
# catch one or none, so scenario 2 also runs in interleaved rounds and reports medians.
log "scenario 2: fixed rate $RATE req/s (half of switchyard's saturation), $ROUNDS interleaved rounds"
for _ in $(seq "$ROUNDS"); do
  oha_run s2 direct "$D" gpt-4o-mini "$RATE"
  oha_run s2 nginx "http://127.0.0.1:$NGINX/v1/chat/completions" gpt-4o-mini "$RATE"
  oha_run s2 pingora-bare "http://127.0.0.1:$BARE/v1/chat/completions" gpt-4o-mini "$RATE"
  oha_run s2 switchyard "http://127.0.0.1:$SY/v1/chat/completions" gpt-4o-mini "$RATE"
done

log "scenario 3: 1 MiB request bodies, 8 connections"
wrk_run s3 direct "$D" gpt-4o-mini 8 "$BIG_LUA"
wrk_run s3 nginx "http://127.0.0.1:$NGINX/v1/chat/completions" gpt-4o-mini 8 "$BIG_LUA"
wrk_run s3 switchyard "http://127.0.0.1:$SY/v1/chat/completions" gpt-4o-mini 8 "$BIG_LUA"

STREAMS=${STREAMS:-2000}
log "scenario 4: $STREAMS concurrent streams, 100 tokens 20 ms apart"
SL=$ROOT/target/release/streamload
streams_run() { # target url [streams] [scenario]
  local pid t0=0 t1=0 n=${3:-$STREAMS} scen=${4:-s4}
  pid=$(pid_of "$1"); [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  pin_load "$SL" "$2" "$n" 100 20 gpt-4o-mini sk-load 1000 >"$OUT/$scen-$1.json"
  [ -n "$pid" ] && t1=$(cpu_ticks "$pid") && \
    printf '%s\t%s\t%s\n' "$scen" "$1" "$(( (t1 - t0) * 10000 / (n * 100) ))" >>"$OUT/cpu.tsv"
  return 0
}
# 4b: a load one proxy core can carry on this machine, to separate overload from overhead.
LIGHT=${STREAMS_LIGHT:-300}
streams_run direct "$D" "$LIGHT" s4b
streams_run switchyard "http://127.0.0.1:$SY/v1/chat/completions" "$LIGHT" s4b
streams_run pingora-bare "http://127.0.0.1:$BARE/v1/chat/completions" "$LIGHT" s4b
streams_run direct "$D"
rss_peak_start "$SY_PID" "$OUT/s4-rss.kib"
streams_run switchyard "http://127.0.0.1:$SY/v1/chat/completions"
kill "$RSS_SAMPLER" 2>/dev/null || true
streams_run nginx "http://127.0.0.1:$NGINX/v1/chat/completions"
rss_peak_start "$BARE_PID" "$OUT/s4-rss-bare.kib"
streams_run pingora-bare "http://127.0.0.1:$BARE/v1/chat/completions"
kill "$RSS_SAMPLER" 2>/dev/null || true

# ---------------------------------------------------------------- instructions per request
if [ -z "${SKIP_CALLGRIND:-}" ]; then
  log "instructions per request (callgrind, about 2 minutes)"
  bash "$ROOT/load-tests/callgrind.sh" >"$OUT/callgrind.txt" 2>&1 || log "callgrind run failed: see $OUT/callgrind.txt"
fi

# ---------------------------------------------------------------- report
log "writing load-tests/RESULTS.md"
python3 "$ROOT/load-tests/report.py" "$OUT" "$DUR" "$LOAD_CPU" "$PROXY_CPU" "$OHA_VERSION" "$LITELLM_VERSION" \
  >"$ROOT/load-tests/RESULTS.md"
cat "$ROOT/load-tests/RESULTS.md"
