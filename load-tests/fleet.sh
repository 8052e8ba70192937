#!/usr/bin/env bash
# Fleet routing benchmark (issue 10): switchyard in front of 8 simulated vLLM replicas
# (load-tests/fleet-sim: prefix cache with LRU in a KV budget, FIFO admission, chunked prefill,
# batched decode, in real time), one case per workload x balance:
#
#   workloads: shared  (agent sessions over 4 long system prompts; the fleet's caches are
#                       under pressure), noreuse (unique prompts of similar size), hot (one hot
#                       system prompt in 90 % of requests)
#   balances:  round_robin least_loaded prefix_affinity
#
# Each case: the simulator is reset (empty caches, zero counters), switchyard starts with a
# generated config, `fleet-sim load` sends open-loop streaming requests for DURATION seconds,
# switchyard stops. Writes load-tests/out/fleet/summary.md (also printed) and per case the
# load generator's JSON, the replicas' /metrics after the run and switchyard's log.
#
#   bash load-tests/fleet.sh                       # about 7 minutes on 2 cores, plus the build
#   DURATION=20 WORKLOADS=shared BALANCES="round_robin prefix_affinity" bash load-tests/fleet.sh
#   BUILD=0 bash load-tests/fleet.sh               # use the binaries in target/release as they are
#
# Knobs (environment): DURATION (s, 40), RATE_SHARED (18), RATE_NOREUSE (6), RATE_HOT (18)
# requests/s, SEED (1), TIMEOUT (s per request, 30), DRAIN (s to wait for answers after the last
# arrival, 60), SIM_ARGS (extra `fleet-sim serve` options), LOAD_ARGS (extra `fleet-sim load`
# options), WORKLOADS, BALANCES, BUILD (1), ROUTING (the fleet's `routing:` map, e.g.
# '{ scrape_interval: 2s }'; default: none, the gateway's defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/load-tests/out/fleet
DURATION=${DURATION:-40}
RATE_SHARED=${RATE_SHARED:-18}
RATE_NOREUSE=${RATE_NOREUSE:-6}
RATE_HOT=${RATE_HOT:-18}
SEED=${SEED:-1}
TIMEOUT=${TIMEOUT:-30}
DRAIN=${DRAIN:-60}
SIM_ARGS=${SIM_ARGS:-}
LOAD_ARGS=${LOAD_ARGS:-}
WORKLOADS=${WORKLOADS:-shared noreuse hot}
BALANCES=${BALANCES:-round_robin least_loaded prefix_affinity}
REPLICAS=8
SIM=$ROOT/target/release/fleet-sim
SY=$ROOT/target/release/switchyard

log() { printf '== %s\n' "$*" >&2; }
rate_of() { case $1 in shared) echo "$RATE_SHARED" ;; noreuse) echo "$RATE_NOREUSE" ;; hot) echo "$RATE_HOT" ;; *) return 1 ;; esac; }
for w in $WORKLOADS; do rate_of "$w" >/dev/null || { echo "unknown workload $w" >&2; exit 2; }; done
for b in $BALANCES; do
  case $b in round_robin | least_loaded | prefix_affinity) ;; *) echo "unknown balance $b" >&2; exit 2 ;; esac
done

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.jsonl "$OUT"/*.log "$OUT"/*.yaml "$OUT"/*.metrics "$OUT"/summary.md
if [ "${BUILD:-1}" = 1 ]; then
  log "building (release)"
  cargo build -q --release --workspace --bins
fi
[ -x "$SIM" ] && [ -x "$SY" ] || { echo "missing $SIM or $SY: build first" >&2; exit 1; }

# The processes this script started and that are still running (a stopped one is dropped at
# once, so its id is never signalled again).
SIM_PID=
SY_PID=
LOAD_PID=
cleanup() {
  for p in $LOAD_PID $SY_PID $SIM_PID; do kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in $LOAD_PID $SY_PID $SIM_PID; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_http() { # url tries(0.1 s each)
  for _ in $(seq "$2"); do curl -fs -m 1 -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "not up: $1" >&2; return 1
}
stop() { # pid: TERM, up to 10 s, then KILL
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Free loopback ports: REPLICAS consecutive ones for the simulator, one for switchyard.
# Bound by the simulator right away; a lost race fails its start and we try other ports.
for _ in $(seq 20); do
  BASE=$(( 20000 + RANDOM % 30000 ))
  ok=1
  for i in $(seq 0 "$REPLICAS"); do port_free $((BASE + i)) || { ok=0; break; }; done
  [ $ok = 1 ] || continue
  "$SIM" serve --replicas "$REPLICAS" --base-port "$BASE" --duration-limit 30m $SIM_ARGS \
    >"$OUT/sim.log" 2>&1 &
  SIM_PID=$!
  if wait_http "http://127.0.0.1:$((BASE + REPLICAS - 1))/health" 50 2>/dev/null; then break; fi
  stop "$SIM_PID"; SIM_PID=
done
[ -n "$SIM_PID" ] || { echo "could not start the simulator (see $OUT/sim.log)" >&2; exit 1; }
GW=$((BASE + REPLICAS))
log "$(head -1 "$OUT/sim.log")"
ENDPOINTS=$(for i in $(seq 0 $((REPLICAS - 1))); do printf '"127.0.0.1:%d", ' $((BASE + i)); done)
ENDPOINTS=${ENDPOINTS%, }

run_case() { # workload balance
  local w=$1 b=$2 name="$1-$2" rate
  rate=$(rate_of "$w")
  for i in $(seq 0 $((REPLICAS - 1))); do
    curl -fs -m 5 -X POST -o /dev/null "http://127.0.0.1:$((BASE + i))/admin/reset"
  done
  cat >"$OUT/$name.yaml" <<YAML
listen: ["127.0.0.1:$GW"]
server: { pid_file: $OUT/sy.pid, upgrade_sock: $OUT/sy.sock, threads: 2, grace_period: 1s, shutdown_timeout: 1s }
auth: { keys: [ { name: bench, key: sk-bench } ] }
providers:
  fleet:
    type: openai
    endpoints: [$ENDPOINTS]
    balance: $b
    health_check: { path: /health, interval: 1s, timeout: 500ms }
${ROUTING:+    routing: $ROUTING
}models:
  sim-model: { targets: [ { provider: fleet } ] }
YAML
  port_free "$GW" || { echo "port $GW is taken" >&2; return 1; }
  RUST_LOG=${RUST_LOG:-warn} "$SY" --config "$OUT/$name.yaml" >"$OUT/$name.switchyard.log" 2>&1 &
  SY_PID=$!
  wait_http "http://127.0.0.1:$GW/healthz" 100
  log "$w / $b: $rate req/s for ${DURATION}s"
  # Bounded: the generator stops sending at DURATION and waits at most DRAIN s more. In the
  # background with `wait`, so that an interrupt runs the trap at once.
  timeout $((DURATION + DRAIN + 30)) "$SIM" load --url "http://127.0.0.1:$GW" \
    --workload "$w" --rate "$rate" --duration "$DURATION" --timeout "$TIMEOUT" --drain "$DRAIN" \
    --seed "$SEED" --key sk-bench --model sim-model --label "$b" --out "$OUT/$name.json" \
    --requests "$OUT/$name.requests.jsonl" $LOAD_ARGS &
  LOAD_PID=$!
  wait "$LOAD_PID" || echo "load generator failed for $name" >&2
  LOAD_PID=
  for i in $(seq 0 $((REPLICAS - 1))); do
    echo "# replica $i"; curl -fs -m 5 "http://127.0.0.1:$((BASE + i))/metrics" || true
  done >"$OUT/$name.metrics"
  stop "$SY_PID"
  SY_PID=
}

START=$(date +%s)
for w in $WORKLOADS; do
  for b in $BALANCES; do run_case "$w" "$b"; done
done
ELAPSED=$(( $(date +%s) - START ))

python3 - "$OUT" "$ELAPSED" "$DURATION" "$SEED" "$RATE_SHARED" "$RATE_NOREUSE" "$RATE_HOT" \
  "$SIM_ARGS" "$LOAD_ARGS" "$WORKLOADS" "$BALANCES" <<'PY' | tee "$OUT/summary.md"
import json, os, re, sys
out, elapsed, duration, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rates = dict(zip(["shared", "noreuse", "hot"], sys.argv[5:8]))
sim_args, load_args = sys.argv[8], sys.argv[9]
workloads, balances = sys.argv[10].split(), sys.argv[11].split()

def load(w, b):
    p = os.path.join(out, f"{w}-{b}.json")
    return json.load(open(p)) if os.path.exists(p) else None

def replica_counts(w, b):
    """Requests finished per replica, from the replicas' /metrics."""
    p = os.path.join(out, f"{w}-{b}.metrics")
    if not os.path.exists(p):
        return []
    return [int(float(m)) for m in re.findall(r'^vllm:request_success_total\{[^}]*\} (\S+)', open(p).read(), re.M)]

def f(v, nd=0):
    return "—" if v is None else f"{v:.{nd}f}"

def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b

print(f"# Fleet routing benchmark\n")
print(f"8 simulated vLLM replicas (`fleet-sim serve{' ' + sim_args if sim_args else ''}`, "
      "load-tests/fleet-sim/README.md) behind switchyard; open-loop Poisson "
      f"arrivals, streaming; {duration} s per case, seed {seed}; request rates (req/s): "
      + ", ".join(f"{w} {rates[w]}" for w in workloads) + (f"; load options `{load_args}`" if load_args else "")
      + f". Whole run: {elapsed} s.\n")
print("TTFT in ms (successful requests); output tok/s = completion tokens of successful requests / "
      "wall time from the first arrival to the last answer; cache hit = cached / prompt tokens "
      "(the replicas' usage); spread = requests per replica, max / min; ratios vs round_robin "
      "of the same workload (TTFT: lower is better, tok/s: higher is better).\n")
print("| workload | balance | ok | failed | TTFT p50 | TTFT p90 | TTFT p99 | output tok/s | cache hit | spread | p90 / rr | tok/s / rr |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
R = {}
for w in workloads:
    rr = load(w, "round_robin")
    for b in balances:
        d = load(w, b)
        R[(w, b)] = d
        if d is None:
            print(f"| {w} | {b} | (no result) |||||||||| ")
            continue
        t = d["ttft_ms"]
        counts = replica_counts(w, b)
        spread = f"{max(counts) / max(min(counts), 1):.1f}" if counts else "—"
        p90r = ratio(t["p90"], rr and rr["ttft_ms"]["p90"])
        tokr = ratio(d["output_tok_per_s"], rr and rr["output_tok_per_s"])
        print(f"| {w} | {b} | {d['ok']} | {d['failed']} | {f(t['p50'])} | {f(t['p90'])} | {f(t['p99'])} | "
              f"{f(d['output_tok_per_s'])} | {f(d['cache_hit_rate'], 2)} | {spread} | {f(p90r, 2)} | {f(tokr, 2)} |")

print("\n## Issue 10 targets (prefix_affinity)\n")
def get(w, b):
    return R.get((w, b))
def check(name, cond, detail):
    verdict = "n/a" if cond is None else ("PASS" if cond else "FAIL")
    print(f"- {verdict}: {name} ({detail})")
pa, rr = get("shared", "prefix_affinity"), get("shared", "round_robin")
if pa and rr:
    p90r = ratio(pa["ttft_ms"]["p90"], rr["ttft_ms"]["p90"])
    tokr = ratio(pa["output_tok_per_s"], rr["output_tok_per_s"])
    check("shared: TTFT p90 <= 1/3 of round_robin's", p90r is not None and p90r <= 1 / 3, f"ratio {f(p90r, 2)}")
    check("shared: output tok/s >= 1.5x round_robin's", tokr is not None and tokr >= 1.5, f"ratio {f(tokr, 2)}")
pa, ll = get("noreuse", "prefix_affinity"), get("noreuse", "least_loaded")
if pa and ll:
    tokr = ratio(pa["output_tok_per_s"], ll["output_tok_per_s"])
    p90r = ratio(pa["ttft_ms"]["p90"], ll["ttft_ms"]["p90"])
    # One-sided: doing better than least_loaded is within the target.
    check("noreuse: output tok/s at least 95 % of least_loaded's", tokr is not None and tokr >= 0.95, f"ratio {f(tokr, 3)}")
    check("noreuse: TTFT p90 at most 105 % of least_loaded's", p90r is not None and p90r <= 1.05, f"ratio {f(p90r, 3)}")
pa, rr = get("hot", "prefix_affinity"), get("hot", "round_robin")
if pa and rr:
    check("hot: every request succeeds", pa["failed"] == 0, f"{pa['ok']} ok, {pa['failed']} failed")
    p90r = ratio(pa["ttft_ms"]["p90"], rr["ttft_ms"]["p90"])
    check("hot: TTFT p90 no worse than round_robin's", p90r is not None and p90r <= 1.0, f"ratio {f(p90r, 2)}")
fails = [(w, b, d["failures"]) for (w, b), d in R.items() if d and d["failed"]]
if fails:
    print("\nFailures: " + "; ".join(f"{w}/{b}: {json.dumps(x)}" for w, b, x in fails))
print(f"\nPer case in `{out}/`: `<workload>-<balance>.json` (the load generator's summary, with a "
      "5-second timeline), `.requests.jsonl` (one line per request: target, turn, TTFT, usage), "
      "`.metrics` (each replica's /metrics after the run), `.switchyard.log` (its access log).")
PY
