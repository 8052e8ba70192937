#!/usr/bin/env bash
# A real agent through switchyard (issue 8): Claude Code, headless (`claude -p`), with its
# base URL set to the gateway, completes a prompt against
#   1. an Anthropic-dialect upstream (mock-upstream's /v1/messages), passed through, and
#   2. an OpenAI-compatible upstream (mock-upstream's /v1/chat/completions), translated.
# Claude Code sends its real requests: `/v1/messages?beta=true`, streaming, ~50 KB of tools,
# several `anthropic-beta` flags, thinking and context-management fields. The Anthropic mock
# answers the first turn with a tool call, so a tool round trip happens too.
#
#   bash tests/agents/claude_code.sh        # needs target/debug/{switchyard,mock-upstream}
#
# Claude Code comes from the npm registry (its native binary is an optional dependency),
# pinned, into load-tests/.tools/claude-code. Every process stops by itself (timeouts).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
VERSION=2.1.332
TOOLS=$ROOT/load-tests/.tools/claude-code
CLAUDE=$TOOLS/node_modules/@anthropic-ai/claude-code-linux-x64/claude
if [ ! -x "$CLAUDE" ]; then
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && ${NPM:-npm} install --silent --no-audit --no-fund --ignore-scripts "@anthropic-ai/claude-code@$VERSION" >/dev/null)
fi
[ -x "$CLAUDE" ] || { echo "claude-code: no linux-x64 binary after npm install" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

MOCK=$(port); GW=$(port)
"$ROOT/target/debug/mock-upstream" "127.0.0.1:$MOCK" cc >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
cat >"$WORK/switchyard.yaml" <<YAML
listen: ["127.0.0.1:$GW"]
server: { pid_file: $WORK/sy.pid, upgrade_sock: $WORK/sy.sock }
auth: { keys: [ { name: agent, key: sk-agent } ] }
providers:
  claude: { type: anthropic, base_url: "http://127.0.0.1:$MOCK", api_key: sk-ant-upstream }
  fleet:  { type: openai, base_url: "http://127.0.0.1:$MOCK/v1", api_key: sk-fleet }
models:
  cc-anthropic: { targets: [ { provider: claude, model: claude-sonnet-4-5 } ] }
  cc-openai:    { targets: [ { provider: fleet, model: qwen3-coder } ] }
YAML
"$ROOT/target/debug/switchyard" --config "$WORK/switchyard.yaml" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$GW/healthz" && break; sleep 0.1; done

run() { # model expected-text
  local out
  out=$(cd "$WORK" && HOME="$WORK/home-$1" ANTHROPIC_BASE_URL="http://127.0.0.1:$GW" ANTHROPIC_API_KEY=sk-agent \
    ANTHROPIC_MODEL="$1" ANTHROPIC_DEFAULT_HAIKU_MODEL="$1" ANTHROPIC_SMALL_FAST_MODEL="$1" \
    DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    timeout 60 "$CLAUDE" -p "say hello" --model "$1" 2>"$WORK/claude-$1.err") || {
    echo "FAIL $1: claude exited $?; stderr:"; tail -20 "$WORK/claude-$1.err"; tail -20 "$WORK/gateway.log"; return 1; }
  if ! grep -q "$2" <<<"$out"; then
    echo "FAIL $1: answer without '$2': $out"; tail -20 "$WORK/gateway.log"; return 1
  fi
  sleep 0.3; local n; n=$(grep -c "\"model\":\"$1\"" "$WORK/gateway.log" || true)
  echo "ok $1: $n requests through the gateway; answer: $(head -c 120 <<<"$out")"
}
pass=0; fail=0
if run cc-anthropic "echo:"; then pass=$((pass+1)); else fail=$((fail+1)); fi
if run cc-openai "tok0"; then pass=$((pass+1)); else fail=$((fail+1)); fi
echo "claude-code: $pass passed, $fail failed"
[ "$fail" = 0 ]
