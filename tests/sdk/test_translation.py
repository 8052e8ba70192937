"""Translation across dialects (issue 8), driven by the official `anthropic` and `openai`
SDKs through a real switchyard in front of mock upstreams of each dialect:

- `dialect_mock` (mock-upstream): Anthropic Messages at its root, Azure OpenAI under /openai;
- `mocks["a"]` (mock-upstream): an OpenAI-compatible server (a self-hosted fleet);
- `bedrock_sts_mock` (mock_bedrock.py): Bedrock Converse that recomputes every SigV4
  signature with botocore's own signer and refuses a wrong one (403), session token required.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import anthropic
import openai
import pytest

from conftest import (
    ADMIN_KEY,
    AWS_KEY_ID,
    AWS_REGION,
    AWS_SECRET,
    AWS_TOKEN,
    CLIENT_TIMEOUT,
    START_TIMEOUT,
    SWITCHYARD_BIN,
    _clean_env,
    _stop,
    free_port,
)

TOOLS_ANTHROPIC = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    }
]
TOOLS_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]


def config(port: int, workdir, dialect_mock, fleet, bedrock) -> str:
    root = f"http://127.0.0.1:{dialect_mock.port}"
    return f"""\
listen: ["127.0.0.1:{port}"]
server: {{ pid_file: {workdir / "x.pid"}, upgrade_sock: {workdir / "x.sock"}, grace_period: 1s, shutdown_timeout: 1s }}
limits: {{ first_byte_timeout: 3s, connect_timeout: 500ms }}
auth:
  keys:
    - {{ name: admin, key: {ADMIN_KEY} }}
providers:
  claude:  {{ type: anthropic, base_url: "{root}", api_key: sk-ant-upstream }}
  fleet:   {{ type: openai, base_url: "{fleet.base_url}", api_key: sk-fleet }}
  azure:   {{ type: azure_openai, endpoint: "{root}", api_key: az-key, api_version: "2025-01-01-preview" }}
  bedrock: {{ type: bedrock, region: {AWS_REGION}, base_url: "{bedrock.url}" }}
models:
  claude-sonnet:
    targets: [ {{ provider: claude, model: claude-sonnet-4-5 }} ]
  llama:
    targets: [ {{ provider: fleet, model: meta-llama/Llama-3.1-8B-Instruct }} ]
  azure-4o:
    targets: [ {{ provider: azure, model: prod-4o }} ]
  nova:
    targets: [ {{ provider: bedrock, model: "anthropic.claude-3-5-haiku-20241022-v1:0" }} ]
  claude-then-fleet:
    targets:
      - {{ provider: claude }}
      - {{ provider: fleet, model: meta-llama/Llama-3.1-8B-Instruct, priority: 1 }}
"""


class XGateway:
    def __init__(self, workdir, dialect_mock, fleet, bedrock):
        self.dir = workdir / "translation"
        self.dir.mkdir(exist_ok=True)
        self.log = self.dir / "gateway.log"
        env = _clean_env(
            AWS_ACCESS_KEY_ID=AWS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=AWS_SECRET,
            AWS_SESSION_TOKEN=AWS_TOKEN,
        )
        for _ in range(3):
            self.port = free_port()
            path = self.dir / "switchyard.yaml"
            path.write_text(config(self.port, self.dir, dialect_mock, fleet, bedrock))
            logf = open(self.log, "wb")
            self.proc = subprocess.Popen(
                [str(SWITCHYARD_BIN), "--config", str(path)],
                stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env, cwd=self.dir,
            )
            logf.close()
            if self._healthy():
                return
            _stop(self.proc)
        raise RuntimeError(self.log.read_text(errors="replace"))

    def _healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def xgw(workdir, dialect_mock, mocks, bedrock_sts_mock):
    gw = XGateway(workdir, dialect_mock, mocks["a"], bedrock_sts_mock)
    yield gw
    _stop(gw.proc)


@pytest.fixture
def claude_client(xgw):
    c = anthropic.Anthropic(base_url=xgw.url, api_key=ADMIN_KEY, max_retries=0, timeout=CLIENT_TIMEOUT)
    yield c
    c.close()


@pytest.fixture
def oai(xgw):
    c = openai.OpenAI(base_url=f"{xgw.url}/v1", api_key=ADMIN_KEY, max_retries=0, timeout=CLIENT_TIMEOUT)
    yield c
    c.close()


# --- Anthropic client ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-sonnet", "llama", "nova", "azure-4o"])
def test_messages_create_to_every_upstream(claude_client, model):
    msg = claude_client.messages.create(
        model=model, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hello"}]
    )
    assert msg.type == "message" and msg.role == "assistant"
    text = "".join(b.text for b in msg.content if b.type == "text")
    assert text, msg
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude-sonnet", "llama", "nova", "azure-4o"])
def test_messages_stream_to_every_upstream(claude_client, model):
    with claude_client.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "hello stream"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "".join(b.text for b in final.content if b.type == "text")
    assert len(pieces) >= 2, pieces
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert final.usage.input_tokens > 0, final.usage


@pytest.mark.parametrize("model", ["claude-sonnet", "nova"])
def test_messages_tool_use_round_trip(claude_client, model):
    first = claude_client.messages.create(
        model=model, max_tokens=128, tools=TOOLS_ANTHROPIC,
        messages=[{"role": "user", "content": "weather in Paris"}],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"q": "weather in Paris"}
    second = claude_client.messages.create(
        model=model, max_tokens=128, tools=TOOLS_ANTHROPIC,
        messages=[
            {"role": "user", "content": "weather in Paris"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
        ],
    )
    assert second.stop_reason == "end_turn"


@pytest.mark.parametrize("model", ["claude-sonnet", "nova"])
def test_messages_thinking(claude_client, model):
    msg = claude_client.messages.create(
        model=model, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think"}],
    )
    kinds = [b.type for b in msg.content]
    assert kinds[0] == "thinking", kinds
    assert msg.content[0].thinking == "mock reasoning"
    assert msg.content[0].signature == "sig_mock"


def test_count_tokens_forwarded_and_estimated(claude_client):
    exact = claude_client.messages.count_tokens(
        model="claude-sonnet", messages=[{"role": "user", "content": "count me"}]
    )
    assert exact.input_tokens > 0
    raw = claude_client.messages.with_raw_response.count_tokens(
        model="llama", messages=[{"role": "user", "content": "count me too"}]
    )
    assert raw.headers.get("x-switchyard-token-count") == "estimate"
    assert raw.parse().input_tokens > 0


def test_overloaded_before_content_fails_over_to_another_dialect(claude_client):
    with claude_client.messages.stream(
        model="claude-then-fleet", max_tokens=64, messages=[{"role": "user", "content": "hello"}],
        extra_headers={"x-mock-dialects": "anthropic-overloaded-early"},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text, final
    assert final.stop_reason == "end_turn"


def test_error_after_content_is_an_anthropic_error_event(claude_client):
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude_client.messages.stream(
            model="nova", max_tokens=64, messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-mock": "error-mid"},
        ) as stream:
            for _ in stream.text_stream:
                pass
    assert "error" in str(e.value).lower()


def test_upstream_status_keeps_its_code_in_anthropic_shape(claude_client):
    with pytest.raises(anthropic.RateLimitError) as e:
        claude_client.messages.create(
            model="nova", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock": "status-429"},
        )
    body = e.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "Too many requests" in body["error"]["message"]


# --- OpenAI client ---------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-sonnet", "nova", "azure-4o", "llama"])
def test_chat_create_to_every_upstream(oai, model):
    r = oai.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    )
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.parametrize("model", ["claude-sonnet", "nova", "azure-4o"])
def test_chat_stream_helper_to_every_upstream(oai, model):
    with oai.chat.completions.stream(
        model=model, messages=[{"role": "user", "content": "hello stream"}],
        stream_options={"include_usage": True},
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens > 0


@pytest.mark.parametrize("model", ["claude-sonnet", "nova"])
def test_chat_usage_chunk_only_when_asked(oai, model):
    chunks = list(oai.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "hi"}]
    ))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", ["claude-sonnet", "nova"])
def test_chat_tool_calls_keep_their_ids(oai, model):
    r = oai.chat.completions.create(
        model=model, tools=TOOLS_OPENAI, messages=[{"role": "user", "content": "weather in Oslo"}]
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith(("toolu_", "tooluse_")), call.id
    assert json.loads(call.function.arguments) == {"q": "weather in Oslo"}
    with oai.chat.completions.stream(
        model=model, tools=TOOLS_OPENAI, messages=[{"role": "user", "content": "weather in Oslo"}]
    ) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert streamed.function.name == "get_weather"
    assert json.loads(streamed.function.arguments) == {"q": "weather in Oslo"}


def test_chat_reasoning_reaches_openai_clients_apart_from_content(oai):
    r = oai.chat.completions.create(
        model="claude-sonnet", messages=[{"role": "user", "content": "think"}],
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}}, max_tokens=2048,
    )
    msg = r.choices[0].message
    assert msg.model_extra.get("reasoning_content") == "mock reasoning"
    assert "mock reasoning" not in (msg.content or "")


def test_chat_errors_from_anthropic_arrive_in_openai_shape(oai):
    with pytest.raises(openai.APIStatusError) as e:
        oai.chat.completions.create(
            model="claude-sonnet", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock": "status:529"},
        )
    assert e.value.status_code == 529
    body = e.value.response.json()
    assert "type" in body["error"] and body["error"]["message"] == "Overloaded"
    assert body.get("type") != "error"  # never Anthropic's envelope


def test_chat_terminal_error_in_openai_dialect(oai):
    with pytest.raises(openai.APIError):
        for _ in oai.chat.completions.create(
            model="claude-sonnet", stream=True, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock": "anthropic-error-mid"},
        ):
            pass


def test_what_an_upstream_cannot_take_is_a_400_naming_field_and_provider(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(
            model="nova", n=2, messages=[{"role": "user", "content": "hi"}],
        )
    msg = e.value.response.json()["error"]["message"]
    assert "n" in msg and "bedrock" in msg, msg
