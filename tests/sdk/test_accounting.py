"""Accounting end to end (issue 9; contract sections 3, 6, 7, 9 and 12): per-key and per-model
limits, budgets, settlement with real usage, cost from the catalogue, the Redis store shared by
replicas, and what `/metrics` says about all of it.

Processes: `mock-upstream` `a` (provider `openai`), a small OpenAI-compatible upstream in this
process (`Stub`: it records what reaches it and answers with the usage a request asks for, cached,
cache-creation and reasoning tokens included, streaming slowly if asked), private `redis-server`
instances on loopback, and several gateways. Every key name is used by one test only, so token
buckets never carry over between tests; limits are small and bursts short (a bucket of N per
minute refills N/60 a second).

Expected costs are computed here by hand from the entry of `catalog/models.json` (the file the
crate embeds) and from the usage the client received.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, START_TIMEOUT, Gateway, Mock, _clean_env, _stop, free_port

HTTP_TIMEOUT = 10.0  # seconds, per request; every gateway answer here is expected far sooner
SETTLE = 0.35  # seconds: settlement replaces a reservation within 250 ms of a response's end

CATALOG = {e["k"]: e for e in json.loads((ROOT / "catalog" / "models.json").read_text())}


# ---------------------------------------------------------------------------------------
# Cost by hand
# ---------------------------------------------------------------------------------------


def usage_counts(u: dict) -> dict:
    """The normalised counts of an OpenAI `usage` object (contract section 7)."""
    ptd = u.get("prompt_tokens_details") or {}
    ctd = u.get("completion_tokens_details") or {}
    return {
        "input": u["prompt_tokens"],
        "cached": ptd.get("cached_tokens") or 0,
        "creation": ptd.get("cache_creation_tokens") or 0,
        "output": u["completion_tokens"],
        "reasoning": ctd.get("reasoning_tokens") or 0,
    }


def expected_cost(catalog_key: str, u: dict) -> float:
    """(input - cached - creation)*input + cached*cache_read + creation*cache_write
    + (output - reasoning)*output + reasoning*reasoning; a missing cache price is the input
    price, a missing reasoning price the output price (as `catalog::Price::cost`)."""
    e = CATALOG[catalog_key]
    inp = e.get("i") or 0.0
    out = e.get("o") or 0.0
    cache_read = e["cr"] if e.get("cr") is not None else inp
    cache_write = e["cw"] if e.get("cw") is not None else inp
    reasoning = e["r"] if e.get("r") is not None else out
    c = usage_counts(u)
    assert c["input"] <= 200_000, "the tiered prices are not modelled here"
    fresh = c["input"] - c["cached"] - c["creation"]
    return (
        fresh * inp
        + c["cached"] * cache_read
        + c["creation"] * cache_write
        + (c["output"] - c["reasoning"]) * out
        + c["reasoning"] * reasoning
    )


# ---------------------------------------------------------------------------------------
# A recording OpenAI-compatible upstream, for what mock-upstream cannot report
# ---------------------------------------------------------------------------------------


class Stub:
    """`POST .../chat/completions` answered in the OpenAI dialect, in this process.

    The `x-stub-usage` request header (JSON: prompt, completion, cached, cache_creation,
    reasoning) sets the usage it reports (default 11 / 3); `x-stub-stream: N:MS` streams N
    content events MS ms apart. Every request is recorded in `seen` (path, headers, body).
    """

    def __init__(self):
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def do_GET(self):
                self._json(404, {"error": {"message": "stub: no such route", "type": "invalid_request_error",
                                           "param": None, "code": None}})

            def do_POST(self):
                raw = self._body()
                with stub.lock:
                    stub.seen.append({"path": self.path, "headers": dict(self.headers), "body": raw})
                try:
                    req = json.loads(raw or b"{}")
                except ValueError:
                    req = {}
                spec = json.loads(self.headers.get("x-stub-usage") or "{}")
                prompt, completion = spec.get("prompt", 11), spec.get("completion", 3)
                usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                         "total_tokens": prompt + completion}
                if "cached" in spec or "cache_creation" in spec:
                    usage["prompt_tokens_details"] = {"cached_tokens": spec.get("cached", 0),
                                                      "cache_creation_tokens": spec.get("cache_creation", 0)}
                if "reasoning" in spec:
                    usage["completion_tokens_details"] = {"reasoning_tokens": spec["reasoning"]}
                model = req.get("model", "stub-model")
                try:
                    if req.get("stream"):
                        n, ms = 3, 0
                        if self.headers.get("x-stub-stream"):
                            n, ms = (int(x) for x in self.headers["x-stub-stream"].split(":"))
                        want_usage = bool((req.get("stream_options") or {}).get("include_usage"))
                        self._stream(model, n, ms, usage if want_usage else None)
                    else:
                        self._json(200, {
                            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1700000000,
                            "model": model,
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "stub"},
                                         "finish_reason": "stop"}],
                            "usage": usage,
                        })
                except OSError:  # the gateway went away mid-answer
                    self.close_connection = True

            def _json(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _stream(self, model: str, n: int, ms: int, usage: dict | None) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()

                def event(obj) -> None:
                    data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()

                base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1700000000,
                        "model": model}
                for i in range(n):
                    if i and ms:
                        time.sleep(ms / 1000)
                    event({**base, "choices": [{"index": 0, "delta": {"content": f"s{i} "},
                                                "finish_reason": None}]})
                event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if usage is not None:
                    event({**base, "choices": [], "usage": usage})
                event(b"[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def requests_with(self, marker: str) -> list[dict]:
        with self.lock:
            return [r for r in self.seen if marker.encode() in r["body"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ---------------------------------------------------------------------------------------
# Private Redis servers
# ---------------------------------------------------------------------------------------

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One command over RESP; the bulk-string reply's payload (e.g. INFO)."""
    req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(req)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, "redis closed the connection"
            buf += chunk
        head, rest = buf.split(b"\r\n", 1)
        assert head.startswith(b"$"), head
        size = int(head[1:])
        while len(rest) < size:
            chunk = s.recv(65536)
            assert chunk, "redis closed the connection"
            rest += chunk
        return rest[:size]


def redis_script_calls(port: int) -> int:
    """Calls of EVAL / EVALSHA / FCALL (and their _RO forms) so far."""
    info = redis_command(port, "INFO", "commandstats").decode()
    return sum(int(m.group(1)) for m in re.finditer(r"^cmdstat_(?:eval|evalsha|fcall)(?:_ro)?:calls=(\d+)", info, re.M))


class Redis:
    """One `redis-server` on 127.0.0.1, no persistence; `kill` and `start` again on the same port."""

    def __init__(self, workdir: Path, name: str):
        self.dir = workdir / f"redis-{name}"
        self.dir.mkdir()
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen | None = None
        for _ in range(3):  # the probed port can be taken before redis binds it
            self.port = free_port()
            if self.start(raise_on_failure=False):
                return
        raise RuntimeError(f"redis-server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, raise_on_failure: bool = True) -> bool:
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir)],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_clean_env(),
        )
        logf.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if redis_ping(self.port):
                return True
            time.sleep(0.05)
        _stop(self.proc)
        if raise_on_failure:
            raise RuntimeError(f"redis-server :{self.port} did not answer PING: "
                               f"{self.log.read_text(errors='replace')[-2000:]}")
        return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait(timeout=5)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process would not see SIGTERM
            _stop(self.proc)


# ---------------------------------------------------------------------------------------
# Gateway configurations
# ---------------------------------------------------------------------------------------


def api_key(name: str) -> str:
    return f"sk-acct-{name}"


def keys_yaml(keys: dict[str, str]) -> str:
    lines = []
    for name, extra in keys.items():
        extra = f", {extra}" if extra else ""
        lines.append(f"    - {{ name: {name}, key: {api_key(name)}{extra} }}")
    return "\n".join(lines)


def head_yaml(port: int, d: Path) -> str:
    return f"""\
listen: ["127.0.0.1:{port}"]
server:
  pid_file: {d / "switchyard.pid"}
  upgrade_sock: {d / "upgrade.sock"}
  grace_period: 1s
  shutdown_timeout: 1s
limits: {{ first_byte_timeout: 5s, connect_timeout: 500ms }}
"""


BUDGET_USD = 0.000008
MODEL_RPM = 3

# Every key belongs to one test (buckets never carry over).
MAIN_KEYS = {
    "admin": "",
    "rpm10": "limits: { requests_per_minute: 10 }",
    "rpm-headers": "limits: { requests_per_minute: 10 }",
    "rpm-sdk": "limits: { requests_per_minute: 1 }",
    "rpm-anthropic": "limits: { requests_per_minute: 1 }",
    "rpm-metrics": "limits: { requests_per_minute: 1 }",
    "tpm": "limits: { requests_per_minute: 100, tokens_per_minute: 1000 }",
    "tpm-small": "limits: { tokens_per_minute: 1000 }",
    "tpm-default": "limits: { tokens_per_minute: 3000 }",
    "tpm-cut": "limits: { tokens_per_minute: 8000 }",
    "budget": f"budget: {{ usd: {BUDGET_USD:.6f}, period: day }}",
    "model-x": "",
    "model-y": "",
    "cost-plain": "",
    "cost-stream": "",
    "cost-cache-json": "",
    "cost-cache-stream": "",
    "cost-reasoning": "",
    "cost-unpriced": "",
}


def main_config(mock: Mock, stub: Stub) -> Callable[[int, Path], str]:
    def cfg(port: int, d: Path) -> str:
        return head_yaml(port, d) + f"""\
auth:
  keys:
{keys_yaml(MAIN_KEYS)}
providers:
  openai:     {{ type: openai, base_url: "{mock.base_url}", api_key: sk-upstream-openai }}
  counting:   {{ type: openai, base_url: "http://127.0.0.1:{stub.port}/v1", api_key: sk-upstream-counting }}
  perplexity: {{ type: perplexity, base_url: "http://127.0.0.1:{stub.port}", api_key: sk-upstream-pplx }}
models:
  gpt-4o-mini:
    targets:
      - {{ provider: openai }}
  stub-mini:
    targets:
      - {{ provider: counting, model: gpt-4o-mini }}
  sonar-deep-research:
    targets:
      - {{ provider: perplexity }}
  house-model:
    targets:
      - {{ provider: openai, model: house-model-v1 }}
  shared-mini:
    limits: {{ requests_per_minute: {MODEL_RPM} }}
    targets:
      - {{ provider: openai, model: gpt-4o-mini }}
ratelimit: {{ store: memory }}
"""

    return cfg


def replica_config(mock: Mock, keys: dict[str, str], store: str) -> Callable[[int, Path], str]:
    def cfg(port: int, d: Path) -> str:
        return head_yaml(port, d) + f"""\
auth:
  keys:
{keys_yaml(keys)}
providers:
  openai: {{ type: openai, base_url: "{mock.base_url}", api_key: sk-upstream-openai }}
models:
  gpt-4o-mini:
    targets:
      - {{ provider: openai }}
ratelimit: {store}
"""

    return cfg


def redis_store(r: Redis, on_error: str = "fail_closed") -> str:
    return f'{{ store: redis, url: "{r.url}", on_store_error: {on_error} }}'


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub():
    s = Stub()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def gw(workdir, mocks, stub):
    """The gateway of the limit, budget and cost tests (memory store)."""
    g = Gateway("acct", workdir, mocks["a"], mocks["b"], config=main_config(mocks["a"], stub))
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture(scope="module")
def redis_pair(workdir, mocks):
    """Two replicas sharing one Redis."""
    started: list = []
    try:
        r = Redis(workdir, "shared")
        started.append(r)
        cfg = replica_config(mocks["a"], {"shared-seq": "limits: { requests_per_minute: 10 }",
                                          "shared-par": "limits: { requests_per_minute: 10 }"},
                             redis_store(r))
        for i in (1, 2):
            started.append(Gateway(f"acct-redis-{i}", workdir, mocks["a"], mocks["b"], config=cfg))
        yield started[1], started[2], r
    finally:
        for p in reversed(started):
            p.stop()


@pytest.fixture(scope="module")
def memory_pair(workdir, mocks):
    """Two replicas, each with its own memory store: the control of the Redis tests."""
    started: list = []
    try:
        cfg = replica_config(mocks["a"], {"mem-seq": "limits: { requests_per_minute: 10 }"},
                             "{ store: memory }")
        for i in (1, 2):
            started.append(Gateway(f"acct-mem-{i}", workdir, mocks["a"], mocks["b"], config=cfg))
        yield started[0], started[1]
    finally:
        for p in reversed(started):
            p.stop()


LONE_IDS = itertools.count()


@pytest.fixture
def lone_redis_gateway(workdir, mocks):
    """A factory: (Redis, Gateway) of their own, for tests that kill or pause Redis."""
    started: list = []

    def make(on_error: str, rpm: int = 5) -> tuple[Redis, Gateway]:
        name = f"lone{next(LONE_IDS)}"  # short: the upgrade socket's path must stay under 108 bytes
        r = Redis(workdir, name)
        started.append(r)
        cfg = replica_config(mocks["a"], {"rk": f"limits: {{ requests_per_minute: {rpm} }}"},
                             redis_store(r, on_error))
        g = Gateway(f"acct-{name}", workdir, mocks["a"], mocks["b"], config=cfg)
        started.append(g)
        return r, g

    try:
        yield make
    finally:
        for p in reversed(started):
            p.stop()


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def body_bytes(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def chat_body(model: str = "gpt-4o-mini", content: str = "hi", **extra) -> bytes:
    return body_bytes({"model": model, "messages": [{"role": "user", "content": content}], **extra})


def reservation(body: bytes, max_tokens: int) -> int:
    return math.ceil(len(body) / 4) + max_tokens


def post(g: Gateway, key: str, body: bytes, headers: dict | None = None,
         client: httpx.Client | None = None, path: str = "/v1/chat/completions") -> httpx.Response:
    h = {"authorization": f"Bearer {api_key(key)}", "content-type": "application/json", **(headers or {})}
    if client is not None:
        return client.post(f"{g.url}{path}", content=body, headers=h)
    return httpx.post(f"{g.url}{path}", content=body, headers=h, timeout=HTTP_TIMEOUT)


def sse_events(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            if data and data != "[DONE]":
                out.append(json.loads(data))
    return out


def ratelimit_headers(h: httpx.Headers, kind: str, limit: int) -> tuple[int, float]:
    """The three `x-ratelimit-*-<kind>` headers: limit as configured, remaining a plain integer,
    reset a decimal number of seconds. Returns (remaining, reset)."""
    for name in ("limit", "remaining", "reset"):
        assert f"x-ratelimit-{name}-{kind}" in h, f"x-ratelimit-{name}-{kind} missing: {dict(h)}"
    assert h[f"x-ratelimit-limit-{kind}"] == str(limit), dict(h)
    remaining = h[f"x-ratelimit-remaining-{kind}"]
    assert re.fullmatch(r"\d+", remaining), f"remaining-{kind} not a plain integer: {remaining!r}"
    reset = h[f"x-ratelimit-reset-{kind}"]
    assert re.fullmatch(r"\d+(\.\d+)?", reset), f"reset-{kind} not a decimal number of seconds: {reset!r}"
    assert 0 <= float(reset) <= 60, reset
    assert 0 <= int(remaining) <= limit
    return int(remaining), float(reset)


def no_ratelimit_headers(h: httpx.Headers) -> None:
    present = [k for k in h.keys() if k.lower().startswith("x-ratelimit-")]
    assert not present, f"a key without limits got {present}"


def assert_limit_429(resp: httpx.Response, word: str, dialect: str = "openai") -> int:
    """A gateway-made 429: Retry-After in whole seconds (>= 1), the client's dialect, and a
    message naming the limit. Returns Retry-After."""
    assert resp.status_code == 429, f"{resp.status_code}: {resp.text[:500]}"
    ra = resp.headers.get("retry-after")
    assert ra is not None and re.fullmatch(r"\d+", ra), f"Retry-After {ra!r}"
    assert int(ra) >= 1, ra
    body = resp.json()
    if dialect == "anthropic":
        assert body.get("type") == "error", body
        assert body["error"]["type"] == "rate_limit_error", body
        message = body["error"]["message"]
    else:
        assert set(body) == {"error"}, body
        for field in ("message", "type", "param", "code"):
            assert field in body["error"], body
        message = body["error"]["message"]
    assert isinstance(message, str) and word in message.lower(), f"message does not name {word!r}: {message!r}"
    assert resp.headers.get("x-request-id"), "every response carries x-request-id"
    return int(ra)


def assert_openai_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, f"{resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    assert set(body) == {"error"}, body
    for field in ("message", "type", "param", "code"):
        assert field in body["error"], body
    return body["error"]


def scrape(g: Gateway) -> str:
    r = httpx.get(f"{g.url}/metrics", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text[:500]
    return r.text


def metric(g: Gateway, name: str, text: str | None = None, **labels: str) -> float | None:
    """Sum of the samples `name` whose labels include `labels`; None when there is none."""
    text = scrape(g) if text is None else text
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
        v = metric(g, name, **labels)
        if ok(v) or time.monotonic() >= deadline:
            return v
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# Request limits
# ---------------------------------------------------------------------------------------


def test_requests_per_minute_admits_exactly_the_limit(gw):
    """30 requests in a burst on a 10-per-minute key: 10 pass, 20 get a gateway 429 with
    Retry-After, the limit headers and a message naming `requests`; one rejection counted each."""
    body = chat_body()
    statuses, refused = [], []
    t0 = time.monotonic()
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        for _ in range(30):
            r = post(gw, "rpm10", body, client=c)
            statuses.append(r.status_code)
            if r.status_code == 429:
                refused.append(r)
    elapsed = time.monotonic() - t0
    passed = statuses.count(200)
    # A bucket of 10 a minute regains one request every 6 s of the burst.
    assert 10 <= passed <= 10 + int(elapsed / 6), (statuses, elapsed)
    assert statuses[:10] == [200] * 10, statuses
    assert set(statuses) <= {200, 429}, statuses
    for r in refused:
        ra = assert_limit_429(r, "requests")
        assert ra <= 7, f"a 10/min bucket frees one request within 6 s, Retry-After {ra}"
        remaining, _ = ratelimit_headers(r.headers, "requests", 10)
        assert remaining == 0
        assert r.headers.get("x-mock-id") is None, "a refused request never reached the upstream"
    v = wait_metric(gw, "switchyard_ratelimit_rejections_total", lambda v: v is not None and v >= len(refused),
                    key="rpm10", kind="requests")
    time.sleep(0.1)
    v = metric(gw, "switchyard_ratelimit_rejections_total", key="rpm10", kind="requests")
    assert v == len(refused), f"one rejection per refused request: {v} != {len(refused)}"


def test_success_headers_count_down_and_keys_without_limits_get_none(gw):
    body = chat_body()
    remaining = []
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        for _ in range(3):
            r = post(gw, "rpm-headers", body, client=c)
            assert r.status_code == 200, r.text[:300]
            rem, reset = ratelimit_headers(r.headers, "requests", 10)
            assert reset > 0, "a request was just taken: the window is not free"
            remaining.append(rem)
            assert "x-ratelimit-limit-tokens" not in r.headers, "the key has no tokens_per_minute"
        assert remaining == [9, 8, 7], remaining
        r = post(gw, "admin", body, client=c)
        assert r.status_code == 200
        no_ratelimit_headers(r.headers)


def test_openai_sdk_raises_rate_limit_error_with_headers(gw):
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=api_key("rpm-sdk"), max_retries=0, timeout=HTTP_TIMEOUT)
    try:
        ok = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError) as ei:
            c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        c.close()
    e = ei.value
    assert e.status_code == 429
    assert_limit_429(e.response, "requests")
    ratelimit_headers(e.response.headers, "requests", 1)
    assert e.code == "rate_limit_exceeded"


def test_anthropic_endpoint_answers_429_in_its_dialect(gw):
    c = anthropic.Anthropic(base_url=gw.url, api_key=api_key("rpm-anthropic"), max_retries=0, timeout=HTTP_TIMEOUT)
    try:
        msg = c.messages.create(model="gpt-4o-mini", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert msg.content
        with pytest.raises(anthropic.RateLimitError) as ei:
            c.messages.create(model="gpt-4o-mini", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    finally:
        c.close()
    resp = ei.value.response
    assert_limit_429(resp, "requests", dialect="anthropic")
    ratelimit_headers(resp.headers, "requests", 1)


def test_model_limit_is_shared_by_every_key(gw):
    """`models.shared-mini.limits.requests_per_minute: 3` holds across keys."""
    body = chat_body(model="shared-mini")
    statuses = []
    t0 = time.monotonic()
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        for i in range(8):
            r = post(gw, ("model-x", "model-y")[i % 2], body, client=c)
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert_limit_429(r, "requests")
    elapsed = time.monotonic() - t0
    assert MODEL_RPM <= statuses.count(200) <= MODEL_RPM + int(elapsed * MODEL_RPM / 60), statuses
    assert statuses[:MODEL_RPM] == [200] * MODEL_RPM and set(statuses) <= {200, 429}, statuses


# ---------------------------------------------------------------------------------------
# Token limits: reservation and settlement
# ---------------------------------------------------------------------------------------


def test_token_headers_reflect_settled_usage_not_the_reservation(gw):
    """tokens_per_minute 1000, max_tokens 400: the first answer shows the reservation taken;
    the next one, after settlement, shows the real usage (~14 tokens) taken instead."""
    limit = 1000
    body = chat_body(max_tokens=400)
    r_tokens = reservation(body, 400)
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        r1 = post(gw, "tpm", body, client=c)
        assert r1.status_code == 200, r1.text[:300]
        rem1, _ = ratelimit_headers(r1.headers, "tokens", limit)
        ratelimit_headers(r1.headers, "requests", 100)
        used1 = r1.json()["usage"]
        real1 = used1["prompt_tokens"] + used1["completion_tokens"]
        assert abs(rem1 - (limit - r_tokens)) <= 1, (rem1, limit - r_tokens)
        time.sleep(SETTLE)
        r2 = post(gw, "tpm", body, client=c)
        assert r2.status_code == 200, r2.text[:300]
        rem2, _ = ratelimit_headers(r2.headers, "tokens", limit)
    # Bucket before r2: full minus r1's real usage (plus a few tokens refilled, capped at full).
    assert limit - real1 - r_tokens - 1 <= rem2 <= limit - r_tokens, (
        f"remaining {rem2}: expected {limit - real1 - r_tokens} (real usage {real1} settled); "
        f"{limit - 2 * r_tokens} would mean the 400-token reservation was kept"
    )


def test_reservation_over_the_whole_limit_is_refused_before_any_upstream(gw, stub):
    limit = 1000
    marker = f"refused-{uuid.uuid4()}"
    big = chat_body(model="stub-mini", content=marker, max_tokens=5000)
    r = post(gw, "tpm-small", big)
    assert_limit_429(r, "tokens")
    time.sleep(0.2)
    assert stub.requests_with(marker) == [], "the upstream saw a request the gateway refused"
    # A refused request leaves no charge: the next fitting one finds the bucket full.
    ok_marker = f"fits-{uuid.uuid4()}"
    small = chat_body(model="stub-mini", content=ok_marker, max_tokens=10)
    r2 = post(gw, "tpm-small", small)
    assert r2.status_code == 200, r2.text[:300]
    assert len(stub.requests_with(ok_marker)) == 1
    rem2, _ = ratelimit_headers(r2.headers, "tokens", limit)
    assert abs(rem2 - (limit - reservation(small, 10))) <= 1, (rem2, limit - reservation(small, 10))
    v = wait_metric(gw, "switchyard_ratelimit_rejections_total", lambda v: v == 1, key="tpm-small", kind="tokens")
    assert v == 1, v
    access = gw.wait_access(r.headers["x-request-id"])
    assert access["status"] == 429 and access["attempts"] == 0, access
    # Like every 429 the gateway makes, this one says where the bucket stands (nothing taken).
    remaining, _ = ratelimit_headers(r.headers, "tokens", limit)
    assert remaining == limit, remaining


def test_reservation_takes_default_max_tokens_or_max_completion_tokens(gw, stub):
    """tokens_per_minute 3000: no max_tokens reserves the default 4096 (refused);
    max_completion_tokens counts like max_tokens."""
    limit = 3000
    refused = []
    r = post(gw, "tpm-default", chat_body(model="stub-mini", content=f"nomax-{uuid.uuid4()}"))
    assert_limit_429(r, "tokens")
    refused.append(r)
    r = post(gw, "tpm-default", chat_body(model="stub-mini", max_completion_tokens=limit))
    assert_limit_429(r, "tokens")
    refused.append(r)
    body = chat_body(model="stub-mini", max_completion_tokens=100)
    r = post(gw, "tpm-default", body)
    assert r.status_code == 200, r.text[:300]
    rem, _ = ratelimit_headers(r.headers, "tokens", limit)
    assert abs(rem - (limit - reservation(body, 100))) <= 1, (rem, limit - reservation(body, 100))
    v = wait_metric(gw, "switchyard_ratelimit_rejections_total", lambda v: v == 2, key="tpm-default", kind="tokens")
    assert v == 2, v
    for r in refused:
        ratelimit_headers(r.headers, "tokens", limit)


def test_client_disconnect_mid_stream_is_settled_once(gw, stub):
    """A client that leaves a slow stream after two events is charged once: the bucket holds
    one estimate of it (about the prompt plus the events relayed), not nothing, not the whole
    reservation (max_tokens 2000 was never produced), not twice."""
    limit, max_tokens, n_events = 8000, 2000, 40
    marker = f"cut-{uuid.uuid4()}"
    body = chat_body(model="stub-mini", content=marker + " " + "x" * 8000, max_tokens=max_tokens, stream=True)
    prompt_est = math.ceil(len(body) / 4)
    r_tokens = prompt_est + max_tokens
    usage = json.dumps({"prompt": prompt_est, "completion": n_events})
    headers = {"authorization": f"Bearer {api_key('tpm-cut')}", "content-type": "application/json",
               "x-stub-stream": f"{n_events}:100", "x-stub-usage": usage}
    t0 = time.monotonic()
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        with c.stream("POST", f"{gw.url}/v1/chat/completions", content=body, headers=headers) as resp:
            assert resp.status_code == 200, resp.read()[:300]
            rem0, _ = ratelimit_headers(resp.headers, "tokens", limit)
            got = 0
            for line in resp.iter_lines():
                if line.startswith("data:") and '"content"' in line:
                    got += 1
                if got >= 2:
                    break
    # The connection is closed: the stream was not read to its end.
    assert abs(rem0 - (limit - r_tokens)) <= 1, (rem0, limit - r_tokens)
    time.sleep(2.5)  # settlement after a disconnect: "within a few seconds"
    probe = chat_body(model="stub-mini", content="probe", max_tokens=1)
    p = reservation(probe, 1)
    r1 = post(gw, "tpm-cut", probe)
    t1 = time.monotonic()
    assert r1.status_code == 200, r1.text[:300]
    rem1, _ = ratelimit_headers(r1.headers, "tokens", limit)
    charged = limit - rem1 - p  # what the cut stream still holds, less what refilled since
    refill = limit / 60 * (t1 - t0)
    # Its estimate is about the prompt (body bytes / 4) plus the few events relayed.
    assert charged >= 0.75 * prompt_est - refill, (
        f"the cut stream holds {charged} tokens: it was not charged (prompt alone is {prompt_est})")
    assert charged <= prompt_est + n_events + 50, (
        f"the cut stream holds {charged} tokens, more than one estimate ({prompt_est} + at most "
        f"{n_events} events): its reservation ({r_tokens}) was kept, or it was charged twice")
    time.sleep(1.0)
    r2 = post(gw, "tpm-cut", probe)
    assert r2.status_code == 200
    rem2, _ = ratelimit_headers(r2.headers, "tokens", limit)
    assert rem2 >= rem1 - p - 1, f"a later charge appeared: {rem1} -> {rem2} (probe {p})"
    assert len(stub.requests_with(marker)) == 1


# ---------------------------------------------------------------------------------------
# Budgets
# ---------------------------------------------------------------------------------------


def test_budget_admits_while_spend_is_below_and_refuses_after(gw):
    body = chat_body()
    statuses, responses = [], []
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        for _ in range(6):
            r = post(gw, "budget", body, client=c)
            statuses.append(r.status_code)
            responses.append(r)
            time.sleep(SETTLE)  # each answer's spend is settled before the next is admitted
    first = responses[0]
    assert first.status_code == 200, first.text[:300]
    cost = expected_cost("gpt-4o-mini", first.json()["usage"])
    assert cost > 0
    ratio = BUDGET_USD / cost
    assert abs(ratio - round(ratio)) > 0.05, "pick a budget off a multiple of one request's cost"
    admitted = math.ceil(ratio)  # request k is admitted while (k-1)*cost < usd
    assert admitted < 6
    assert statuses == [200] * admitted + [429] * (6 - admitted), (statuses, cost)
    for r in responses[admitted:]:
        ra = assert_limit_429(r, "budget")
        assert ra <= 86400, f"a day budget frees within a day: Retry-After {ra}"
    v = wait_metric(gw, "switchyard_ratelimit_rejections_total", lambda v: v == 6 - admitted,
                    key="budget", kind="budget")
    assert v == 6 - admitted, v
    spent = metric(gw, "switchyard_cost_usd_total", key="budget")
    assert spent is not None and abs(spent - admitted * cost) <= 1e-9, (spent, admitted * cost)


# ---------------------------------------------------------------------------------------
# Cost
# ---------------------------------------------------------------------------------------


def check_cost(g: Gateway, key: str, model: str, provider: str, request_id: str, expected: float) -> None:
    v = wait_metric(g, "switchyard_cost_usd_total", lambda v: v is not None and v >= expected - 1e-9,
                    model=model, provider=provider, key=key)
    assert v is not None, f"no switchyard_cost_usd_total{{model={model},provider={provider},key={key}}}"
    assert abs(v - expected) <= 1e-9, (v, expected)
    line = g.wait_access(request_id)
    assert line.get("key") == key, line
    assert isinstance(line.get("cost_usd"), (int, float)), line
    assert abs(line["cost_usd"] - expected) <= 1e-9, (line["cost_usd"], expected)


def test_cost_non_streamed(gw):
    """The mock reports prompt 11 (2 cached), completion 3."""
    r = post(gw, "cost-plain", chat_body())
    assert r.status_code == 200, r.text[:300]
    usage = r.json()["usage"]
    assert usage_counts(usage)["cached"] > 0, usage
    check_cost(gw, "cost-plain", "gpt-4o-mini", "openai", r.headers["x-request-id"],
               expected_cost("gpt-4o-mini", usage))


def test_cost_streamed_with_include_usage(gw):
    body = chat_body(stream=True, stream_options={"include_usage": True})
    r = post(gw, "cost-stream", body, headers={"x-mock": "sse:4:0"})
    assert r.status_code == 200, r.text[:300]
    usages = [e["usage"] for e in sse_events(r.text) if e.get("usage")]
    assert len(usages) == 1, r.text[-800:]
    check_cost(gw, "cost-stream", "gpt-4o-mini", "openai", r.headers["x-request-id"],
               expected_cost("gpt-4o-mini", usages[0]))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_cost_cached_cache_creation_and_reasoning(gw, stub, stream):
    """Usage 10000 in (4000 cached, 1000 cache writes), 3000 out (2000 reasoning), priced by
    the upstream model id (`stub-mini` -> gpt-4o-mini): every token billed once, at its price."""
    key = "cost-cache-stream" if stream else "cost-cache-json"
    spec = {"prompt": 10000, "completion": 3000, "cached": 4000, "cache_creation": 1000, "reasoning": 2000}
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    r = post(gw, key, chat_body(model="stub-mini", **extra), headers={"x-stub-usage": json.dumps(spec)})
    assert r.status_code == 200, r.text[:300]
    usage = [e["usage"] for e in sse_events(r.text) if e.get("usage")][-1] if stream else r.json()["usage"]
    assert usage_counts(usage) == {"input": 10000, "cached": 4000, "creation": 1000, "output": 3000,
                                   "reasoning": 2000}, usage
    expected = expected_cost("gpt-4o-mini", usage)
    naive = (10000 * CATALOG["gpt-4o-mini"]["i"] + 3000 * CATALOG["gpt-4o-mini"]["o"])
    assert abs(expected - naive) > 1e-6, "the cached tokens must make a difference"
    check_cost(gw, key, "stub-mini", "counting", r.headers["x-request-id"], expected)


def test_cost_reasoning_priced_apart_from_output(gw):
    """sonar-deep-research has its own reasoning price (3e-6 a token, output 8e-6)."""
    entry = CATALOG["perplexity/sonar-deep-research"]
    assert entry.get("r") is not None and entry["r"] != entry["o"], entry
    spec = {"prompt": 1000, "completion": 3000, "reasoning": 2000}
    r = post(gw, "cost-reasoning", chat_body(model="sonar-deep-research"), headers={"x-stub-usage": json.dumps(spec)})
    assert r.status_code == 200, r.text[:300]
    usage = r.json()["usage"]
    expected = expected_cost("perplexity/sonar-deep-research", usage)
    assert abs(expected - (1000 * entry["i"] + 3000 * entry["o"])) > 1e-6
    check_cost(gw, "cost-reasoning", "sonar-deep-research", "perplexity", r.headers["x-request-id"], expected)


def test_unpriced_model_is_served_at_zero_cost_and_counted(gw):
    before = metric(gw, "switchyard_unpriced_requests_total", model="house-model") or 0.0
    r = post(gw, "cost-unpriced", chat_body(model="house-model"))
    assert r.status_code == 200, r.text[:300]
    v = wait_metric(gw, "switchyard_unpriced_requests_total", lambda v: v is not None and v >= before + 1,
                    model="house-model")
    assert v == before + 1, (before, v)
    assert metric(gw, "switchyard_unpriced_requests_total", model="house-model", provider="openai") is not None
    cost = metric(gw, "switchyard_cost_usd_total", key="cost-unpriced")
    assert cost in (None, 0.0), cost
    line = gw.wait_access(r.headers["x-request-id"])
    assert line.get("cost_usd") == 0, line


def test_metrics_exposition_parses_without_duplicates(gw):
    post(gw, "admin", chat_body())
    assert post(gw, "rpm-metrics", chat_body()).status_code == 200
    assert post(gw, "rpm-metrics", chat_body()).status_code == 429
    time.sleep(SETTLE)
    text = scrape(gw)
    families = list(text_string_to_metric_families(text))
    typed = set(re.findall(r"^# TYPE (\S+) \S+$", text, re.M))
    seen = set()
    for fam in families:
        assert fam.type != "unknown", f"{fam.name}: samples without a # TYPE line"
        assert fam.name in typed or f"{fam.name}_total" in typed, f"no # TYPE line for {fam.name}"
        for s in fam.samples:
            series = (s.name, tuple(sorted(s.labels.items())))
            assert series not in seen, f"duplicate series {series}"
            seen.add(series)
    for name, kind in [("switchyard_cost_usd_total", "counter"),
                       ("switchyard_ratelimit_rejections_total", "counter"),
                       ("switchyard_unpriced_requests_total", "counter")]:
        assert re.search(rf"^# TYPE {name} {kind}$", text, re.M), f"# TYPE {name} {kind} missing"
    assert metric(gw, "switchyard_ratelimit_rejections_total", text=text, key="rpm-metrics", kind="requests") == 1
    assert (metric(gw, "switchyard_cost_usd_total", text=text, key="admin") or 0) > 0


# ---------------------------------------------------------------------------------------
# Redis: one limit across replicas
# ---------------------------------------------------------------------------------------


def test_redis_replicas_share_one_limit_sequentially(redis_pair):
    a, b, redis = redis_pair
    scripts_before = redis_script_calls(redis.port)
    body = chat_body()
    statuses, remaining = [], []
    t0 = time.monotonic()
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        for i in range(30):
            r = post((a, b)[i % 2], "shared-seq", body, client=c)
            statuses.append(r.status_code)
            if r.status_code == 200:
                remaining.append(ratelimit_headers(r.headers, "requests", 10)[0])
            else:
                assert_limit_429(r, "requests")
    elapsed = time.monotonic() - t0
    assert 10 <= statuses.count(200) <= 10 + int(elapsed / 6), (statuses, elapsed)
    assert set(statuses) <= {200, 429}, statuses
    # Both replicas count down one bucket: 9, 8, 7, ... whichever replica answered.
    assert remaining[0] == 9, remaining
    assert all(x > y for x, y in zip(remaining[:10], remaining[1:10])), remaining
    # Each check-and-count is a script run in Redis, refused requests included.
    scripts = redis_script_calls(redis.port) - scripts_before
    assert scripts >= 30, f"{scripts} EVAL/EVALSHA/FCALL calls for 30 requests"


def test_redis_replicas_share_one_limit_under_concurrency(redis_pair):
    a, b, _ = redis_pair
    body = chat_body()

    def worker(w: int) -> list[int]:
        out = []
        with httpx.Client(timeout=HTTP_TIMEOUT) as c:
            for j in range(5):
                out.append(post((a, b)[(w + j) % 2], "shared-par", body, client=c).status_code)
        return out

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = [s for chunk in pool.map(worker, range(6)) for s in chunk]
    elapsed = time.monotonic() - t0
    assert len(statuses) == 30
    assert set(statuses) <= {200, 429}, statuses
    assert 10 <= statuses.count(200) <= 10 + int(elapsed / 6), (sorted(statuses), elapsed)


def test_memory_store_replicas_each_enforce_their_own(memory_pair):
    """The control: the same burst through two memory-store replicas passes more than 10."""
    a, b = memory_pair
    body = chat_body()
    statuses = []
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        for i in range(30):
            statuses.append(post((a, b)[i % 2], "mem-seq", body, client=c).status_code)
    assert set(statuses) <= {200, 429}, statuses
    assert 10 < statuses.count(200) <= 22, statuses
    assert 429 in statuses, "each replica still enforces its own 10"


def await_enforcement(g: Gateway, allowed: set[int], timeout: float = 10.0) -> list[int]:
    """Requests until a 429 comes back (Redis reachable again, bucket of 5 spent)."""
    statuses = []
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        while time.monotonic() < deadline:
            r = post(g, "rk", chat_body(), client=c)
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert_limit_429(r, "requests")
                return statuses
            assert r.status_code in allowed, (r.status_code, r.text[:300], statuses[-20:])
            time.sleep(0.1 if r.status_code != 200 else 0.02)
    raise AssertionError(f"no 429 within {timeout}s of Redis coming back: {statuses[-30:]}")


def test_redis_killed_fail_closed_answers_503_then_recovers(lone_redis_gateway):
    redis, g = lone_redis_gateway("fail_closed")
    r = post(g, "rk", chat_body())
    assert r.status_code == 200, r.text[:300]
    ratelimit_headers(r.headers, "requests", 5)
    redis.kill()
    for _ in range(3):
        t = time.monotonic()
        r = post(g, "rk", chat_body())
        took = time.monotonic() - t
        assert took < 5.0, f"answered after {took:.1f}s with Redis gone"
        assert_openai_error(r, 503)
    t = time.monotonic()
    r = httpx.post(f"{g.url}/v1/messages", timeout=HTTP_TIMEOUT,
                   headers={"x-api-key": api_key("rk"), "anthropic-version": "2023-06-01"},
                   json={"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert time.monotonic() - t < 5.0
    assert r.status_code == 503, r.text[:300]
    assert r.json().get("type") == "error" and "message" in r.json().get("error", {}), r.text[:300]
    assert g.proc.poll() is None, "the gateway died with Redis"
    assert httpx.get(f"{g.url}/healthz", timeout=HTTP_TIMEOUT).status_code == 200
    redis.start()
    statuses = await_enforcement(g, {200, 503})
    assert statuses.count(200) <= 5, statuses


def test_redis_killed_fail_open_serves_then_recovers(lone_redis_gateway):
    redis, g = lone_redis_gateway("fail_open")
    r = post(g, "rk", chat_body())
    assert r.status_code == 200, r.text[:300]
    ratelimit_headers(r.headers, "requests", 5)
    redis.kill()
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        for _ in range(8):  # more than the limit: nothing is enforced while the store is gone
            t = time.monotonic()
            r = post(g, "rk", chat_body(), client=c)
            assert time.monotonic() - t < 5.0
            assert r.status_code == 200, r.text[:300]
    assert g.proc.poll() is None
    redis.start()
    statuses = await_enforcement(g, {200})
    assert statuses.count(200) <= 5 + 1, statuses


def test_redis_hung_requests_are_answered_within_5s(lone_redis_gateway):
    """A Redis that accepts nothing (SIGSTOP): the store client's timeouts bound every answer."""
    redis, g = lone_redis_gateway("fail_closed")
    r = post(g, "rk", chat_body())
    assert r.status_code == 200, r.text[:300]
    redis.pause()
    try:
        for _ in range(2):
            t = time.monotonic()
            r = post(g, "rk", chat_body())
            took = time.monotonic() - t
            assert took < 5.0, f"answered after {took:.1f}s with Redis hung"
            assert_openai_error(r, 503)
        assert g.proc.poll() is None
    finally:
        redis.resume()
    # Calls that timed out may still run once Redis resumes: at most the 4 left pass, plus a refill.
    statuses = await_enforcement(g, {200, 503})
    assert statuses.count(200) <= 5, statuses


# ---------------------------------------------------------------------------------------
# Reload
# ---------------------------------------------------------------------------------------


def test_reload_changes_limits_from_the_next_request_and_keeps_the_counts(workdir, mocks):
    """SIGHUP with a new `requests_per_minute`: the next request sees the new limit, and what
    the key had already taken stays taken (the bucket is found by key name, its level in units)."""
    def config(rpm: int) -> Callable[[int, Path], str]:
        return replica_config(mocks["a"], {"reloader": f"limits: {{ requests_per_minute: {rpm} }}"},
                              "{ store: memory }")

    g = Gateway("reload", workdir, mocks["a"], mocks["b"], config=config(10))
    try:
        body = chat_body()
        for want in (9, 8, 7, 6, 5):
            r = post(g, "reloader", body)
            assert r.status_code == 200, r.text
            remaining, _ = ratelimit_headers(r.headers, "requests", 10)
            assert remaining == want, (remaining, want)

        def reload_to(rpm: int) -> None:
            g.config_path.write_text(config(rpm)(g.port, g.dir))
            g.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)  # a reload is applied in a few ms; a request before it counts too

        # A higher limit: 5 taken (less a few hundredths drained) out of 20.
        reload_to(20)
        deadline = time.monotonic() + 5
        while True:
            r = post(g, "reloader", body)
            assert r.status_code == 200, r.text
            if r.headers.get("x-ratelimit-limit-requests") == "20":
                break
            assert time.monotonic() < deadline, "the reload never applied"
            time.sleep(0.05)
        remaining, _ = ratelimit_headers(r.headers, "requests", 20)
        taken = 20 - remaining
        assert 6 <= taken <= 7, f"counts were lost across the reload: {taken} taken"

        # A lower limit than what is taken: the next request is refused at once.
        reload_to(taken - 1 if taken > 2 else 2)
        deadline = time.monotonic() + 5
        while True:
            r = post(g, "reloader", body)
            if r.status_code == 429:
                break
            assert time.monotonic() < deadline, "the lower limit never applied"
            time.sleep(0.05)
        assert_limit_429(r, "requests")
        assert g.proc.poll() is None
    finally:
        g.stop()


def test_passthrough_counts_against_the_keys_requests(workdir, mocks):
    """Provider-native passthrough parses nothing, but it is no way around a key's limit."""
    g = Gateway("passthrough", workdir, mocks["a"], mocks["b"],
                config=replica_config(mocks["a"], {"native": "limits: { requests_per_minute: 2 }"},
                                      "{ store: memory }"))
    try:
        statuses = [post(g, "native", chat_body(), path="/passthrough/openai/v1/chat/completions").status_code
                    for _ in range(3)]
        assert statuses == [200, 200, 429], statuses
        r = post(g, "native", chat_body(), path="/passthrough/openai/v1/chat/completions")
        assert_limit_429(r, "requests")
    finally:
        g.stop()
