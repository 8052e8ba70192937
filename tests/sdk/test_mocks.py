"""The mock upstreams are faithful: each one driven by the official client of its dialect, with no
gateway in between. If the official client accepts a mock's answers (JSON, SSE, event-stream
frames, errors), the end-to-end tests that run the gateway against that mock test the real thing.

* `mock-upstream` (Rust): Anthropic Messages (`anthropic` SDK) and Azure OpenAI (`openai` SDK).
* `mock_bedrock.py`: Bedrock Runtime Converse/ConverseStream/CountTokens (botocore's own
  `bedrock-runtime` client, SigV4-signed, event stream decoded by botocore).
"""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import boto3
import botocore.config
import botocore.exceptions
import httpx
import openai
import pytest

from conftest import AWS_BEARER, AWS_KEY_ID, AWS_REGION, AWS_SECRET, AWS_TOKEN, CLIENT_TIMEOUT
from mock_bedrock import frame

API_KEY = "sk-ant-mock"
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    {"name": "second_tool", "input_schema": {"type": "object"}},
]


def root(mock) -> str:
    return f"http://127.0.0.1:{mock.port}"


def header_names(raw) -> set[str]:
    return set(raw.headers["x-mock-headers"].split(","))


# ---------------------------------------------------------------------------------------
# Anthropic Messages (mock-upstream)
# ---------------------------------------------------------------------------------------


@pytest.fixture
def claude(dialect_mock):
    c = anthropic.Anthropic(base_url=root(dialect_mock), api_key=API_KEY, max_retries=0, timeout=CLIENT_TIMEOUT)
    yield c
    c.close()


def test_anthropic_create(claude):
    raw = claude.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hello there"}]
    )
    msg = raw.parse()
    assert isinstance(msg, anthropic.types.Message)
    assert msg.model == "claude-sonnet-4-5" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "echo: hello there"
    assert msg.stop_reason == "end_turn"
    body_len = int(raw.headers["x-mock-body-len"])
    assert msg.usage.input_tokens == body_len // 4
    assert msg.usage.output_tokens >= 1
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0
    assert raw.headers["x-mock-path"] == "/v1/messages"
    # anthropic 2.x sends the api_key as `Authorization: Bearer`, which the API accepts.
    assert raw.headers["x-mock-anthropic-auth"] == "bearer"
    assert {"authorization", "anthropic-version", "content-type"} <= header_names(raw)
    assert API_KEY not in raw.headers["x-mock-headers"]  # names only, never values
    assert raw.headers["request-id"].startswith("req_mock_")


def test_anthropic_x_api_key(dialect_mock):
    """The key in `x-api-key`, as the gateway sends it: no Authorization reaches the mock."""
    c = anthropic.Anthropic(
        base_url=root(dialect_mock),
        api_key="unused",
        default_headers={"X-Api-Key": API_KEY, "Authorization": anthropic.Omit()},
        max_retries=0,
        timeout=CLIENT_TIMEOUT,
    )
    raw = c.messages.with_raw_response.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "k"}])
    assert raw.headers["x-mock-anthropic-auth"] == "x-api-key"
    names = header_names(raw)
    assert "x-api-key" in names and "authorization" not in names
    assert raw.parse().content[0].text == "echo: k"
    c.close()


def test_anthropic_last_user_message_blocks(claude):
    msg = claude.messages.create(
        model="m",
        max_tokens=10,
        system="be brief",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        ],
    )
    assert msg.content[0].text == "echo: one two"


def test_anthropic_stream(claude):
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "stream me please"}]
    ) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert len(pieces) >= 3
    assert "".join(pieces) == "echo: stream me please"
    assert final.content[0].text == "echo: stream me please"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens >= 1


def test_anthropic_stream_raw_events(claude, dialect_mock):
    """The event sequence a real stream has: message_start, block start, ping, deltas, stop,
    message_delta, message_stop (the SDK drops `ping`; the wire has it)."""
    stream = claude.messages.create(
        model="m", max_tokens=10, stream=True, messages=[{"role": "user", "content": "abc"}]
    )
    kinds = [e.type for e in stream]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds.count("content_block_delta") >= 3
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    r = httpx.post(
        f"{root(dialect_mock)}/v1/messages",
        headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "abc"}]},
        timeout=CLIENT_TIMEOUT,
    )
    assert r.headers["content-type"] == "text/event-stream"
    wire = [line[len("event: ") :] for line in r.text.splitlines() if line.startswith("event: ")]
    assert wire[:3] == ["message_start", "content_block_start", "ping"]
    assert wire[-2:] == ["message_delta", "message_stop"]


def test_anthropic_sse_pieces(claude):
    with claude.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "five pieces here"}],
        extra_headers={"x-mock": "sse:5:10"},
    ) as s:
        pieces = list(s.text_stream)
    assert len(pieces) == 5 and "".join(pieces) == "echo: five pieces here"


def test_anthropic_tool_use(claude):
    msg = claude.messages.create(
        model="m", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "weather in Paris"}]
    )
    assert msg.stop_reason == "tool_use"
    (block,) = msg.content
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.id.startswith("toolu_mock_")
    assert block.input == {"q": "weather in Paris"}


def test_anthropic_tool_use_stream(claude):
    with claude.messages.stream(
        model="m", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "weather in Oslo"}]
    ) as s:
        partials = [e.partial_json for e in s if e.type == "input_json"]
        final = s.get_final_message()
    assert len(partials) >= 2
    assert json.loads("".join(partials)) == {"q": "weather in Oslo"}
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"q": "weather in Oslo"}


def test_anthropic_tool_result_gets_text(claude):
    msg = claude.messages.create(
        model="m",
        max_tokens=100,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "weather in Paris"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "text", "text": "and so?"},
                ],
            },
        ],
    )
    assert msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and msg.content[0].text == "echo: and so?"


@pytest.mark.parametrize("thinking", [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}])
def test_anthropic_thinking(claude, thinking):
    msg = claude.messages.create(
        model="m", max_tokens=2048, thinking=thinking, messages=[{"role": "user", "content": "think"}]
    )
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "mock reasoning" and msg.content[0].signature == "sig_mock"
    with claude.messages.stream(
        model="m", max_tokens=2048, thinking=thinking, messages=[{"role": "user", "content": "think"}]
    ) as s:
        events = list(s)
        final = s.get_final_message()
    assert any(e.type == "thinking" for e in events)
    assert any(e.type == "signature" for e in events)
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == "mock reasoning" and final.content[0].signature == "sig_mock"
    assert final.content[1].text == "echo: think"


def test_anthropic_count_tokens(claude):
    raw = claude.messages.with_raw_response.count_tokens(
        model="m", messages=[{"role": "user", "content": "count me"}]
    )
    assert raw.headers["x-mock-path"] == "/v1/messages/count_tokens"
    assert raw.parse().input_tokens == int(raw.headers["x-mock-body-len"]) // 4


def test_anthropic_overloaded_529(claude):
    with pytest.raises(anthropic.APIStatusError) as e:
        claude.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}], extra_headers={"x-mock": "status:529"}
        )
    assert isinstance(e.value, anthropic.InternalServerError)
    assert e.value.status_code == 529
    assert e.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_anthropic_429_with_retry_after(claude):
    with pytest.raises(anthropic.RateLimitError) as e:
        claude.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}], extra_headers={"x-mock": "status:429:7"}
        )
    assert e.value.response.headers["retry-after"] == "7"
    assert e.value.body["error"]["type"] == "rate_limit_error"


def test_anthropic_overloaded_early_in_stream(claude):
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude.messages.stream(
            model="m",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-mock": "anthropic-overloaded-early"},
        ) as s:
            got = list(s.text_stream)
    assert e.value.response.status_code == 200
    assert e.value.body["error"]["type"] == "overloaded_error"
    assert "got" not in locals() or got == []


def test_anthropic_error_mid_stream(claude):
    got: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude.messages.stream(
            model="m",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-mock": "anthropic-error-mid"},
        ) as s:
            for t in s.text_stream:
                got.append(t)
    assert "".join(got) == "echo: partial"
    assert e.value.body["error"]["type"] == "api_error"


def test_anthropic_auth_required(dialect_mock):
    c = anthropic.Anthropic(
        base_url=root(dialect_mock),
        api_key="unused",
        default_headers={"Authorization": anthropic.Omit()},
        max_retries=0,
        timeout=CLIENT_TIMEOUT,
    )
    with pytest.raises(anthropic.AuthenticationError) as e:
        c.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"
    c.close()
    r = httpx.post(
        f"{root(dialect_mock)}/v1/messages",
        headers={"x-api-key": API_KEY},
        json={"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]},
        timeout=CLIENT_TIMEOUT,
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_beta_query_is_accepted(dialect_mock):
    """Claude Code posts to /v1/messages?beta=true."""
    r = httpx.post(
        f"{root(dialect_mock)}/v1/messages?beta=true",
        headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "q"}]},
        timeout=CLIENT_TIMEOUT,
    )
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "echo: q"


# ---------------------------------------------------------------------------------------
# Azure OpenAI (mock-upstream)
# ---------------------------------------------------------------------------------------

AZ_KEY = "azure-mock-key"
AZ_VERSION = "2024-10-21"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def azure(dialect_mock):
    c = openai.AzureOpenAI(
        azure_endpoint=root(dialect_mock), api_key=AZ_KEY, api_version=AZ_VERSION, max_retries=0, timeout=CLIENT_TIMEOUT
    )
    yield c
    c.close()


def test_azure_deployments_chat(azure):
    raw = azure.chat.completions.with_raw_response.create(model="my-gpt4o", messages=MESSAGES)
    assert raw.headers["x-mock-path"] == f"/openai/deployments/my-gpt4o/chat/completions?api-version={AZ_VERSION}"
    assert raw.headers["x-mock-api-version"] == AZ_VERSION
    names = header_names(raw)
    assert "api-key" in names and "authorization" not in names
    c = raw.parse()
    assert c.model == "my-gpt4o"
    assert c.choices[0].message.content == "Hello from dialects"
    assert c.usage.total_tokens == 14


def test_azure_deployments_stream(azure):
    stream = azure.chat.completions.create(
        model="my-gpt4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "tok0 tok1 tok2 "
    assert all(ch.model == "my-gpt4o" for ch in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_azure_deployments_embeddings(azure):
    raw = azure.embeddings.with_raw_response.create(model="my-embedder", input=["a", "b"])
    assert raw.headers["x-mock-path"].startswith("/openai/deployments/my-embedder/embeddings?")
    e = raw.parse()
    assert e.model == "my-embedder" and e.data[0].embedding == [0.1, 0.2, 0.3]


def test_azure_error_statuses_pass(azure):
    with pytest.raises(openai.RateLimitError) as e:
        azure.chat.completions.create(model="d", messages=MESSAGES, extra_headers={"x-mock": "status:429:3"})
    assert e.value.response.headers["retry-after"] == "3"


@pytest.fixture
def azure_v1(dialect_mock):
    # The v1 form with the key in `api-key`, as the gateway sends it: the SDK's own
    # `Authorization: Bearer` is dropped on the way out.
    def drop_authorization(request: httpx.Request) -> None:
        request.headers.pop("authorization", None)

    c = openai.OpenAI(
        base_url=f"{root(dialect_mock)}/openai/v1",
        api_key="unused",
        default_headers={"api-key": AZ_KEY},
        http_client=openai.DefaultHttpxClient(event_hooks={"request": [drop_authorization]}),
        max_retries=0,
        timeout=CLIENT_TIMEOUT,
    )
    yield c
    c.close()


def test_azure_v1_chat_and_stream(azure_v1):
    raw = azure_v1.chat.completions.with_raw_response.create(model="gpt-4o-deploy", messages=MESSAGES)
    assert raw.headers["x-mock-path"] == "/openai/v1/chat/completions"
    assert raw.headers["x-mock-api-version"] == "-"
    assert "authorization" not in header_names(raw)
    assert raw.parse().model == "gpt-4o-deploy"
    chunks = list(azure_v1.chat.completions.create(model="gpt-4o-deploy", messages=MESSAGES, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "tok0 tok1 tok2 "


def test_azure_v1_embeddings(azure_v1):
    e = azure_v1.embeddings.create(model="emb-deploy", input="x")
    assert e.model == "emb-deploy"


def test_azure_refuses_authorization_and_missing_key(dialect_mock):
    bearer = openai.OpenAI(base_url=f"{root(dialect_mock)}/openai/v1", api_key="sk-wrong-place", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bearer.chat.completions.create(model="d", messages=MESSAGES, extra_headers={"api-key": AZ_KEY})
    assert e.value.body["code"] == "401"
    bearer.close()
    r = httpx.post(
        f"{root(dialect_mock)}/openai/deployments/d/chat/completions?api-version={AZ_VERSION}",
        json={"messages": MESSAGES},
        timeout=CLIENT_TIMEOUT,
    )
    assert r.status_code == 401 and "error" in r.json()


def test_azure_deployments_need_api_version(dialect_mock):
    r = httpx.post(
        f"{root(dialect_mock)}/openai/deployments/d/chat/completions",
        headers={"api-key": AZ_KEY},
        json={"messages": MESSAGES},
        timeout=CLIENT_TIMEOUT,
    )
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "404", "message": "Resource not found"}}


# ---------------------------------------------------------------------------------------
# Bedrock Runtime (mock_bedrock.py, botocore's own client)
# ---------------------------------------------------------------------------------------

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
NO_RETRY = botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=CLIENT_TIMEOUT, connect_timeout=5)


def bedrock(mock, secret=AWS_SECRET, token=None, x_mock=None):
    c = boto3.session.Session().client(
        "bedrock-runtime",
        endpoint_url=mock.url,
        region_name=AWS_REGION,
        aws_access_key_id=AWS_KEY_ID,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=NO_RETRY,
    )
    if x_mock:
        # Added before signing: the mock checks the signature over it too.
        c.meta.events.register("before-sign.bedrock-runtime.*", lambda request, **_: request.headers.__setitem__("x-mock", x_mock))
    return c


def user(text):
    return [{"role": "user", "content": [{"text": text}]}]


def test_bedrock_converse_model_id_with_colon(bedrock_mock):
    r = bedrock(bedrock_mock).converse(modelId=HAIKU, messages=user("hello bedrock"))
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-mock-model"] == HAIKU
    assert r["output"]["message"] == {"role": "assistant", "content": [{"text": "echo: hello bedrock"}]}
    assert r["stopReason"] == "end_turn"
    u = r["usage"]
    assert u["totalTokens"] == u["inputTokens"] + u["outputTokens"]
    assert u["cacheReadInputTokens"] == 0 and u["cacheWriteInputTokens"] == 0
    assert r["metrics"]["latencyMs"] >= 0
    last = bedrock_mock.last_request()
    assert last["raw_path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert u["inputTokens"] == len(last["body"].encode()) // 4
    assert last["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDMOCKEXAMPLE/")
    assert f"/{AWS_REGION}/bedrock/aws4_request" in last["headers"]["authorization"]


def test_bedrock_converse_stream_text(bedrock_mock):
    r = bedrock(bedrock_mock).converse_stream(modelId=HAIKU, messages=user("stream from bedrock"))
    assert r["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    events = list(r["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    texts = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert len(texts) >= 3 and "".join(texts) == "echo: stream from bedrock"
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    meta = events[-1]["metadata"]
    assert meta["usage"]["totalTokens"] == meta["usage"]["inputTokens"] + meta["usage"]["outputTokens"]
    assert "latencyMs" in meta["metrics"]


def test_bedrock_tool_use_inference_profile_arn(bedrock_mock):
    tools = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}
    client = bedrock(bedrock_mock)
    r = client.converse_stream(modelId=PROFILE_ARN, messages=user("find it"), toolConfig=tools)
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-mock-model"] == PROFILE_ARN
    events = list(r["stream"])
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "lookup"
    assert start["start"]["toolUse"]["toolUseId"].startswith("tooluse_mock_")
    parts = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e]
    assert len(parts) == 2 and json.loads("".join(parts)) == {"q": "find it"}
    assert next(e for e in events if "messageStop" in e)["messageStop"]["stopReason"] == "tool_use"
    raw = bedrock_mock.last_request()["raw_path"]
    assert raw.startswith("/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.")
    # Non-stream, and a toolResult in the last user message gets text again.
    r = client.converse(modelId=PROFILE_ARN, messages=user("find it"), toolConfig=tools)
    assert r["stopReason"] == "tool_use"
    assert r["output"]["message"]["content"][0]["toolUse"]["input"] == {"q": "find it"}
    msgs = user("find it") + [
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "42"}]}}, {"text": "so?"}]},
    ]
    r = client.converse(modelId=PROFILE_ARN, messages=msgs, toolConfig=tools)
    assert r["stopReason"] == "end_turn" and r["output"]["message"]["content"] == [{"text": "echo: so?"}]


def test_bedrock_reasoning(bedrock_mock):
    client = bedrock(bedrock_mock)
    extra = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    r = client.converse(modelId=HAIKU, messages=user("why"), additionalModelRequestFields=extra)
    assert r["output"]["message"]["content"][0]["reasoningContent"]["reasoningText"] == {
        "text": "mock reasoning",
        "signature": "sig_mock",
    }
    events = list(client.converse_stream(modelId=HAIKU, messages=user("why"), additionalModelRequestFields=extra)["stream"])
    reasoning = [e["contentBlockDelta"]["delta"]["reasoningContent"] for e in events if "reasoningContent" in e.get("contentBlockDelta", {}).get("delta", {})]
    assert "".join(x.get("text", "") for x in reasoning) == "mock reasoning"
    assert reasoning[-1] == {"signature": "sig_mock"}


def test_bedrock_session_token(bedrock_sts_mock):
    r = bedrock(bedrock_sts_mock, token=AWS_TOKEN).converse(modelId=HAIKU, messages=user("sts"))
    assert r["output"]["message"]["content"][0]["text"] == "echo: sts"
    assert bedrock_sts_mock.last_request()["headers"]["x-amz-security-token"] == AWS_TOKEN
    events = list(bedrock(bedrock_sts_mock, token=AWS_TOKEN).converse_stream(modelId=HAIKU, messages=user("sts"))["stream"])
    assert "metadata" in events[-1]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bedrock(bedrock_sts_mock).converse(modelId=HAIKU, messages=user("no token"))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_bedrock_wrong_secret_is_403(bedrock_mock):
    for call in ("converse", "converse_stream"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            getattr(bedrock(bedrock_mock, secret="not-the-secret"), call)(modelId=HAIKU, messages=user("x"))
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert e.value.response["Error"]["Message"].startswith("The request signature we calculated does not match")


def test_bedrock_tampered_body_is_403(bedrock_mock):
    """The signature covers the body: changing it after signing is caught."""
    client = bedrock(bedrock_mock)

    def tamper(request, **_):
        request.body = request.body.replace(b"original", b"tampered")

    client.meta.events.register("before-send.bedrock-runtime.Converse", tamper)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.converse(modelId=HAIKU, messages=user("original"))
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_bedrock_bearer_api_key(bedrock_mock):
    """`Authorization: Bearer <Bedrock API key>` instead of SigV4 (botocore sends it only over
    HTTPS, so this one goes over httpx)."""
    body = {"messages": user("api key")}
    url = f"{bedrock_mock.url}/model/{HAIKU.replace(':', '%3A')}/converse"
    r = httpx.post(url, json=body, headers={"authorization": f"Bearer {AWS_BEARER}"}, timeout=CLIENT_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["output"]["message"]["content"][0]["text"] == "echo: api key"
    assert r.headers["x-mock-model"] == HAIKU
    r = httpx.post(url, json=body, headers={"authorization": "Bearer wrong"}, timeout=CLIENT_TIMEOUT)
    assert r.status_code == 403
    r = httpx.post(url, json=body, timeout=CLIENT_TIMEOUT)
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_bedrock_model_id_must_be_one_segment(bedrock_mock):
    """An ARN whose `/` is not percent-encoded is not a model id Bedrock can route."""
    r = httpx.post(
        f"{bedrock_mock.url}/model/arn:aws:bedrock:us-west-2:1:inference-profile/us.x/converse",
        json={"messages": user("x")},
        headers={"authorization": f"Bearer {AWS_BEARER}"},
        timeout=CLIENT_TIMEOUT,
    )
    assert r.status_code == 404


def test_bedrock_throttle_early_in_stream(bedrock_mock):
    r = bedrock(bedrock_mock, x_mock="throttle-early").converse_stream(modelId=HAIKU, messages=user("x"))
    seen = []
    with pytest.raises(botocore.exceptions.EventStreamError) as e:
        for ev in r["stream"]:
            seen.append(ev)
    assert e.value.response["Error"]["Code"] == "throttlingException"
    assert [next(iter(ev)) for ev in seen] == ["messageStart"]


def test_bedrock_error_mid_stream(bedrock_mock):
    r = bedrock(bedrock_mock, x_mock="error-mid").converse_stream(modelId=HAIKU, messages=user("x"))
    texts = []
    with pytest.raises(botocore.exceptions.EventStreamError) as e:
        for ev in r["stream"]:
            if "contentBlockDelta" in ev:
                texts.append(ev["contentBlockDelta"]["delta"]["text"])
    assert "".join(texts) == "echo: partial"
    assert e.value.response["Error"]["Code"] == "modelStreamErrorException"


def test_bedrock_status_429(bedrock_mock):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bedrock(bedrock_mock, x_mock="status-429").converse(modelId=HAIKU, messages=user("x"))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    assert e.value.response["Error"]["Message"] == "Too many requests"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith("ThrottlingException:http")


def test_bedrock_count_tokens(bedrock_mock):
    r = bedrock(bedrock_mock).count_tokens(modelId=HAIKU, input={"converse": {"messages": user("count")}})
    last = bedrock_mock.last_request()
    assert last["raw_path"].endswith("/count-tokens")
    assert r["inputTokens"] == len(last["body"].encode()) // 4


FIXTURES = Path("/work/shared/fixtures/derived/bedrock-converse-stream")


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")
def test_eventstream_encoder_matches_recorded_frames():
    """The mock's encoder rebuilds recorded Bedrock frames byte for byte."""
    import struct

    from botocore.eventstream import EventStreamBuffer

    checked = 0
    for f in sorted(FIXTURES.glob("*.bin")):
        data = f.read_bytes()
        while data:
            (total,) = struct.unpack(">I", data[:4])
            raw, data = data[:total], data[total:]
            buf = EventStreamBuffer()
            buf.add_data(raw)
            (msg,) = list(buf)
            headers = list(msg.headers.items())
            assert all(isinstance(v, str) for _, v in headers), f.name
            assert frame(headers, msg.payload) == raw, f.name
            checked += 1
    assert checked > 10
