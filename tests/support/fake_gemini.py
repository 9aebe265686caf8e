"""A fake Google Gemini API: a real aiohttp server on 127.0.0.1 speaking Google's wire format.
Records every request; scripted text, thoughts, function calls, usage, errors and broken streams.

What it copies from the real service:
- ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` (``?alt=sse``: events
  ``data: <GenerateContentResponse>\\r\\n\\r\\n``; without it, one JSON array of the same objects)
  and ``:batchEmbedContents`` (each request's ``model`` must be ``models/{model}``).
- The key comes in ``x-goog-api-key`` (or ``?key=``). None: 403 PERMISSION_DENIED; a wrong one:
  400 INVALID_ARGUMENT with reason API_KEY_INVALID, as Google answers (not 401).
- Unknown field names are refused with 400 like Google's strict JSON parser, so a translator that
  invents a field fails here too; so are empty ``contents``, empty ``parts`` and other roles.
- Streams carry cumulative ``usageMetadata`` on every event; the last event has ``finishReason``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests.support.json_sample import sample
from tests.support.scripted_stream import write_scripted

GOOD_KEY = "gemini-test-key"

# What Google says for each status the fake can be told to answer.
STATUS_ERRORS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in AI Studio."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}
_REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
}
_PART_FIELDS = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "thought",
    "thoughtSignature",
    "executableCode",
    "codeExecutionResult",
    "videoMetadata",
}
_CONFIG_FIELDS = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "mediaResolution",
}


def google_error(code: int, status: str, message: str, *, as_list: bool = False) -> bytes:
    """Google's error body; ``as_list`` wraps it in a JSON array, as some endpoints do."""
    error = {"error": {"code": code, "message": message, "status": status}}
    return orjson.dumps([error] if as_list else error)


def status_error(code: int, *, as_list: bool = False) -> bytes:
    status, message = STATUS_ERRORS.get(code, ("UNKNOWN", f"HTTP {code}"))
    return google_error(code, status, message, as_list=as_list)


def embedding_values(text: str, dims: int) -> list[float]:
    """A deterministic vector per text; every value is exact in float32 (k/128)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(dims)]


@dataclass
class Call:
    """One scripted ``functionCall`` part."""

    name: str
    args: dict[str, Any]
    signature: str | None = None

    def part(self) -> dict[str, Any]:
        part: dict[str, Any] = {"functionCall": {"name": self.name, "args": self.args}}
        if self.signature is not None:
            part["thoughtSignature"] = self.signature
        return part


@dataclass
class GeminiBehaviour:
    """What the fake does with the next requests (tests change it between calls)."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " Gemini"])
    thoughts: list[str] = field(default_factory=list)  # thought parts, sent before the text
    calls: list[Call] = field(default_factory=list)  # functionCall parts, sent after the text
    usage: dict[str, Any] | None = field(
        default_factory=lambda: {
            "promptTokenCount": 9,
            "candidatesTokenCount": 3,
            "totalTokenCount": 12,
        }
    )
    finish_reason: str | None = "STOP"  # None: no event ever says the answer is complete
    block_reason: str | None = None  # the prompt is blocked: promptFeedback and no candidates
    status: int = 200
    error_body: bytes | None = None  # None: status_error(status)
    fail_times: int = 0  # answer `status` this many times, then 200 (0: always)
    split: int = 0  # >0: write the stream in pieces of this many bytes
    crlf: bool = True  # the real service ends SSE lines with CRLF
    close_after_bytes: int = -1  # >=0: drop the connection after this many stream bytes
    hold_open_s: float = 0.0  # keep the stream open this long after its last byte
    error_after_events: int = -1  # >=0: an in-stream error event after this many events
    chunk_delay_s: float = 0.0
    embedding_dims: int = 8  # when the request has no outputDimensionality


@dataclass
class GeminiReceived:
    method: str  # generateContent, streamGenerateContent or batchEmbedContents
    model: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: Any
    raw: bytes
    at: float = field(default_factory=time.monotonic)


def _candidate_count(body: dict[str, Any]) -> int:
    config = body.get("generationConfig") or {}
    count = config.get("candidateCount", 1)
    return count if isinstance(count, int) and count > 0 else 1


def _parts(b: GeminiBehaviour, candidate: int) -> list[list[dict[str, Any]]]:
    """The parts of one candidate, one list per stream event (candidates > 0 say who they are)."""
    pieces = list(b.pieces)
    if candidate and pieces:
        pieces[0] = f"({candidate}) {pieces[0]}"
    events = [[{"text": t, "thought": True}] for t in b.thoughts]
    events += [[{"text": p}] for p in pieces]
    events += [[c.part()] for c in b.calls]
    return events or [[{"text": ""}]]


def _usage_at(b: GeminiBehaviour, last: bool) -> dict[str, Any] | None:
    """Usage as Gemini streams it: the prompt's count on every event, the final counts last."""
    if b.usage is None or last:
        return b.usage
    prompt = b.usage.get("promptTokenCount", 0)
    return {"promptTokenCount": prompt, "totalTokenCount": prompt}


def _blocked(b: GeminiBehaviour, model: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "promptFeedback": {"blockReason": b.block_reason},
        "modelVersion": model,
        "responseId": "fake-response",
    }
    if b.usage is not None:
        answer["usageMetadata"] = {"promptTokenCount": b.usage.get("promptTokenCount", 0)}
    return answer


def generate_response(b: GeminiBehaviour, model: str, candidates: int = 1) -> dict[str, Any]:
    """The generateContent answer the fake gives: thoughts, joined text, calls, finish, usage."""
    if b.block_reason is not None:
        return _blocked(b, model)
    out = []
    for i in range(candidates):
        parts = [p for event in _parts(b, i) for p in event]
        thoughts = [p for p in parts if p.get("thought")]
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        calls = [p for p in parts if "functionCall" in p]
        candidate: dict[str, Any] = {
            "content": {
                "parts": [*thoughts, *([{"text": text}] if text else []), *calls],
                "role": "model",
            },
            "index": i,
        }
        if b.finish_reason is not None:
            candidate["finishReason"] = b.finish_reason
        out.append(candidate)
    answer: dict[str, Any] = {
        "candidates": out,
        "modelVersion": model,
        "responseId": "fake-response",
    }
    if b.usage is not None:
        answer["usageMetadata"] = b.usage
    return answer


def stream_events(b: GeminiBehaviour, model: str, candidates: int = 1) -> list[dict[str, Any]]:
    """The GenerateContentResponse objects of a stream, one per part (all candidates each time)."""
    if b.block_reason is not None:
        return [_blocked(b, model)]
    per_candidate = [_parts(b, i) for i in range(candidates)]
    count = len(per_candidate[0])
    events = []
    for n in range(count):
        last = n == count - 1
        listed = []
        for i in range(candidates):
            candidate: dict[str, Any] = {
                "content": {"parts": per_candidate[i][n], "role": "model"},
                "index": i,
            }
            if last and b.finish_reason is not None:
                candidate["finishReason"] = b.finish_reason
            listed.append(candidate)
        event: dict[str, Any] = {"candidates": listed}
        usage = _usage_at(b, last)
        if usage is not None:
            event["usageMetadata"] = usage
        event.update(modelVersion=model, responseId="fake-response")
        events.append(event)
    return events


def sse_body(events: list[dict[str, Any]], crlf: bool = True) -> bytes:
    """Events as ``?alt=sse`` writes them."""
    end = b"\r\n\r\n" if crlf else b"\n\n"
    return b"".join(b"data: " + orjson.dumps(e) + end for e in events)


def stream_body(b: GeminiBehaviour, model: str, candidates: int = 1) -> bytes:
    """The exact bytes the fake streams for `b` (error event included, connection cut excluded)."""
    events = stream_events(b, model, candidates)
    if b.error_after_events >= 0:
        events = events[: b.error_after_events]
        events.append(orjson.loads(status_error(500)))
    return sse_body(events, b.crlf)


class FakeGemini:
    """Serves the Gemini API according to `behaviour`; `received` lists every request."""

    def __init__(self, api_key: str = GOOD_KEY) -> None:
        self.api_key = api_key
        self.behaviour = GeminiBehaviour()
        self.received: list[GeminiReceived] = []
        self.streamed: list[bytes] = []  # exact bytes sent for each stream
        self.cancelled = 0
        self.server: TestServer | None = None

    @property
    def base_url(self) -> str:
        """What a provider's ``base_url`` would be: the API root with its version."""
        assert self.server is not None
        return str(self.server.make_url("/v1beta"))

    async def start(self) -> FakeGemini:
        app = web.Application()
        app.router.add_post("/v1beta/models/{target}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        self.received.append(
            GeminiReceived(
                method,
                model,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                body,
                raw,
            )
        )
        refusal = self._refusal(request, method, model, body)
        if refusal is not None:
            return refusal
        b = self.behaviour
        if b.status != 200 and (b.fail_times == 0 or len(self.received) <= b.fail_times):
            error = b.error_body if b.error_body is not None else status_error(b.status)
            return _json(error, b.status)
        if method == "batchEmbedContents":
            return _json(orjson.dumps(self._embeddings(body)))
        b = json_mode(b, body)
        if method == "generateContent":
            return _json(orjson.dumps(generate_response(b, model, _candidate_count(body))))
        if request.query.get("alt") != "sse":  # without alt=sse Google streams one JSON array
            return _json(orjson.dumps(stream_events(b, model, _candidate_count(body))))
        return await self._stream(request, stream_body(b, model, _candidate_count(body)))

    def _refusal(
        self, request: web.Request, method: str, model: str, body: Any
    ) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return _json(
                google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity to call "
                    "this API.",
                ),
                403,
            )
        if key != self.api_key:
            return _json(
                google_error(
                    400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
                ),
                400,
            )
        if method not in ("generateContent", "streamGenerateContent", "batchEmbedContents"):
            return _json(google_error(404, "NOT_FOUND", f"Method {method!r} not found."), 404)
        if not isinstance(body, dict):
            return _invalid("Invalid JSON payload received.")
        problem = _embed_problem(body, model) if method == "batchEmbedContents" else _problem(body)
        return _invalid(problem) if problem else None

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        dims = self.behaviour.embedding_dims
        return {
            "embeddings": [
                {
                    "values": embedding_values(
                        r["content"]["parts"][0]["text"], r.get("outputDimensionality", dims)
                    )
                }
                for r in body["requests"]
            ]
        }

    async def _stream(self, request: web.Request, data: bytes) -> web.StreamResponse:
        return await write_scripted(self, request, data, self.behaviour)


def json_mode(b: GeminiBehaviour, body: dict[str, Any]) -> GeminiBehaviour:
    """With `responseMimeType: application/json` Gemini answers JSON text following
    `responseJsonSchema` (or `responseSchema`): the fake answers a sample of it, in pieces."""
    config = (body.get("generationConfig") if isinstance(body, dict) else None) or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if config.get("responseMimeType") != "application/json" or not schema:
        return b  # JSON mode without a schema: the scripted pieces (tests make them JSON)
    text = orjson.dumps(sample(schema)).decode()
    return replace(b, pieces=[text[i : i + 11] for i in range(0, len(text), 11)], calls=[])


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


def _invalid(message: str) -> web.Response:
    return _json(google_error(400, "INVALID_ARGUMENT", message), 400)


def _unknown(names: set[str], where: str) -> str | None:
    """Google's words for the first field name it does not know, or None."""
    if not names:
        return None
    name = min(names)
    return f'Invalid JSON payload received. Unknown name "{name}" at {where!r}: Cannot find field.'


def _problem(body: dict[str, Any]) -> str | None:
    """Why Google would refuse this generateContent body, or None."""
    problem = _unknown(set(body) - _REQUEST_FIELDS, "")
    config = body.get("generationConfig")
    if problem is None and isinstance(config, dict):
        problem = _unknown(set(config) - _CONFIG_FIELDS, "generation_config")
    if problem is not None:
        return problem
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}])"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return (
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        for j, part in enumerate(parts):
            problem = _unknown(set(part) - _PART_FIELDS, f"contents[{i}].parts[{j}]")
            if problem is not None:
                return problem
    return None


def _embed_problem(body: dict[str, Any], model: str) -> str | None:
    requests = body.get("requests")
    if set(body) - {"requests"} or not isinstance(requests, list) or not requests:
        return "* BatchEmbedContentsRequest.requests: requests is not specified"
    for i, r in enumerate(requests):
        if r.get("model") != f"models/{model}":
            return (
                f"* BatchEmbedContentsRequest.requests[{i}].model: model must match models/{model}"
            )
        parts = (r.get("content") or {}).get("parts")
        if not parts or not isinstance(parts[0].get("text"), str):
            return f"* BatchEmbedContentsRequest.requests[{i}].content: text is required"
    return None
