#!/usr/bin/env bash
# Fuzz switchyard's parsers: fuzz/run.sh SECONDS [TARGET...]
#
# Builds and runs each target (every one in fuzz/fuzz_targets/ when none is named) for
# SECONDS, one after another, then prints one line per target: seconds, executions and
# findings (new crash-/timeout-/oom-/leak- files in fuzz/artifacts/<target>/). Exits
# non-zero when a target failed to build, crashed, or left a finding.
#
# The fuzzer grows its corpus in fuzz/target/corpus-<target>/ (ignored by git) and reads
# the committed seeds in fuzz/corpus/<target>/ without writing there. A per-target dictionary
# fuzz/dicts/<target>.dict is used when present. Targets are built with debug assertions, so
# an integer overflow is a finding, not a silently wrapped count.
#
# Installs what it needs when missing: the nightly toolchain (rustup), cargo-fuzz (pinned)
# and cmake (apt). The first build compiles Pingora with sanitizers: expect 10+ minutes on
# two cores; later builds reuse fuzz/target/.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

usage() {
    echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

cd "$(dirname "$0")/.."
root=$PWD

# --- what the runs need -------------------------------------------------------------------
if ! command -v cmake >/dev/null 2>&1; then # Pingora's zlib-ng is built with cmake
    echo "fuzz: installing cmake" >&2
    if [[ $(id -u) == 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq cmake >/dev/null
fi
# cargo-fuzz needs a nightly rustc for its sanitizer flags. Where none is installed and rustup
# cannot fetch one, the machine's own toolchain takes the same flags with RUSTC_BOOTSTRAP=1.
toolchain=(+nightly)
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain" >&2
    if ! rustup toolchain install nightly --profile minimal; then
        echo "fuzz: no nightly; using $(rustc --version) with RUSTC_BOOTSTRAP=1" >&2
        toolchain=()
        export RUSTC_BOOTSTRAP=1
    fi
fi
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz: no targets" >&2; exit 2; }

# Longest input per target: bodies and streams may be large, a config file is not.
max_len() {
    case $1 in
        config_loader | usage_reader) echo 65536 ;;
        *) echo 1048576 ;;
    esac
}

logs=$root/fuzz/target/logs
mkdir -p "$logs"
summary=()
failed=0

for t in "${targets[@]}"; do
    log=$logs/$t.log
    if ! cargo "${toolchain[@]}" fuzz build --debug-assertions "$t" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        summary+=("$(printf '%-16s %5ss %14s execs %3s findings  BUILD FAILED (%s)' "$t" "$seconds" - - "${log#"$root"/}")")
        failed=1
        continue
    fi

    scratch=$root/fuzz/target/corpus-$t
    seeds=$root/fuzz/corpus/$t
    artifacts=$root/fuzz/artifacts/$t
    mkdir -p "$scratch" "$artifacts"
    corpora=("$scratch")
    [[ -d $seeds ]] && corpora+=("$seeds")
    extra=()
    [[ -f $root/fuzz/dicts/$t.dict ]] && extra+=("-dict=$root/fuzz/dicts/$t.dict")
    marker=$(mktemp)

    set +e
    cargo "${toolchain[@]}" fuzz run --debug-assertions "$t" "${corpora[@]}" -- \
        -max_total_time="$seconds" \
        -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 \
        -timeout=10 \
        -print_final_stats=1 \
        "${extra[@]}" >>"$log" 2>&1
    rc=$?
    set -e

    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
    findings=$(find "$artifacts" -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
    rm -f "$marker"
    status=ok
    if [[ $rc -ne 0 || $findings -gt 0 ]]; then
        status="FAILED rc=$rc, see ${log#"$root"/} and ${artifacts#"$root"/}/"
        grep -m 1 -A 8 -E '^thread .* panicked|ERROR: (libFuzzer|AddressSanitizer)' "$log" >&2 || tail -n 30 "$log" >&2
        failed=1
    fi
    line=$(printf '%-16s %5ss %14s execs %3s findings  %s' "$t" "$seconds" "${execs:-?}" "$findings" "$status")
    echo "fuzz: $line" >&2
    summary+=("$line")
done

echo
printf '%s\n' "${summary[@]}"
exit $failed
