#!/usr/bin/env bash
# What CI runs: every fuzz target for 30 seconds (fuzz/run.sh), failing on any finding.
set -euo pipefail
exec "$(dirname "$0")/run.sh" 30 "$@"
