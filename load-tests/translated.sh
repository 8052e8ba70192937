#!/usr/bin/env bash
# CPU per request on the translated path (issue 8): an Anthropic Messages client in front of
# an OpenAI-compatible upstream, through switchyard and through LiteLLM, with the
# same-dialect OpenAI path beside them. Same mock, same load (oha, 8 connections), one proxy
# at a time; CPU is the proxy process tree's user+system time (from /proc) over N requests.
#
#   bash load-tests/translated.sh            # N=2000 a case; SKIP_LITELLM=1 to leave it out
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${N:-2000}
TOOLS=$ROOT/load-tests/.tools
OUT=$ROOT/load-tests/out/translated
OHA=$TOOLS/bin/oha
LITELLM_VERSION=1.106.2
UV_VERSION=0.9.7
MOCK=19501; SY=19502; LL=19503
mkdir -p "$OUT"
[ -x "$OHA" ] || cargo install -q oha --version 1.16.0 --locked --root "$TOOLS"
cargo build -q --release --workspace --bins
if [ -z "${SKIP_LITELLM:-}" ] && [ ! -x "$TOOLS/litellm-venv/bin/litellm" ]; then
  python3 -m venv "$TOOLS/litellm-venv"
  "$TOOLS/litellm-venv/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
  "$TOOLS/litellm-venv/bin/uv" pip install -q --python "$TOOLS/litellm-venv/bin/python" "litellm[proxy]==$LITELLM_VERSION"
fi
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_http() { for _ in $(seq "${2:-100}"); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }
HZ=$(getconf CLK_TCK)
tree_ticks() { # pgid -> clock ticks of every process in the group
  local t=0
  for p in $(pgrep -g "$1"); do
    read -r -a f < "/proc/$p/stat" || continue
    t=$(( t + f[13] + f[14] ))
  done
  echo "$t"
}

setsid "$ROOT/target/release/mock-upstream" "127.0.0.1:$MOCK" mock >"$OUT/mock.log" 2>&1 &
PIDS+=($!)
cat >"$OUT/switchyard.yaml" <<YAML
listen: ["127.0.0.1:$SY"]
server: { threads: 1, pid_file: $OUT/sy.pid, upgrade_sock: $OUT/sy.sock }
auth: { keys: [ { name: load, key: sk-load } ] }
providers:
  fleet: { type: openai, base_url: "http://127.0.0.1:$MOCK/v1", api_key: sk-upstream }
models:
  gpt-4o-mini: { targets: [ { provider: fleet } ] }
YAML
RUST_LOG=warn setsid "$ROOT/target/release/switchyard" --config "$OUT/switchyard.yaml" >"$OUT/switchyard.log" 2>&1 &
SY_PID=$!; PIDS+=($SY_PID)
wait_http "http://127.0.0.1:$SY/healthz"

chat='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":8}'
msgs='{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"Say hello in one word."}]}'
msgs_stream='{"model":"gpt-4o-mini","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"Say hello in one word."}]}'
measure() { # name pgid url body
  "$OHA" --no-tui -n 200 -c 8 -m POST -H "content-type: application/json" -H "authorization: Bearer sk-load" \
    -H "x-api-key: sk-load" -H "anthropic-version: 2023-06-01" -d "$4" "$3" >/dev/null
  local before after
  before=$(tree_ticks "$2")
  "$OHA" --no-tui -n "$N" -c 8 -m POST -H "content-type: application/json" -H "authorization: Bearer sk-load" \
    -H "x-api-key: sk-load" -H "anthropic-version: 2023-06-01" -d "$4" --output-format json "$3" >"$OUT/$1.json"
  after=$(tree_ticks "$2")
  local ok; ok=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["statusCodeDistribution"].get("200",0))' "$OUT/$1.json")
  printf '%s\t%s\t%s\n' "$1" "$ok/$N" "$(python3 -c "print(round(($after-$before)/$HZ/$N*1e6, 1))")"
}
{
  printf 'case\tanswered 200\tCPU µs per request\n'
  measure switchyard-chat-same-dialect "$SY_PID" "http://127.0.0.1:$SY/v1/chat/completions" "$chat"
  measure switchyard-messages-translated "$SY_PID" "http://127.0.0.1:$SY/v1/messages" "$msgs"
  measure switchyard-messages-translated-stream "$SY_PID" "http://127.0.0.1:$SY/v1/messages" "$msgs_stream"
  if [ -z "${SKIP_LITELLM:-}" ]; then
    cat >"$OUT/litellm.yaml" <<YAML
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: hosted_vllm/gpt-4o-mini, api_base: "http://127.0.0.1:$MOCK/v1", api_key: sk-upstream }
general_settings: { master_key: sk-load }
YAML
    LITELLM_MASTER_KEY=sk-load LITELLM_LOG=ERROR setsid "$TOOLS/litellm-venv/bin/litellm" --config "$OUT/litellm.yaml" \
      --host 127.0.0.1 --port "$LL" --num_workers 1 >"$OUT/litellm.log" 2>&1 &
    LL_PID=$!; PIDS+=($LL_PID)
    wait_http "http://127.0.0.1:$LL/health/liveliness" 900
    measure litellm-chat-same-dialect "$LL_PID" "http://127.0.0.1:$LL/v1/chat/completions" "$chat"
    measure litellm-messages-translated "$LL_PID" "http://127.0.0.1:$LL/v1/messages" "$msgs"
    measure litellm-messages-translated-stream "$LL_PID" "http://127.0.0.1:$LL/v1/messages" "$msgs_stream"
  fi
} | tee "$OUT/summary.tsv"
