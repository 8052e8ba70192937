"""Fixtures for the official-SDK suite: real `switchyard` and `mock-upstream` processes on
127.0.0.1, driven through the `openai` Python SDK; and, for test_mocks.py, the mock upstreams
alone (`mock-upstream`, `mock_bedrock.py`), driven through the `anthropic`, `openai` and
botocore clients with no gateway in between.

Binaries come from `target/debug/` (override with SWITCHYARD_BIN / MOCK_UPSTREAM_BIN).
Every wait is bounded; every process started here is stopped at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
SWITCHYARD_BIN = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target" / "debug" / "switchyard"))
MOCK_BIN = Path(os.environ.get("MOCK_UPSTREAM_BIN", ROOT / "target" / "debug" / "mock-upstream"))

ADMIN_KEY = "sk-admin"
TEAM_A_KEY = "sk-team-a"
START_TIMEOUT = 15.0  # seconds, per process start
CLIENT_TIMEOUT = 10.0  # seconds, per SDK request (the gateway's own timeouts are far shorter)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=3)


def _clean_env(**extra: str) -> dict[str, str]:
    # No provider variables from the caller's environment leak into the processes.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RUST_LOG": "info"}
    env.update(extra)
    return env


class Mock:
    """One `mock-upstream ADDR ID` process."""

    def __init__(self, ident: str, workdir: Path):
        self.id = ident
        last_err = ""
        for _ in range(3):  # a free port can be taken between probe and bind: retry
            self.port = free_port()
            self.log = workdir / f"mock-{ident}.log"
            logf = open(self.log, "wb")
            self.proc = subprocess.Popen(
                [str(MOCK_BIN), f"127.0.0.1:{self.port}", ident],
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_clean_env(),
            )
            logf.close()
            if self._wait_listening():
                return
            last_err = self.log.read_text(errors="replace")
            _stop(self.proc)
        raise RuntimeError(f"mock-upstream {ident} did not start: {last_err}")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        _stop(self.proc)


def gateway_config(port: int, workdir: Path, a: Mock, b: Mock, dead_port: int) -> str:
    return f"""\
listen: ["127.0.0.1:{port}"]
server:
  pid_file: {workdir / "switchyard.pid"}
  upgrade_sock: {workdir / "upgrade.sock"}
  grace_period: 1s
  shutdown_timeout: 1s
limits: {{ first_byte_timeout: 2s, connect_timeout: 500ms }}
auth:
  keys:
    - {{ name: admin, key: {ADMIN_KEY} }}
    - {{ name: team-a, key: {TEAM_A_KEY}, models: ["gpt-4o*"] }}
providers:
  primary: {{ type: openai, base_url: "{a.base_url}", api_key: sk-upstream-primary }}
  backup:  {{ type: openai, base_url: "{b.base_url}", api_key: sk-upstream-backup }}
  dead:    {{ type: openai, base_url: "http://127.0.0.1:{dead_port}/v1", api_key: sk-upstream-dead }}
models:
  gpt-4o-mini:
    targets:
      - {{ provider: primary }}
      - {{ provider: backup, model: backup-mini }}
  llama-local:
    targets:
      - {{ provider: backup, model: meta-llama/Llama-3.1-8B-Instruct }}
  flaky:
    targets:
      - {{ provider: dead }}
      - {{ provider: primary, priority: 1 }}
"""


class Gateway:
    """One `switchyard --config FILE` process; stderr (the access log) goes to `self.log`.

    `config(port, dir)`, when given, writes the whole config file instead of `gateway_config`
    (test_accounting.py: limits, budgets, Redis); `dir` is this gateway's own folder, where its
    `server.pid_file` and `server.upgrade_sock` must go so that replicas do not collide.
    """

    def __init__(
        self,
        name: str,
        workdir: Path,
        a: Mock,
        b: Mock,
        config: Callable[[int, Path], str] | None = None,
    ):
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir()
        # Port 1 (tcpmux): nothing listens there, so a connect is refused at once. A port
        # from free_port() could be taken by a mock started later.
        self.dead_port = 1
        self.config_path = self.dir / "switchyard.yaml"
        self.log = self.dir / "gateway.stderr.log"
        last_err = ""
        for _ in range(3):
            self.port = free_port()
            if config is None:
                text = gateway_config(self.port, self.dir, a, b, self.dead_port)
            else:
                text = config(self.port, self.dir)
            self.config_path.write_text(text)
            logf = open(self.log, "wb")
            self.proc = subprocess.Popen(
                [str(SWITCHYARD_BIN), "--config", str(self.config_path)],
                stdout=logf,
                stderr=logf,
                stdin=subprocess.DEVNULL,
                env=_clean_env(),
                cwd=self.dir,
            )
            logf.close()
            if self._wait_healthy():
                return
            last_err = self.log.read_text(errors="replace")
            _stop(self.proc)
        raise RuntimeError(f"switchyard ({name}) did not become healthy; log:\n{last_err}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self, api_key: str = ADMIN_KEY, **kw) -> openai.OpenAI:
        kw.setdefault("timeout", CLIENT_TIMEOUT)
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, **kw)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def access_lines(self) -> list[dict]:
        out = []
        for line in self.logs().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "request_id" in obj:
                out.append(obj)
        return out

    def wait_access(self, request_id: str, timeout: float = 3.0) -> dict:
        """The access-log line of one request (it may be written just after the response)."""
        deadline = time.monotonic() + timeout
        while True:
            for obj in self.access_lines():
                if obj.get("request_id") == request_id:
                    return obj
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no access-log line for request_id={request_id!r}; log tail:\n{self.logs()[-3000:]}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="session")
def workdir():
    for b in (SWITCHYARD_BIN, MOCK_BIN):
        if not b.is_file():
            pytest.exit(f"missing binary {b}: build it with `cargo build` first", returncode=2)
    d = Path(tempfile.mkdtemp(prefix="switchyard-sdk-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mocks(workdir):
    started: dict[str, Mock] = {}
    try:
        for ident in ("a", "b"):
            started[ident] = Mock(ident, workdir)
        yield started
    finally:
        for m in started.values():
            m.stop()


@pytest.fixture(scope="session")
def gateway(workdir, mocks):
    """The gateway for well-behaved traffic."""
    gw = Gateway("main", workdir, mocks["a"], mocks["b"])
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def fault_gateway(workdir, mocks):
    """A second gateway, same config, for tests that make upstreams fail: the passive
    health state (consecutive failures, ejections) they build up stays out of `gateway`."""
    gw = Gateway("faults", workdir, mocks["a"], mocks["b"])
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def client(gateway):
    c = gateway.client()
    yield c
    c.close()


# ---------------------------------------------------------------------------------------
# Mock upstreams on their own, for test_mocks.py: no gateway binary needed.
# ---------------------------------------------------------------------------------------

BEDROCK_MOCK = Path(__file__).resolve().parent / "mock_bedrock.py"
AWS_KEY_ID = "AKIDMOCKEXAMPLE"
AWS_SECRET = "mock-secret-key"
AWS_TOKEN = "mock-session-token"
AWS_BEARER = "mock-bedrock-api-key"
AWS_REGION = "us-west-2"


@pytest.fixture(scope="session")
def mocks_workdir():
    if not MOCK_BIN.is_file():
        pytest.exit(f"missing binary {MOCK_BIN}: build it with `cargo build -p mock-upstream` first", returncode=2)
    d = Path(tempfile.mkdtemp(prefix="switchyard-mocks-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def dialect_mock(mocks_workdir):
    """One `mock-upstream` process; its root URL serves the Anthropic and Azure dialects."""
    m = Mock("dialects", mocks_workdir)
    try:
        yield m
    finally:
        m.stop()


class BedrockMock:
    """One `python mock_bedrock.py 0` process (it prints `port N`, then `ready`)."""

    def __init__(self, name: str, workdir: Path, **env: str):
        import select
        import sys

        self.log = workdir / f"bedrock-{name}.log"
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(BEDROCK_MOCK), "0"],
            stdout=subprocess.PIPE,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            env=_clean_env(**env),
        )
        logf.close()
        self.port = 0
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        while time.monotonic() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            lines = buf.decode(errors="replace").splitlines()
            for line in lines:
                if line.startswith("port "):
                    self.port = int(line.split()[1])
            if "ready" in lines and self.port:
                return
        _stop(self.proc)
        raise RuntimeError(f"mock_bedrock {name} did not start: {buf!r} {self.log.read_text(errors='replace')}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def last_request(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/__last_request", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        _stop(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture(scope="session")
def bedrock_mock(mocks_workdir):
    """Static credentials (no session token) or the Bedrock API key."""
    m = BedrockMock(
        "static",
        mocks_workdir,
        MOCK_AWS_ACCESS_KEY_ID=AWS_KEY_ID,
        MOCK_AWS_SECRET_ACCESS_KEY=AWS_SECRET,
        MOCK_AWS_REGION=AWS_REGION,
        MOCK_AWS_BEARER_TOKEN=AWS_BEARER,
    )
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="session")
def bedrock_sts_mock(mocks_workdir):
    """Temporary credentials: a session token is required."""
    m = BedrockMock(
        "sts",
        mocks_workdir,
        MOCK_AWS_ACCESS_KEY_ID=AWS_KEY_ID,
        MOCK_AWS_SECRET_ACCESS_KEY=AWS_SECRET,
        MOCK_AWS_SESSION_TOKEN=AWS_TOKEN,
        MOCK_AWS_REGION=AWS_REGION,
    )
    try:
        yield m
    finally:
        m.stop()
