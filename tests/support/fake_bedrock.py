"""A fake AWS Bedrock runtime (a real aiohttp server on 127.0.0.1): Converse, ConverseStream,
InvokeModel and InvokeModelWithResponseStream. Every request's SigV4 signature is checked with
botocore's own signer; streams are real `application/vnd.amazon.eventstream` frames (encoded
here per AWS's documented format), written in pieces split at awkward offsets."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import struct
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from multidict import CIMultiDict

from tests.support.fake_anthropic import Script, Tool, message, stream_events
from tests.support.gateway import base_config

ACCESS_KEY = "AKIDEXAMPLEGATEWAY"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-west-2"
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"  # a cross-region inference profile
Json = dict[str, Any]

# What Bedrock names each error status in x-amzn-ErrorType (its API reference).
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


# The event-stream framing: prelude (total length, headers length, CRC32 of both), headers,
# payload, CRC32 of everything before it. Headers: name length (1 byte), name, type 7
# (string), value length (2 bytes), value.


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(head) + len(payload), len(head))
    start = prelude + struct.pack(">I", binascii.crc32(prelude)) + head + payload
    return start + struct.pack(">I", binascii.crc32(start))


def event(event_type: str, payload: Json) -> bytes:
    """An `event` message with a JSON payload (with Bedrock's `p` padding field)."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return frame(headers, orjson.dumps({**payload, "p": "abcdefghijklmnopq"}))


def exception(kind: str, text: str) -> bytes:
    """An `exception` message, as a stream failure after its start is sent."""
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, orjson.dumps({"message": text}))


@dataclass
class ConverseScript:
    """What the fake's Converse answers (tests change it between calls)."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " Bedrock"])
    reasoning: list[str] | None = None
    tool: Tool | None = None
    stop_reason: str | None = None  # None: tool_use with a tool, else end_turn
    usage: Json = field(
        default_factory=lambda: {
            "inputTokens": 20,
            "outputTokens": 7,
            "cacheReadInputTokens": 8,
            "cacheWriteInputTokens": 3,
        }
    )
    exception_after: int = -1  # >=0: a throttlingException message after this many events

    @property
    def final_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool is not None else "end_turn"


def _usage(script: ConverseScript) -> Json:
    counts = script.usage
    total = sum(v for v in counts.values() if isinstance(v, int))
    return {**counts, "totalTokens": total}


def converse_answer(script: ConverseScript) -> Json:
    content: list[Json] = []
    if script.reasoning is not None:
        text = {"text": "".join(script.reasoning), "signature": "sig-fake"}
        content.append({"reasoningContent": {"reasoningText": text}})
    if script.pieces:
        content.append({"text": "".join(script.pieces)})
    if script.tool is not None:
        t = script.tool
        content.append({"toolUse": {"toolUseId": t.id, "name": t.name, "input": t.input}})
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": script.final_stop_reason,
        "usage": _usage(script),
        "metrics": {"latencyMs": 42},
    }


def converse_events(script: ConverseScript) -> list[bytes]:
    """The ConverseStream messages for the script, in order."""
    out = [event("messageStart", {"role": "assistant"})]
    index = 0
    if script.reasoning is not None:
        for text in script.reasoning:
            delta = {"reasoningContent": {"text": text}}
            out.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        signature = {"reasoningContent": {"signature": "sig-fake"}}
        out.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": signature}))
        out.append(event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if script.pieces:
        for piece in script.pieces:
            delta = {"text": piece}
            out.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        out.append(event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if script.tool is not None:
        t = script.tool
        start = {"toolUse": {"toolUseId": t.id, "name": t.name}}
        out.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        for fragment in t.fragments:
            delta = {"toolUse": {"input": fragment}}
            out.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        out.append(event("contentBlockStop", {"contentBlockIndex": index}))
    out.append(event("messageStop", {"stopReason": script.final_stop_reason}))
    out.append(event("metadata", {"usage": _usage(script), "metrics": {"latencyMs": 42}}))
    if script.exception_after >= 0:
        out = out[: script.exception_after]
        out.append(exception("throttlingException", "Too many tokens, please wait."))
    return out


def invoke_events(model: str, script: Script) -> list[bytes]:
    """InvokeModelWithResponseStream for a Claude model: Anthropic's events, base64 in chunks."""
    return [
        event("chunk", {"bytes": base64.b64encode(orjson.dumps(data)).decode()})
        for _, data in stream_events(model, script)
    ]


_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<sig>[0-9a-f]+)"
)


def verify_sigv4(
    method: str, url: str, headers: CIMultiDict[str], body: bytes, session_token: str | None
) -> str | None:
    """Why the request's SigV4 signature is wrong, or None: the signature is recomputed with
    botocore's signer over the headers it names, the exact path and body, at its X-Amz-Date."""
    match = _AUTH.fullmatch(headers.get("Authorization", ""))
    if match is None:
        return "no AWS4-HMAC-SHA256 Authorization header"
    if match["key"] != ACCESS_KEY:
        return f"unknown access key {match['key']}"
    if (match["region"], match["service"]) != (REGION, "bedrock"):
        return f"signed for {match['region']}/{match['service']}"
    stamp = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "no X-Amz-Date"
    if abs(signed_at.timestamp() - time.time()) > 300 or match["date"] != stamp[:8]:
        return "signed too long ago"
    if headers.get("X-Amz-Security-Token") != session_token:
        return "wrong or missing X-Amz-Security-Token"
    names = match["signed"].split(";")
    if "host" not in names:
        return "the Host header is not signed"
    request = AWSRequest(
        method=method, url=url, data=body, headers={n: headers.get(n, "") for n in names}
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(
        ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, session_token), "bedrock", REGION
    )
    if signer.signed_headers(signer.headers_to_sign(request)) != match["signed"]:
        return "the signed headers differ"
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return None if expected == match["sig"] else "the signature does not match"


@dataclass
class BedrockReceived:
    action: str  # converse, converse-stream, invoke, invoke-with-response-stream
    model: str
    raw_path: str
    headers: CIMultiDict[str]
    body: Json


class FakeBedrock:
    """Serves bedrock-runtime's model actions for REGION and ACCESS_KEY/SECRET_KEY."""

    def __init__(self, session_token: str | None = None) -> None:
        self.session_token = session_token
        self.converse = ConverseScript()
        self.claude = Script()  # Claude's answers to InvokeModel
        self.status = 200  # non-200: Bedrock's error answer for this status
        self.fail_times = 0  # answer `status` this many times, then succeed (0: always)
        self.split = 0  # >0: write streams in pieces of this many bytes
        self.embedding_dims = 4
        self.stream_throttles = 0  # the next N streams are only a throttlingException message
        self.received: list[BedrockReceived] = []
        self.refused: list[str] = []
        self.server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> FakeBedrock:
        app = web.Application()
        app.router.add_post("/model/{model}/{action}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        url = f"http://{request.host}{request.raw_path}"
        problem = verify_sigv4(
            request.method, url, CIMultiDict(request.headers), raw, self.session_token
        )
        if problem is not None:
            self.refused.append(problem)
            return _error(403, "The request signature we calculated does not match. " + problem)
        model = unquote(request.raw_path.split("/")[2])
        action = request.match_info["action"]
        body = orjson.loads(raw)
        self.received.append(
            BedrockReceived(action, model, request.raw_path, CIMultiDict(request.headers), body)
        )
        if self.status != 200 and (self.fail_times == 0 or len(self.received) <= self.fail_times):
            return _error(self.status, f"scripted {ERROR_TYPES.get(self.status, 'error')}")
        if action == "converse":
            return web.json_response(converse_answer(self.converse))
        if action.endswith("stream") and self.stream_throttles > 0:
            self.stream_throttles -= 1
            return await self._stream(request, [exception("throttlingException", "Slow down")])
        if action == "converse-stream":
            return await self._stream(request, converse_events(self.converse))
        if "titan-embed" in model:
            return web.json_response(self._titan(body))
        if "cohere.embed" in model:
            return web.json_response(self._cohere(body))
        if body.get("anthropic_version") != "bedrock-2023-05-31" or "model" in body:
            return _error(400, "Malformed input request: anthropic_version or model")
        if action == "invoke":
            return web.json_response(message(model, self.claude))
        if action == "invoke-with-response-stream":
            return await self._stream(request, invoke_events(model, self.claude))
        return _error(404, f"unknown action {action}")

    def _titan(self, body: Json) -> Json:
        text = body["inputText"]
        dims = body.get("dimensions", self.embedding_dims)
        return {
            "embedding": [round((len(text) + i) / 100, 4) for i in range(dims)],
            "inputTextTokenCount": len(text.split()),
        }

    def _cohere(self, body: Json) -> Json:
        return {
            "id": "emb-fake",
            "response_type": "embeddings_floats",
            "texts": body["texts"],
            "embeddings": [
                [round((len(t) + i) / 100, 4) for i in range(self.embedding_dims)]
                for t in body["texts"]
            ],
        }

    async def _stream(self, request: web.Request, messages: list[bytes]) -> web.StreamResponse:
        data = b"".join(messages)
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        step = self.split or len(data)
        for i in range(0, len(data), step):
            await response.write(data[i : i + step])
            await asyncio.sleep(0)
        await response.write_eof()
        return response


def _error(status: int, text: str) -> web.Response:
    kind = ERROR_TYPES.get(status, "InternalServerException")
    return web.Response(
        status=status,
        body=orjson.dumps({"message": text}),
        content_type="application/json",
        headers={
            "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        },
    )


def bedrock_config(bedrock: FakeBedrock, upstream_url: str, tmp_path, **provider) -> dict:
    """A test config with provider `aws` on the fake and its models (Claude, Llama, Titan,
    Cohere)."""
    config = base_config(upstream_url, tmp_path)
    config["providers"]["aws"] = {
        "type": "bedrock",
        "region": REGION,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "base_url": bedrock.base_url,
        **provider,
    }
    config["models"]["claude-bedrock"] = {"provider": "aws", "model": CLAUDE}  # catalog prices
    config["models"]["llama"] = {"provider": "aws", "model": "meta.llama3-70b-instruct-v1:0"}
    config["models"]["titan"] = {"provider": "aws", "model": "amazon.titan-embed-text-v2:0"}
    config["models"]["cohere"] = {
        "provider": "aws",
        "model": "cohere.embed-english-v3",
        "input_price": 0.1,
    }
    return config
