"""A mock AWS Bedrock Runtime (Converse, ConverseStream, CountTokens) for switchyard's tests.

    MOCK_AWS_ACCESS_KEY_ID=AKIDMOCK MOCK_AWS_SECRET_ACCESS_KEY=secret MOCK_AWS_REGION=us-east-1 \
        python mock_bedrock.py PORT

prints `ready` once it listens (after `port N` when PORT is 0) and stops on SIGTERM.

Authentication, as Bedrock checks it:
  * SigV4: the signature is recomputed with botocore's own `SigV4Auth` (service `bedrock`,
    region MOCK_AWS_REGION, credentials MOCK_AWS_ACCESS_KEY_ID / MOCK_AWS_SECRET_ACCESS_KEY /
    MOCK_AWS_SESSION_TOKEN) over the request's method, `http://<Host><raw path>`, body and the
    headers it names as signed, at its own X-Amz-Date, and compared with its Authorization.
    Mismatch: 403 InvalidSignatureException. Unknown access key, or a session token configured
    but not sent (or a different one): 403 UnrecognizedClientException.
  * `Authorization: Bearer <MOCK_AWS_BEARER_TOKEN>` instead (Bedrock API keys).

Routes (the model id must be ONE percent-encoded path segment; it is echoed decoded in x-mock-model):
  POST /model/{id}/converse          Converse JSON answer
  POST /model/{id}/converse-stream   application/vnd.amazon.eventstream frames
  POST /model/{id}/count-tokens      {"inputTokens": body bytes / 4}
  GET  /__last_request               {method, raw_path, headers, body} of the last POST

The answer is `echo: <text of the last user message>`, or, when `toolConfig.tools` is given and
the last user message holds no toolResult, a toolUse {toolUseId: "tooluse_mock_<n>", name: first
tool, input: {"q": <that text>}} with stopReason tool_use. With
`additionalModelRequestFields.thinking.type` enabled/adaptive, a reasoningContent block first.

Behaviours by the `x-mock` header:
  throttle-early   HTTP 200, then a throttlingException frame before any content
  error-mid        some text deltas, then a modelStreamErrorException frame
  status-CODE      that status with Bedrock's JSON error and x-amzn-errortype (429 throttling,
                   400 validation, 500 internal, 503 service unavailable)
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_BODY = 8 * 1024 * 1024
EVENTSTREAM = "application/vnd.amazon.eventstream"
CORAL = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
ERRORS = {  # status -> (x-amzn-errortype, message)
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Model not found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", "Too many requests"),
    500: ("InternalServerException", "Internal server error"),
    503: ("ServiceUnavailableException", "Service unavailable"),
}
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_sign_lock = threading.Lock()
_seq_lock = threading.Lock()
_seq = 0
_last: dict | None = None


def next_seq() -> int:
    global _seq
    with _seq_lock:
        _seq += 1
        return _seq


# ---------------------------------------------------------------------------------------
# AWS event stream encoding
# ---------------------------------------------------------------------------------------


def _string_header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32), string headers,
    payload, CRC32 of everything before it."""
    hdrs = b"".join(_string_header(k, v) for k, v in headers)
    total = 12 + len(hdrs) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hdrs))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + hdrs + payload
    return msg + struct.pack(">I", zlib.crc32(msg) & 0xFFFFFFFF)


def event(kind: str, body: dict, pad: int = 0) -> bytes:
    if pad:  # Bedrock pads events with a "p" field of varying length; clients ignore it
        body = dict(body, p="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[: pad % 60 + 1])
    return frame(
        [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(body, separators=(",", ":")).encode(),
    )


def exception(kind: str, message: str) -> bytes:
    return frame(
        [(":exception-type", kind), (":content-type", "application/json"), (":message-type", "exception")],
        json.dumps({"message": message}).encode(),
    )


def pieces(s: str, n: int) -> list[str]:
    per = max(1, -(-len(s) // n))
    out = [s[i : i + per] for i in range(0, len(s), per)]
    return out + [""] * (n - len(out))


# ---------------------------------------------------------------------------------------
# The request, as the mock answers it
# ---------------------------------------------------------------------------------------


def read_ask(body: dict) -> dict:
    msgs = body.get("messages") or []
    last_user = next((m for m in reversed(msgs) if isinstance(m, dict) and m.get("role") == "user"), None)
    blocks = (last_user or {}).get("content") or []
    text = " ".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))
    has_result = any(isinstance(b, dict) and "toolResult" in b for b in blocks)
    tools = ((body.get("toolConfig") or {}).get("tools")) or []
    names = [t["toolSpec"]["name"] for t in tools if isinstance(t, dict) and "toolSpec" in t]
    thinking = ((body.get("additionalModelRequestFields") or {}).get("thinking") or {}).get("type")
    return {
        "text": text,
        "tool": None if has_result or not names else names[0],
        "thinking": thinking in ("enabled", "adaptive"),
    }


def sigv4_fields(auth: str) -> dict[str, str]:
    """`AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..` as a dict (spacing-blind)."""
    rest = auth[len("AWS4-HMAC-SHA256 ") :] if auth.startswith("AWS4-HMAC-SHA256 ") else ""
    return dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-bedrock"
    sys_version = ""

    def version_string(self):
        return "mock-bedrock"

    def log_message(self, fmt, *args):  # quiet; the test reads /__last_request instead
        pass

    # -- plumbing -----------------------------------------------------------------------

    def _send(self, status: int, body: bytes, ctype="application/json", headers=()):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-amzn-requestid", self.request_id)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, errtype: str, message: str):
        self._send(status, json.dumps({"message": message}).encode(), headers=[("x-amzn-errortype", errtype)])

    def do_GET(self):
        self.request_id = f"mock-req-{next_seq()}"
        if self.path == "/__last_request":
            self._send(200, json.dumps(_last).encode())
        else:
            self._error(404, "UnknownOperationException", "Unknown operation")

    def do_POST(self):
        global _last
        self.request_id = f"mock-req-{next_seq()}"
        te = self.headers.get("transfer-encoding")
        length = self.headers.get("content-length")
        if te or length is None or not length.isdigit():
            self.close_connection = True
            return self._error(411, "ValidationException", "Content-Length required")
        if int(length) > MAX_BODY:
            self.close_connection = True
            return self._error(413, "ValidationException", "Request body too large")
        body = self.rfile.read(int(length))
        _last = {
            "method": self.command,
            "raw_path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        denied = self._authenticate(body)
        if denied:
            return self._error(403, *denied)
        raw_path = self.path.split("?", 1)[0]
        segs = raw_path.split("/")
        if len(segs) != 4 or segs[0] != "" or segs[1] != "model" or not segs[2]:
            return self._error(404, "UnknownOperationException", f"Unknown operation {raw_path}")
        model, op = unquote(segs[2]), segs[3]
        extra = [("x-mock-model", model)]
        behaviour = self.headers.get("x-mock", "")
        if behaviour.startswith("status-"):
            code = int(behaviour[7:] or 500)
            errtype, message = ERRORS.get(code, ("InternalServerException", f"mock answered {code}"))
            errtype += CORAL if code == 429 else ""
            out = json.dumps({"message": message}).encode()
            return self._send(code, out, headers=extra + [("x-amzn-errortype", errtype)])
        try:
            req = json.loads(body or b"{}")
            assert isinstance(req, dict)
        except (ValueError, AssertionError):
            return self._error(400, "ValidationException", "Malformed input request")
        if op == "count-tokens":
            return self._send(200, json.dumps({"inputTokens": len(body) // 4}).encode(), headers=extra)
        if op not in ("converse", "converse-stream"):
            return self._error(404, "UnknownOperationException", f"Unknown operation {op}")
        ask = read_ask(req)
        n = next_seq()
        text = f"echo: {ask['text']}"
        tool_input = {"q": ask["text"]}
        answer = json.dumps(tool_input) if ask["tool"] else text
        usage = {
            "inputTokens": len(body) // 4,
            "outputTokens": max(1, (len(answer) + (14 if ask["thinking"] else 0)) // 4),
            "cacheReadInputTokens": 0,
            "cacheWriteInputTokens": 0,
        }
        usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
        stop = "tool_use" if ask["tool"] else "end_turn"
        if op == "converse":
            content = []
            if ask["thinking"]:
                content.append({"reasoningContent": {"reasoningText": {"text": "mock reasoning", "signature": "sig_mock"}}})
            if ask["tool"]:
                content.append({"toolUse": {"toolUseId": f"tooluse_mock_{n}", "name": ask["tool"], "input": tool_input}})
            else:
                content.append({"text": text})
            out = {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop,
                "usage": usage,
                "metrics": {"latencyMs": 42},
            }
            return self._send(200, json.dumps(out).encode(), headers=extra)
        self._stream(ask, behaviour, text, tool_input, stop, usage, n, extra)

    def _stream(self, ask, behaviour, text, tool_input, stop, usage, n, extra):
        frames = [event("messageStart", {"role": "assistant"}, 1)]
        if behaviour == "throttle-early":
            frames.append(exception("throttlingException", "Too many requests, please wait before trying again."))
        elif behaviour == "error-mid":
            for p in ("echo: ", "partial"):
                frames.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}, 7))
            frames.append(
                exception(
                    "modelStreamErrorException",
                    "The system encountered an unexpected error during processing. Try your request again.",
                )
            )
        else:
            idx = 0
            if ask["thinking"]:
                for p in ("mock ", "reasoning"):
                    frames.append(event("contentBlockDelta", {"contentBlockIndex": idx, "delta": {"reasoningContent": {"text": p}}}, 3))
                frames.append(event("contentBlockDelta", {"contentBlockIndex": idx, "delta": {"reasoningContent": {"signature": "sig_mock"}}}, 4))
                frames.append(event("contentBlockStop", {"contentBlockIndex": idx}, 5))
                idx += 1
            if ask["tool"]:
                start = {"toolUse": {"toolUseId": f"tooluse_mock_{n}", "name": ask["tool"]}}
                frames.append(event("contentBlockStart", {"contentBlockIndex": idx, "start": start}, 9))
                for i, p in enumerate(pieces(json.dumps(tool_input), 2)):
                    frames.append(event("contentBlockDelta", {"contentBlockIndex": idx, "delta": {"toolUse": {"input": p}}}, 11 + i))
            else:
                k = min(12, max(3, len(text) // 8))
                for i, p in enumerate(pieces(text, k)):
                    frames.append(event("contentBlockDelta", {"contentBlockIndex": idx, "delta": {"text": p}}, 13 + i))
            frames.append(event("contentBlockStop", {"contentBlockIndex": idx}, 20))
            frames.append(event("messageStop", {"stopReason": stop}, 25))
            frames.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}, 30))
        self.send_response(200)
        self.send_header("content-type", EVENTSTREAM)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-amzn-requestid", self.request_id)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        for f in frames:  # one chunk per frame, flushed: the gateway sees them arrive one by one
            self.wfile.write(f"{len(f):x}\r\n".encode() + f + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    # -- authentication -----------------------------------------------------------------

    def _authenticate(self, body: bytes) -> tuple[str, str] | None:
        """None when the request is authentic, else (x-amzn-errortype, message)."""
        auth = self.headers.get("authorization", "")
        bearer = os.environ.get("MOCK_AWS_BEARER_TOKEN")
        if auth.startswith("Bearer "):
            if bearer and auth[7:] == bearer:
                return None
            return ("UnrecognizedClientException", "Invalid API key")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return ("MissingAuthenticationTokenException", "Missing Authentication Token")
        fields = sigv4_fields(auth)
        key = os.environ.get("MOCK_AWS_ACCESS_KEY_ID")
        secret = os.environ.get("MOCK_AWS_SECRET_ACCESS_KEY")
        token = os.environ.get("MOCK_AWS_SESSION_TOKEN") or None
        region = os.environ.get("MOCK_AWS_REGION", "us-east-1")
        if not key or not secret or fields.get("Credential", "").split("/")[0] != key:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
        if token and self.headers.get("x-amz-security-token") != token:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
        amz_date = self.headers.get("x-amz-date")
        signed = [h for h in fields.get("SignedHeaders", "").split(";") if h]
        if not amz_date or "host" not in signed or "x-amz-date" not in signed:
            return ("InvalidSignatureException", BAD_SIGNATURE)
        sent_sha = self.headers.get("x-amz-content-sha256")
        if sent_sha is not None and sent_sha != hashlib.sha256(body).hexdigest():
            return ("InvalidSignatureException", BAD_SIGNATURE)
        headers = {}
        for h in signed:
            values = self.headers.get_all(h)
            if values is None:
                return ("InvalidSignatureException", BAD_SIGNATURE)
            headers[h] = ",".join(values)
        url = f"http://{self.headers.get('host', '')}{self.path}"
        req = AWSRequest(method=self.command, url=url, data=body, headers=headers)
        signer = SigV4Auth(Credentials(key, secret, token), "bedrock", region)
        try:
            pinned = time.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return ("InvalidSignatureException", BAD_SIGNATURE)
        when = datetime.datetime(*pinned[:6])
        # botocore's SigV4Auth.add_auth takes "now" from botocore.auth.get_current_datetime():
        # pin it to the request's X-Amz-Date for this one signing (serialised: module state).
        with _sign_lock:
            original = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda *a, **k: when
            try:
                signer.add_auth(req)
            finally:
                botocore.auth.get_current_datetime = original
        if sigv4_fields(req.headers.get("Authorization", "")) != fields:
            return ("InvalidSignatureException", BAD_SIGNATURE)
        return None


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    if port == 0:
        print(f"port {server.server_address[1]}", flush=True)
    print("ready", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
