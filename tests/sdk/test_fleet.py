"""Fleet routing end to end (issue 10; README "Fleet routing"): prefix affinity, least-loaded
picks on scraped vLLM metrics (and on local in-flight counts when the metrics are missing or
stale), spill off a busy prefix or session holder, session pinning (header and `user` field),
failover when a replica dies, fleet state across a reload, and `switchyard check` on bad
`routing:` values.

Upstreams are `Replica`s: small OpenAI-compatible servers in this process (threaded
`http.server` on 127.0.0.1), one per fleet member. Each records every request it was sent, so a
test knows which replica answered without trusting the gateway; each serves `GET /health`,
`GET /v1/models` and, when told to, a vLLM-style `GET /metrics` page with the numbers the test
sets. A chat request whose last message contains `HOLD` is held open until the test releases
it (at most 8 s), which is how a replica is made busy.

Every gateway here is its own process with its own config, so the picks counted in its
`/metrics` and the lines of its access log belong to one test alone. Every wait is bounded.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN_KEY, SWITCHYARD_BIN, Gateway, _clean_env

HTTP_TIMEOUT = 10.0  # seconds per request; every answer here is expected far sooner
HOLD_MAX = 8.0  # seconds a held request waits for its release at most
MODEL = "served"  # the client-facing model name
UPSTREAM_MODEL = "served-model"


# ---------------------------------------------------------------------------------------
# A recording fleet member
# ---------------------------------------------------------------------------------------


class Replica:
    """One OpenAI-compatible "vLLM" replica in this process.

    `metrics`: None → `GET /metrics` is 404 (a server without vLLM's numbers); a dict with
    `running`, `waiting`, `kv`, `queries`, `hits` → a vLLM page with those values.
    `kill()` stops listening and cuts every open connection (a crashed replica).
    """

    def __init__(self, name: str):
        self.name = name
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        self.metrics: dict | None = None
        self.release = threading.Event()
        self.conns: set[socket.socket] = set()
        self.dead = False
        rep = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                with rep.lock:
                    rep.conns.add(self.connection)

            def finish(self):
                with rep.lock:
                    rep.conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                try:
                    self.send_response(code)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(body)))
                    self.send_header("x-replica", rep.name)
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:  # killed, or the peer went away (a scrape reads no 404 body)
                    self.close_connection = True

            def do_GET(self):
                if rep.dead:
                    self.close_connection = True
                    return
                path = self.path.split("?")[0]
                if path == "/health":
                    self._send(200, b"ok", "text/plain")
                elif path == "/metrics" and rep.metrics is not None:
                    self._send(200, rep.metrics_page(), "text/plain; version=0.0.4")
                elif path == "/v1/models":
                    self._send(200, json.dumps({"object": "list", "data": [
                        {"id": UPSTREAM_MODEL, "object": "model", "owned_by": "vllm"}]}).encode())
                else:
                    self._send(404, b'{"error":{"message":"no such route"}}')

            def do_POST(self):
                if rep.dead:
                    self.close_connection = True
                    return
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    req = json.loads(raw or b"{}")
                except ValueError:
                    req = {}
                msgs = req.get("messages") or [{}]
                last = str(msgs[-1].get("content", ""))
                with rep.lock:
                    rep.seen.append({"path": self.path, "headers": dict(self.headers), "body": raw,
                                     "last": last, "at": time.monotonic()})
                if "HOLD" in last:
                    rep.release.wait(HOLD_MAX)
                answer = f"replica={rep.name}"
                self._send(200, json.dumps({
                    "id": f"chatcmpl-{rep.name}", "object": "chat.completion", "created": 1700000000,
                    "model": req.get("model", UPSTREAM_MODEL),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
                }).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def metrics_page(self) -> bytes:
        m = self.metrics or {}
        labels = f'{{model_name="{UPSTREAM_MODEL}"}}'
        lines = []
        for name, kind, key in (
            ("vllm:num_requests_running", "gauge", "running"),
            ("vllm:num_requests_waiting", "gauge", "waiting"),
            ("vllm:kv_cache_usage_perc", "gauge", "kv"),
            ("vllm:prefix_cache_queries_total", "counter", "queries"),
            ("vllm:prefix_cache_hits_total", "counter", "hits"),
        ):
            lines += [f"# HELP {name} test", f"# TYPE {name} {kind}", f"{name}{labels} {float(m.get(key, 0.0))}"]
        # Something vLLM also exports that the gateway must skip.
        lines += ["# TYPE vllm:e2e_request_latency_seconds histogram",
                  f'vllm:e2e_request_latency_seconds_bucket{{le="+Inf",model_name="{UPSTREAM_MODEL}"}} 3']
        return ("\n".join(lines) + "\n").encode()

    def chats(self) -> list[dict]:
        with self.lock:
            return [r for r in self.seen if r["path"].endswith("/chat/completions")]

    def got(self, marker: str) -> list[dict]:
        return [r for r in self.chats() if marker.encode() in r["body"]]

    def kill(self) -> None:
        """Stop accepting and cut the open (keep-alive) connections: refused from now on."""
        self.dead = True
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=5)

    def stop(self) -> None:
        self.release.set()
        if not self.dead:
            self.kill()


# ---------------------------------------------------------------------------------------
# Gateway configuration and fixtures
# ---------------------------------------------------------------------------------------


def fleet_config(replicas: list[Replica], balance: str, routing: str | None = None,
                 health: str = "{ path: /health, interval: 1s, timeout: 500ms }") -> Callable[[int, Path], str]:
    endpoints = ", ".join(f'"{r.addr}"' for r in replicas)
    routing_line = f"    routing: {routing}\n" if routing else ""

    def cfg(port: int, d: Path) -> str:
        return f"""\
listen: ["127.0.0.1:{port}"]
server:
  pid_file: {d / "switchyard.pid"}
  upgrade_sock: {d / "upgrade.sock"}
  grace_period: 1s
  shutdown_timeout: 1s
limits: {{ first_byte_timeout: 5s, connect_timeout: 500ms }}
auth:
  keys:
    - {{ name: admin, key: {ADMIN_KEY} }}
providers:
  fleet:
    type: openai
    endpoints: [{endpoints}]
    balance: {balance}
    health_check: {health}
{routing_line}models:
  {MODEL}:
    targets:
      - {{ provider: fleet, model: {UPSTREAM_MODEL} }}
"""

    return cfg


@pytest.fixture
def fleet(workdir):
    """A factory: `make(name, n, balance, routing, metrics=None)` → (Gateway, [Replica]).
    Everything it started is stopped at the end of the test."""
    started: list = []

    def make(name: str, n: int, balance: str, routing: str | None = None,
             metrics: dict | None = None) -> tuple[Gateway, list[Replica]]:
        reps = [Replica(f"{name}-{i}") for i in range(n)]
        started.extend(reps)
        for r in reps:
            r.metrics = dict(metrics) if metrics is not None else None
        # `a`/`b` (mock-upstream processes) are used only by the default config: none here.
        g = Gateway(f"fleet-{name}", workdir, None, None, config=fleet_config(reps, balance, routing))
        started.append(g)
        return g, reps

    try:
        yield make
    finally:
        for p in reversed(started):
            p.stop()


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def body(messages: list[dict], **extra) -> bytes:
    # Compact and stable: the same history serializes to the same bytes on every turn.
    return json.dumps({"model": MODEL, "messages": messages, **extra}, separators=(",", ":")).encode()


def chat(g: Gateway, messages: list[dict], headers: dict | None = None, **extra) -> httpx.Response:
    h = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json", **(headers or {})}
    return httpx.post(f"{g.base_url}/chat/completions", content=body(messages, **extra), headers=h,
                      timeout=HTTP_TIMEOUT)


def answered_by(resp: httpx.Response) -> str:
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:500]}"
    content = resp.json()["choices"][0]["message"]["content"]
    m = re.fullmatch(r"replica=(\S+)", content)
    assert m, content
    return m.group(1)


def system_prompt(tag: str, size: int = 3000) -> str:
    """A long system prompt, distinct from its first byte on (a distinct first block)."""
    words = [tag]
    while sum(len(w) + 1 for w in words) < size:
        words.append(secrets.token_hex(4))
    return " ".join(words)


def access(g: Gateway, resp: httpx.Response) -> dict:
    rid = resp.headers.get("x-request-id")
    assert rid, dict(resp.headers)
    return g.wait_access(rid)


def scrape(g: Gateway) -> str:
    r = httpx.get(f"{g.url}/metrics", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text[:500]
    return r.text


def metric(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples `name` whose labels include `labels`; None when there is none."""
    found = None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                found = (found or 0.0) + s.value
    return found


def wait_metric(g: Gateway, name: str, ok: Callable[[float | None], bool], timeout: float = 3.0,
                **labels: str) -> float | None:
    deadline = time.monotonic() + timeout
    while True:
        v = metric(scrape(g), name, **labels)
        if ok(v) or time.monotonic() >= deadline:
            return v
        time.sleep(0.05)


def wait_metric_text(g: Gateway, ok: Callable[[str], bool], timeout: float = 3.0) -> str:
    """The first `/metrics` page that satisfies `ok` (the last one read, at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(g)
        if ok(text) or time.monotonic() >= deadline:
            return text
        time.sleep(0.05)


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def picks(g: Gateway, reason: str) -> float:
    return metric(scrape(g), "switchyard_fleet_picks_total", provider="fleet", reason=reason) or 0.0


# ---------------------------------------------------------------------------------------
# 1. Prefix affinity
# ---------------------------------------------------------------------------------------


def test_prefix_affinity_keeps_each_conversation_on_its_replica(fleet):
    """8 conversations, each a distinct 3 KB system prompt (11 blocks of 256 B), 3 turns each
    sent as growing histories: every turn lands where the conversation's first turn went
    (replica records and access-log `endpoint` agree), turns 2+ with `pick` = `prefix_hit`; the
    first turns (no match) are least-loaded and spread over more than one replica."""
    g, reps = fleet("prefix", 3, "prefix_affinity", "{ session_affinity: false }")
    by_addr = {r.addr: r.name for r in reps}
    convs = []
    for c in range(8):
        tag = f"conv{c}-{secrets.token_hex(6)}"
        convs.append({"tag": tag, "messages": [{"role": "system", "content": system_prompt(tag)}],
                      "replica": None})
    for turn in range(3):
        for conv in convs:
            conv["messages"].append({"role": "user", "content": f"{conv['tag']} question {turn}"})
            r = chat(g, conv["messages"])
            who = answered_by(r)
            line = access(g, r)
            assert line["status"] == 200 and line["provider"] == "fleet", json.dumps(line)
            assert by_addr.get(line["endpoint"]) == who, f"{who}: {json.dumps(line)}"
            if turn == 0:
                conv["replica"] = who
                assert line["pick"] == "least_loaded", json.dumps(line)
            else:
                assert who == conv["replica"], f"{conv['tag']} turn {turn} moved {conv['replica']} -> {who}"
                assert line["pick"] == "prefix_hit", json.dumps(line)
            assert line["attempts"] == 1, json.dumps(line)
            conv["messages"].append({"role": "assistant", "content": f"replica={who}"})
    # The replicas' own records: each conversation reached exactly one replica, 3 times.
    for conv in convs:
        holders = {r.name: len(r.got(conv["tag"])) for r in reps if r.got(conv["tag"])}
        assert holders == {conv["replica"]: 3}, (conv["tag"], holders)
    assert len({c["replica"] for c in convs}) > 1, "every conversation went to one replica"
    text = scrape(g)
    assert metric(text, "switchyard_fleet_picks_total", provider="fleet", reason="least_loaded") == 8
    assert metric(text, "switchyard_fleet_picks_total", provider="fleet", reason="prefix_hit") == 16
    assert not metric(text, "switchyard_fleet_picks_total", provider="fleet", reason="spill")


# ---------------------------------------------------------------------------------------
# 2. least_loaded on scraped vLLM metrics
# ---------------------------------------------------------------------------------------


def test_least_loaded_avoids_a_replica_whose_metrics_say_it_is_busy(fleet):
    """Replica 0's `/metrics` says 50 running, 20 waiting, KV 95 %; the others idle. Once
    scraped (every 250 ms by default), the gateway's gauges show those numbers per endpoint,
    no request goes to replica 0, ties between the idle two are broken at random, and every
    pick counts as `least_loaded`. When replica 0's numbers drop, it takes traffic again."""
    idle = {"running": 0, "waiting": 0, "kv": 0.1, "queries": 0, "hits": 0}
    g, reps = fleet("least", 3, "least_loaded", metrics=idle)
    busy, a, b = reps
    busy.metrics = {"running": 50, "waiting": 20, "kv": 0.95, "queries": 1000, "hits": 250}
    v = wait_metric(g, "switchyard_fleet_requests_running", lambda v: v == 50, timeout=3.0,
                    provider="fleet", endpoint=busy.addr)
    assert v == 50, f"scraped running of the busy replica: {v}\n{scrape(g)[-3000:]}"
    text = scrape(g)
    assert metric(text, "switchyard_fleet_requests_waiting", provider="fleet", endpoint=busy.addr) == 20
    assert metric(text, "switchyard_fleet_kv_cache_usage_ratio", provider="fleet",
                  endpoint=busy.addr) == pytest.approx(0.95)
    assert metric(text, "switchyard_fleet_prefix_cache_hit_ratio", provider="fleet",
                  endpoint=busy.addr) == pytest.approx(0.25)
    for r in (a, b):
        assert metric(text, "switchyard_fleet_requests_running", provider="fleet", endpoint=r.addr) == 0
        assert metric(text, "switchyard_fleet_in_flight", provider="fleet", endpoint=r.addr) == 0

    before = picks(g, "least_loaded")
    n = 16
    for i in range(n):
        r = chat(g, [{"role": "user", "content": f"least-{i}"}])
        line = access(g, r)
        assert answered_by(r) != busy.name, json.dumps(line)
        assert line["endpoint"] != busy.addr and line["pick"] == "least_loaded", json.dumps(line)
    assert not busy.chats(), "the busy replica was sent requests"
    assert a.chats() and b.chats(), (len(a.chats()), len(b.chats()))
    assert picks(g, "least_loaded") - before == n

    # The queue drains: once scraped, replica 0 is an equal again.
    busy.metrics = dict(idle)
    v = wait_metric(g, "switchyard_fleet_requests_running", lambda v: v == 0, timeout=3.0,
                    provider="fleet", endpoint=busy.addr)
    assert v == 0, v
    for i in range(24):
        answered_by(chat(g, [{"role": "user", "content": f"drained-{i}"}]))
    assert busy.chats(), "the drained replica got nothing in 24 requests"


def test_stale_metrics_fall_back_to_local_counts(fleet):
    """A replica whose metrics page stops answering is judged by the gateway's own in-flight
    count once its last scrape is older than 4 intervals (1 s at the default 250 ms): the
    replica that looked busy takes traffic again, but not at once."""
    idle = {"running": 0, "waiting": 0, "kv": 0.0}
    g, reps = fleet("stale", 3, "least_loaded", metrics=idle)
    busy = reps[0]
    busy.metrics = {"running": 40, "waiting": 10, "kv": 0.5}
    assert wait_metric(g, "switchyard_fleet_requests_running", lambda v: v == 40, timeout=3.0,
                       provider="fleet", endpoint=busy.addr) == 40
    busy.metrics = None  # GET /metrics → 404 from now on
    t0 = time.monotonic()
    for i in range(2):  # its last good scrape is at most one interval old: still avoided
        assert answered_by(chat(g, [{"role": "user", "content": f"fresh-{i}"}])) != busy.name
    deadline = t0 + 3.0
    i = 0
    while not busy.chats():
        assert time.monotonic() < deadline, "the replica with a failing metrics page never came back"
        answered_by(chat(g, [{"role": "user", "content": f"stale-{i}"}]))
        i += 1
        time.sleep(0.02)
    back_after = time.monotonic() - t0
    assert back_after >= 0.5, f"stale signals dropped after {back_after:.2f}s, before 4 intervals"


def test_least_loaded_spreads_a_burst_by_in_flight_counts(fleet):
    """No metrics page (llama-server style): 12 concurrent requests held open spread by the
    gateway's own in-flight counts, not onto one replica; the in-flight gauge shows them."""
    g, reps = fleet("burst", 3, "least_loaded")
    n = 12
    pool = ThreadPoolExecutor(max_workers=n)
    try:
        futures = [pool.submit(chat, g, [{"role": "user", "content": f"HOLD burst {i}"}]) for i in range(n)]
        wait_until(lambda: sum(len(r.chats()) for r in reps) == n, 5.0, f"{n} held requests upstream")
        counts = [len(r.chats()) for r in reps]
        assert max(counts) - min(counts) <= 2, f"burst spread {counts}"
        text = wait_metric_text(g, lambda t: sum(
            metric(t, "switchyard_fleet_in_flight", provider="fleet", endpoint=r.addr) or 0 for r in reps) == n)
        for r, c in zip(reps, counts):
            assert metric(text, "switchyard_fleet_in_flight", provider="fleet", endpoint=r.addr) == c
            # The same per model (one model here): published in the same pass, before the total.
            assert metric(text, "switchyard_fleet_model_in_flight", provider="fleet", endpoint=r.addr,
                          model=UPSTREAM_MODEL) == c
    finally:
        for r in reps:
            r.release.set()
        results = [f.result(timeout=HOLD_MAX + 2) for f in futures]
        pool.shutdown(wait=True)
    assert all(r.status_code == 200 for r in results)
    assert picks(g, "least_loaded") == n
    # The guards are dropped when the requests end.
    text = wait_metric_text(g, lambda t: all(
        metric(t, "switchyard_fleet_in_flight", provider="fleet", endpoint=r.addr) == 0 for r in reps))
    assert all(metric(text, "switchyard_fleet_in_flight", provider="fleet", endpoint=r.addr) == 0 for r in reps)


# ---------------------------------------------------------------------------------------
# 3. Spill
# ---------------------------------------------------------------------------------------


def test_hot_prefix_spills_off_a_busy_holder(fleet):
    """`spill_threshold: 1`. A prefix's holder carries 2 requests held open (prefix hits both:
    the second sees it 1 above the least-loaded, which is within the threshold); a third request
    with the same prefix then goes to another replica with `pick` = `spill`, and afterwards both
    replicas hold the prefix."""
    g, reps = fleet("spill", 3, "prefix_affinity", "{ spill_threshold: 1, session_affinity: false }")
    by_name = {r.name: r for r in reps}
    sys_msg = {"role": "system", "content": system_prompt("hot-" + secrets.token_hex(6))}
    first = chat(g, [sys_msg, {"role": "user", "content": "warm up"}])
    holder = by_name[answered_by(first)]
    assert access(g, first)["pick"] == "least_loaded"

    def held(i: int) -> httpx.Response:
        return chat(g, [sys_msg, {"role": "user", "content": f"HOLD {i}"}])

    pool = ThreadPoolExecutor(max_workers=2)
    try:
        futures = [pool.submit(held, 0)]
        wait_until(lambda: len(holder.got("HOLD 0")) == 1, 5.0, "the first held request on the holder")
        futures.append(pool.submit(held, 1))
        wait_until(lambda: len(holder.got("HOLD 1")) == 1, 5.0, "the second held request on the holder")
        v = wait_metric(g, "switchyard_fleet_in_flight", lambda v: v == 2, timeout=2.0,
                        provider="fleet", endpoint=holder.addr)
        assert v == 2, f"in-flight gauge of the holder: {v}"

        spilled = chat(g, [sys_msg, {"role": "user", "content": "while busy"}])
        line = access(g, spilled)
        where = answered_by(spilled)
        assert where != holder.name, json.dumps(line)
        assert line["pick"] == "spill" and line["endpoint"] == by_name[where].addr, json.dumps(line)
    finally:
        holder.release.set()
        results = [f.result(timeout=HOLD_MAX + 2) for f in futures]
        pool.shutdown(wait=True)
    for r in results:
        assert answered_by(r) == holder.name
        assert access(g, r)["pick"] == "prefix_hit", json.dumps(access(g, r))
    assert picks(g, "spill") == 1

    # Both now hold the prefix: the next request (nothing in flight) is a prefix hit on one of them.
    after = chat(g, [sys_msg, {"role": "user", "content": "calm again"}])
    line = access(g, after)
    assert line["pick"] == "prefix_hit", json.dumps(line)
    assert answered_by(after) in {holder.name, where}


# ---------------------------------------------------------------------------------------
# 4. Sessions
# ---------------------------------------------------------------------------------------


def test_session_header_and_user_field_pin_unrelated_prompts(fleet):
    """`x-session-id` pins a session's unrelated prompts (no shared prefix) to one replica,
    `pick` = `session` after the first; the OpenAI `user` field does too without the header; the
    header wins over the field. Without either, the same prompts spread."""
    g, reps = fleet("session", 3, "least_loaded")
    by_addr = {r.addr: r.name for r in reps}

    def run(headers: dict | None, **extra) -> list[tuple[str, str]]:
        out = []
        for i in range(5):
            r = chat(g, [{"role": "user", "content": f"unrelated {secrets.token_hex(8)} #{i}"}], headers, **extra)
            line = access(g, r)
            who = answered_by(r)
            assert by_addr[line["endpoint"]] == who, json.dumps(line)
            out.append((who, line["pick"]))
        return out

    for s in range(3):
        got = run({"x-session-id": f"sess-{s}-{secrets.token_hex(4)}"})
        assert len({w for w, _ in got}) == 1, f"session {s} moved: {got}"
        assert got[0][1] == "least_loaded" and all(p == "session" for _, p in got[1:]), got

    for u in ("alice", "bob"):
        got = run(None, user=f"{u}-{secrets.token_hex(4)}")
        assert len({w for w, _ in got}) == 1, f"user {u} moved: {got}"
        assert got[0][1] == "least_loaded" and all(p == "session" for _, p in got[1:]), got

    # Header and a different `user` every time: the header decides.
    sid = f"sess-hdr-{secrets.token_hex(4)}"
    seen = set()
    for i in range(6):
        r = chat(g, [{"role": "user", "content": f"mixed {i}"}], {"x-session-id": sid},
                 user=f"someone-{i}-{secrets.token_hex(3)}")
        seen.add(answered_by(r))
        if i:
            assert access(g, r)["pick"] == "session", json.dumps(access(g, r))
    assert len(seen) == 1, f"the header did not win over `user`: {seen}"

    # Control: with neither, 12 unrelated prompts are not all pinned to one replica.
    spread = {answered_by(chat(g, [{"role": "user", "content": f"free {i}"}])) for i in range(12)}
    assert len(spread) > 1, spread
    assert picks(g, "session") == 3 * 4 + 2 * 4 + 5


def test_busy_session_replica_spills_and_the_session_is_re_pinned(fleet):
    """`spill_threshold: 1`: a session whose replica carries 2 held requests spills to the
    least-loaded replica (`pick` = `spill`) and is pinned there: its next request, with nothing
    in flight, is a `session` pick on the new replica."""
    g, reps = fleet("sspill", 3, "least_loaded", "{ spill_threshold: 1 }")
    by_name = {r.name: r for r in reps}
    h = {"x-session-id": "spill-" + secrets.token_hex(4)}
    holder = by_name[answered_by(chat(g, [{"role": "user", "content": "first"}], h))]
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        futures = [pool.submit(chat, g, [{"role": "user", "content": f"HOLD s{i}"}], h) for i in range(2)]
        wait_until(lambda: len(holder.got("HOLD s")) == 2, 5.0, "2 held requests on the session's replica")
        r = chat(g, [{"role": "user", "content": "while busy"}], h)
        line = access(g, r)
        moved = answered_by(r)
        assert moved != holder.name and line["pick"] == "spill", json.dumps(line)
    finally:
        holder.release.set()
        results = [f.result(timeout=HOLD_MAX + 2) for f in futures]
        pool.shutdown(wait=True)
    assert [answered_by(x) for x in results] == [holder.name] * 2
    r = chat(g, [{"role": "user", "content": "calm"}], h)
    assert answered_by(r) == moved and access(g, r)["pick"] == "session", json.dumps(access(g, r))


# ---------------------------------------------------------------------------------------
# 5. A replica going down
# ---------------------------------------------------------------------------------------


def test_conversation_fails_over_when_its_replica_dies(fleet):
    """The holder of a conversation is killed (refuses connections, open ones cut): the next
    turn is still answered 200 by another replica (2 attempts: the dead one, then failover);
    once the health check has marked the dead one down, later turns stay on the new holder as
    prefix hits."""
    g, reps = fleet("failover", 3, "prefix_affinity", "{ session_affinity: false }")
    by_name = {r.name: r for r in reps}
    tag = "fo-" + secrets.token_hex(6)
    messages = [{"role": "system", "content": system_prompt(tag)}]

    def turn(i: int) -> tuple[httpx.Response, str, dict]:
        messages.append({"role": "user", "content": f"{tag} turn {i}"})
        r = chat(g, messages)
        who = answered_by(r)
        messages.append({"role": "assistant", "content": f"replica={who}"})
        return r, who, access(g, r)

    _, holder, _ = turn(0)
    _, again, line = turn(1)
    assert again == holder and line["pick"] == "prefix_hit", json.dumps(line)
    dead = by_name[holder]
    dead.kill()

    t0 = time.monotonic()
    r, new, line = turn(2)
    took = time.monotonic() - t0
    assert new != holder, json.dumps(line)
    assert line["status"] == 200 and line["endpoint"] == by_name[new].addr, json.dumps(line)
    # Nobody else held the conversation: the new replica is a least-loaded pick.
    assert line["pick"] == "least_loaded", json.dumps(line)
    assert took < 3.0, f"failover took {took:.2f}s"
    down = f"endpoint {dead.addr} is down"
    if line["attempts"] != 2:
        # Only when the health check (every 1 s) ran between the kill and this turn's pick,
        # so that the dead replica was no candidate at all (seen on a loaded machine).
        assert line["attempts"] == 1, json.dumps(line)
        wait_until(lambda: down in g.logs(), 0.5, f"the health check to have marked {dead.addr} down")

    # The health check (interval 1s) marks the dead replica down.
    wait_until(lambda: down in g.logs(), 4.0, f"the gateway to log {dead.addr} down")
    assert metric(scrape(g), "switchyard_upstream_up", provider="fleet", endpoint=dead.addr) == 0
    for i in range(3, 6):
        _, who, line = turn(i)
        assert who == new, f"turn {i} moved {new} -> {who}: {json.dumps(line)}"
        assert line["pick"] == "prefix_hit" and line["attempts"] == 1, json.dumps(line)
    assert len(by_name[new].got(tag)) == 4


def reload(g: Gateway, text: str | None = None) -> None:
    """SIGHUP (after writing `text` as the config, when given); waits for the reload line."""
    if text is not None:
        g.config_path.write_text(text)
    n = g.logs().count("configuration reloaded")
    g.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: g.logs().count("configuration reloaded") > n, 5.0, "the reload")


def test_reload_keeps_prefixes_and_sessions_while_routing_is_unchanged(fleet):
    """A SIGHUP with the same balance and routing keeps the fleet's prefix index and sessions
    (the next turn is a `prefix_hit` on its replica, the session a `session` pick); one that
    changes `routing` starts afresh (`least_loaded` for both)."""
    g, reps = fleet("reload", 3, "prefix_affinity")
    tag = "rl-" + secrets.token_hex(6)
    messages = [{"role": "system", "content": system_prompt(tag)}]
    sess = {"x-session-id": "rl-" + secrets.token_hex(4)}

    def turn(i: int) -> tuple[str, str]:
        messages.append({"role": "user", "content": f"{tag} turn {i}"})
        r = chat(g, messages)
        who = answered_by(r)
        messages.append({"role": "assistant", "content": f"replica={who}"})
        return who, access(g, r)["pick"]

    def in_session(i: int) -> tuple[str, str]:
        r = chat(g, [{"role": "user", "content": f"session prompt {secrets.token_hex(8)} {i}"}], sess)
        return answered_by(r), access(g, r)["pick"]

    holder, pick = turn(0)
    assert pick == "least_loaded"
    pinned, pick = in_session(0)
    assert pick == "least_loaded"

    reload(g)  # the same file
    assert turn(1) == (holder, "prefix_hit")
    assert in_session(1) == (pinned, "session")

    reload(g, fleet_config(reps, "prefix_affinity", "{ block_size: 128B }")(g.port, g.dir))
    assert turn(2)[1] == "least_loaded", "a reload with other routing settings kept the old index"
    assert in_session(2)[1] == "least_loaded", "a reload with other routing settings kept the sessions"

    # A reload that drops a replica: its per-endpoint gauges leave /metrics (they used to show
    # its last values until a restart); the others' stay.
    gone = reps[2].addr
    assert wait_metric(g, "switchyard_fleet_in_flight", lambda v: v is not None, timeout=5.0,
                       endpoint=gone) is not None, "the replica had no gauge to begin with"
    reload(g, fleet_config(reps[:2], "prefix_affinity", "{ block_size: 128B }")(g.port, g.dir))
    assert wait_metric(g, "switchyard_fleet_in_flight", lambda v: v is None, timeout=5.0,
                       endpoint=gone) is None, "a removed replica's gauges stayed after the reload"
    assert metric(scrape(g), "switchyard_fleet_model_in_flight", endpoint=gone) is None, \
        "a removed replica's per-model gauges stayed after the reload"
    assert metric(scrape(g), "switchyard_fleet_in_flight", endpoint=reps[0].addr) is not None


# ---------------------------------------------------------------------------------------
# 6. `switchyard check`
# ---------------------------------------------------------------------------------------


BAD_ROUTING = """\
listen: ["127.0.0.1:9"]
auth:
  keys:
    - { name: admin, key: sk-admin }
providers:
  fleet:
    type: openai
    endpoints: ["127.0.0.1:7001", "127.0.0.1:7002"]
    balance: fastest
    routing:
      block_size: 8B
      spill_threshold: 0
      scrape_interval: 10ms
      session_header: "bad header"
      colour: red
      index_size: 0
      metrics_path: metrics
models:
  m:
    targets:
      - { provider: fleet }
"""

# (line, words the message must hold), in file order.
BAD_ROUTING_EXPECTED = [
    (9, ["balance", "fastest"]),
    (11, ["block_size", "16B"]),
    (12, ["spill_threshold", "0"]),
    (13, ["scrape_interval", "50ms"]),
    (14, ["session_header", "bad header"]),
    (15, ["unknown key `colour`"]),
    (16, ["index_size", "0"]),
    (17, ["metrics_path", "metrics"]),
]


def run_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SWITCHYARD_BIN), "check", "--config", str(path)], capture_output=True,
                          text=True, timeout=15, env=_clean_env(), stdin=subprocess.DEVNULL)


def test_check_refuses_bad_routing_values_with_file_and_line(workdir):
    """Every bad `routing:` value (and `balance`) is reported as FILE:LINE: message at its own
    line, all at once, exit code 2; the same fleet with good values passes (exit 0)."""
    path = workdir / "bad-routing.yaml"
    path.write_text(BAD_ROUTING)
    p = run_check(path)
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    lines = [l for l in out.splitlines() if l.startswith(f"{path}:")]
    for line_no, words in BAD_ROUTING_EXPECTED:
        hits = [l for l in lines if l.startswith(f"{path}:{line_no}: ")]
        assert len(hits) == 1, f"line {line_no}: {hits}\n{out}"
        for w in words:
            assert w in hits[0], f"{w!r} not in {hits[0]!r}"
    assert len(lines) == len(BAD_ROUTING_EXPECTED), out

    good = workdir / "good-routing.yaml"
    good.write_text(BAD_ROUTING.replace("balance: fastest", "balance: least_loaded")
                    .replace("block_size: 8B", "block_size: 1KiB")
                    .replace("spill_threshold: 0", "spill_threshold: 1")
                    .replace("scrape_interval: 10ms", "scrape_interval: 50ms")
                    .replace('session_header: "bad header"', "session_header: x-conversation")
                    .replace("      colour: red\n", "")
                    .replace("index_size: 0", "index_size: 16777216")
                    .replace("metrics_path: metrics", "metrics_path: /metrics"))
    p = run_check(good)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{good}: ok" in p.stdout
    # The balancers are enforced now: no "accepted but not enforced" warning for them.
    assert "warning" not in p.stdout, p.stdout
