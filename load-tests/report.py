#!/usr/bin/env python3
"""Turn load-tests/out/ into RESULTS.md: the tables, the targets of issue 3, and the machine."""
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

out, dur, load_cpu, proxy_cpu, oha_v, litellm_v = sys.argv[1:7]
out = Path(out)
rows = {}
for line in (out / "results.tsv").read_text().splitlines():
    scen, target, rps, p50, p99, bad = line.split("\t")
    rows[(scen, target)] = dict(rps=float(rps), p50=float(p50), p99=float(p99), bad=int(bad or 0))


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip() or \
            subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stderr.strip()
    except Exception:
        return "?"


def get(s, t):
    return rows.get((s, t))


def ratio(a, b):
    return a / b if a and b else float("nan")


def verdict(ok):
    return "met" if ok else "**missed**"


cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
print("# Load test results\n")
print(f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `bash load-tests/run.sh` (DUR={dur} s per measurement).\n")
print("Machine: " + f"{sh('nproc')} CPUs ({cpu}), {sh('free -g | awk \"/Mem/ {print \\$2}\"')} GiB, "
      f"Linux {platform.release()}. Shared and noisy: compare ratios within this run, not absolute numbers across runs.\n")
print(f"Pinning: the proxy under test alone on CPU {proxy_cpu} with one worker (nginx `worker_processes 1`, "
      f"switchyard and bare Pingora `threads: 1`, LiteLLM `--num_workers 1`); wrk/oha/streamload and the mock upstream on CPU {load_cpu}.\n")
print("Versions: " + ", ".join([
    sh("rustc --version"), sh("nginx -v 2>&1"), sh("wrk -v 2>&1 | head -1"), f"oha {oha_v}", f"litellm {litellm_v}"]) + ".\n")
print("switchyard runs the realistic configuration (scenario 5): a gateway key with an allow-list, a configured model "
      "routed to a fleet target that renames it (the body is rewritten), usage read from every answer, metrics, "
      "and the JSON access log written to a file. `switchyard-min` is an open gateway with `provider/model` "
      "addressing and the access log off; `pingora-bare` is a ProxyHttp with only `upstream_peer` (examples/bare_proxy.rs): "
      "the floor any Pingora-based gateway starts from.\n")

print("## 1. Small non-streaming chat, 64 connections (closed loop, wrk)\n")
print("| target | req/s | p50 ms | p99 ms | non-2xx | vs nginx |")
print("|---|---:|---:|---:|---:|---:|")
ng = get("s1", "nginx")
for t in ["direct", "nginx", "pingora-bare", "switchyard", "switchyard-min", "litellm"]:
    r = get("s1", t)
    if r:
        print(f"| {t} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['bad']} | {ratio(r['rps'], ng and ng['rps']):.2f} |")
print()

print("## 2. The same at a fixed rate of half switchyard's saturation (open loop, oha)\n")
print("| target | req/s | p50 ms | p99 ms | non-2xx | p99 added over direct |")
print("|---|---:|---:|---:|---:|---:|")
d2 = get("s2", "direct")
for t in ["direct", "nginx", "switchyard"]:
    r = get("s2", t)
    if r:
        added = r["p99"] - d2["p99"] if d2 else float("nan")
        print(f"| {t} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['bad']} | {added:.2f} ms |")
print()

print("## 3. 1 MiB request bodies, 8 connections (wrk)\n")
print("| target | req/s | p50 ms | p99 ms | non-2xx | vs nginx |")
print("|---|---:|---:|---:|---:|---:|")
ng3 = get("s3", "nginx")
for t in ["direct", "nginx", "switchyard"]:
    r = get("s3", t)
    if r:
        print(f"| {t} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['bad']} | {ratio(r['rps'], ng3 and ng3['rps']):.2f} |")
print()

print("## 4. Concurrent streams: 100 tokens 20 ms apart (streamload)\n")
s4 = {}
for t in ["direct", "switchyard", "nginx"]:
    f = out / f"s4-{t}.json"
    if f.exists() and f.read_text().strip():
        s4[t] = json.loads(f.read_text())
rss_f = out / "s4-rss.kib"
rss = int(rss_f.read_text().strip()) / 1024 if rss_f.exists() else float("nan")
print("| target | streams ok | errors | TTFT p50 ms | TTFT p99 ms | gap p50 ms | gap p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|")
for t, r in s4.items():
    print(f"| {t} | {r['ok']}/{r['streams']} | {r['errors']} | {r['ttft_p50_ms']:.2f} | {r['ttft_p99_ms']:.2f} | {r['gap_p50_ms']:.2f} | {r['gap_p99_ms']:.2f} |")
print(f"\nswitchyard peak RSS during the streams: {rss:.0f} MiB.\n")

print("## Targets (issue 3)\n")
print("| target | measured | |")
print("|---|---|---|")
sy, lt = get("s1", "switchyard"), get("s1", "litellm")
if sy and ng:
    v = ratio(sy["rps"], ng["rps"])
    print(f"| (1) throughput ≥ 0.85 × nginx | {v:.2f} | {verdict(v >= 0.85)} |")
if sy and lt:
    v = ratio(sy["rps"], lt["rps"])
    print(f"| (1) throughput ≥ 20 × LiteLLM | {v:.1f}× | {verdict(v >= 20)} |")
s2 = get("s2", "switchyard")
if s2 and d2:
    v = s2["p99"] - d2["p99"]
    print(f"| (2) p99 added ≤ 1 ms | {v:.2f} ms | {verdict(v <= 1.0)} |")
s3 = get("s3", "switchyard")
if s3 and ng3:
    v = ratio(s3["rps"], ng3["rps"])
    print(f"| (3) 1 MiB throughput ≥ 0.8 × nginx | {v:.2f} | {verdict(v >= 0.8)} |")
if "switchyard" in s4 and "direct" in s4:
    a, b = s4["switchyard"], s4["direct"]
    ttft = a["ttft_p99_ms"] - b["ttft_p99_ms"]
    gap = a["gap_p99_ms"] - b["gap_p99_ms"]
    print(f"| (4) TTFT added p99 ≤ 2 ms | {ttft:.2f} ms | {verdict(ttft <= 2)} |")
    print(f"| (4) inter-token delay added p99 ≤ 1 ms | {gap:.2f} ms | {verdict(gap <= 1)} |")
    print(f"| (4) RSS at {a['streams']} streams < 300 MiB | {rss:.0f} MiB | {verdict(rss < 300)} |")
    print(f"| (4) all streams complete | {a['ok']}/{a['streams']} | {verdict(a['ok'] == a['streams'])} |")
print()
