"""A fake OpenAI-compatible upstream (a real aiohttp server on 127.0.0.1) with scripted behaviours.
Records every request it receives so tests can check what the gateway forwarded."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests.support import openai_wire as wire
from tests.support.scripted_stream import write_scripted

Json = dict[str, Any]


def completion(text: str, model: str, usage: Json | None) -> Json:
    body: Json = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(
    model: str, delta: Json | None, finish: str | None = None, usage: Json | None = None
) -> bytes:
    obj: Json = {
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model
    }  # fmt: skip
    obj["choices"] = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    )
    obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def sse_stream(
    model: str, pieces: list[str], usage: Json | None, usage_in_content: bool = False
) -> bytes:
    """An OpenAI stream: role chunk, content chunks, finish chunk, usage chunk, [DONE]."""
    out = [chunk(model, {"role": "assistant", "content": ""})]
    out += [chunk(model, {"content": p}) for p in pieces]
    if usage is not None and usage_in_content:
        out.append(chunk(model, {}, "stop", usage))
    else:
        out.append(chunk(model, {}, "stop"))
        if usage is not None:
            out.append(chunk(model, None, usage=usage))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


@dataclass
class Behaviour:
    """What the fake does with the next requests (tests change it between calls). `text` answers
    unstreamed requests and `pieces` streamed ones, on every endpoint that generates text."""

    text: str = "Hello from upstream"
    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " upstream"])
    usage: Json | None = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    )  # chat and completions as is; /v1/responses as input_tokens / output_tokens
    usage_in_content: bool = False
    send_usage_only_when_asked: bool = True
    status: int = 200
    error_body: bytes = (
        b'{"error":{"message":"bad thing","type":"invalid_request_error",'
        b'"param":null,"code":"bad"}}'
    )
    split: int = 0  # >0: write the stream in pieces of this many bytes
    crlf: bool = False
    keepalive_comments: bool = False
    chunk_delay_s: float = 0.0
    hang_s: float = 0.0  # sleep before answering
    close_after_bytes: int = -1  # >=0: drop the connection after this many stream bytes
    hold_open_s: float = 0.0  # keep the stream open this long after its last byte
    fail_times: int = 0  # answer `status` this many times, then 200
    embedding_tokens: int = 5  # usage.prompt_tokens (and total_tokens) of /v1/embeddings
    tool_call: Json | None = None  # {"name", "arguments", "call_id"}: a function_call output item
    stop_before_completed: bool = False  # /v1/responses streams end cleanly without completed


@dataclass
class Received:
    headers: CIMultiDict[str]
    body: Json  # {} when the request had no body
    raw: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived (orders several fakes)
    path: str = "/v1/chat/completions"
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class StoredResponse:
    """A response the fake created with `store` on: served again by GET /v1/responses/{id}."""

    response: Json
    input_items: list[Json]  # in request order, each with an id


def new_id(prefix: str, sep: str = "_") -> str:
    return f"{prefix}{sep}{secrets.token_hex(24)}"


def error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> web.Response:
    detail = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    body = orjson.dumps({"error": detail})
    return web.Response(status=status, body=body, content_type="application/json")


class FakeUpstream:
    """Serve OpenAI's chat completions, embeddings, legacy completions and Responses API
    (create, retrieve, delete, input items) according to `behaviour`. `name` is put in every
    answer's `X-Fake-Upstream` header and in each Response's metadata (`upstream`). Azure
    OpenAI's deployment-scoped paths (/openai/deployments/{name}/...) are served too."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self.streamed: list[bytes] = []  # exact bytes sent for each stream
        self.answered: list[bytes] = []  # exact bodies of the answers that were not streams
        self.cancelled = 0
        self.responses: dict[str, StoredResponse] = {}  # by response id
        self.server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/v1"))

    @property
    def root_url(self) -> str:
        """The server's root, the base_url of an `azure` provider."""
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> FakeUpstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/responses", self.create_response)
        app.router.add_get("/v1/responses/{id}", self.retrieve_response)
        app.router.add_delete("/v1/responses/{id}", self.delete_response)
        app.router.add_get("/v1/responses/{id}/input_items", self.input_items)
        azure = "/openai/deployments/{deployment}"
        app.router.add_post(f"{azure}/chat/completions", self.handle)
        app.router.add_post(f"{azure}/embeddings", self.embeddings)
        app.router.add_post(f"{azure}/completions", self.completions)
        app.on_response_prepare.append(self._on_prepare)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Name the fake in every answer; keep the body of every answer that is not a stream."""
        response.headers["X-Fake-Upstream"] = self.name
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            self.answered.append(response.body)

    async def _admit(self, request: web.Request) -> tuple[Json, web.Response | None]:
        """Record the request, then hang or fail as scripted: (body, the failure to answer)."""
        raw = await request.read()
        body = orjson.loads(raw) if raw else {}
        headers = CIMultiDict(request.headers)
        received = Received(headers, body, raw, path=request.path, method=request.method)
        received.query = dict(request.query)
        self.received.append(received)
        b = self.behaviour
        if b.hang_s:
            await asyncio.sleep(b.hang_s)
        failing = b.status != 200 and (b.fail_times == 0 or len(self.received) <= b.fail_times)
        if failing:
            failure = web.Response(
                status=b.status, body=b.error_body, content_type="application/json"
            )
            return body, failure
        return body, None

    def _usage_for(self, body: Json) -> Json | None:
        """The usage a stream carries: only when asked for, unless told otherwise."""
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        b = self.behaviour
        return b.usage if (asked or not b.send_usage_only_when_asked) else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        body, failure = await self._admit(request)
        if failure is not None:
            return failure
        b = self.behaviour
        model = body.get("model", "")
        if not body.get("stream"):
            return web.Response(
                body=orjson.dumps(completion(b.text, model, b.usage)),
                content_type="application/json",
            )
        data = sse_stream(model, b.pieces, self._usage_for(body), b.usage_in_content)
        return await self._stream(request, data)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/embeddings: a deterministic unit vector per input."""
        body, failure = await self._admit(request)
        if failure is not None:
            return failure
        try:
            answer = wire.embeddings_body(body, self.behaviour.embedding_tokens)
        except (ValueError, TypeError) as e:
            return error(400, str(e), param="input")
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/completions (legacy text completions)."""
        body, failure = await self._admit(request)
        if failure is not None:
            return failure
        b = self.behaviour
        model, cid, created = body.get("model", ""), new_id("cmpl", "-"), int(time.time())
        if not body.get("stream"):
            answer = wire.text_completion(cid, created, model, b.text, b.usage)
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        data = wire.text_completion_stream(cid, created, model, b.pieces, self._usage_for(body))
        return await self._stream(request, data)

    async def create_response(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/responses: remembered by id unless `store` is false."""
        body, failure = await self._admit(request)
        if failure is not None:
            return failure
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.responses:
            return error(
                404,
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        b = self.behaviour
        streamed = bool(body.get("stream"))
        text = "".join(b.pieces) if streamed else b.text
        output = []
        if text or b.tool_call is None:
            output.append(wire.message_item(new_id("msg"), text))
        if b.tool_call is not None:
            output.append(wire.function_call_item(new_id("fc"), b.tool_call))
        metadata = {**(body.get("metadata") or {}), "upstream": self.name}
        final = wire.response_object(
            new_id("resp"), int(time.time()), body, output, wire.response_usage(b.usage), metadata
        )
        if body.get("store", True) is not False:
            items = wire.input_items(body.get("input"), ids("msg"))
            self.responses[final["id"]] = StoredResponse(final, items)
        if not streamed:
            return web.Response(body=orjson.dumps(final), content_type="application/json")
        data = wire.response_events(final, b.pieces, b.stop_before_completed)
        return await self._stream(request, data)

    async def _stored(self, request: web.Request) -> StoredResponse | web.Response:
        """The stored response a GET/DELETE names, or the failure or 404 to answer instead."""
        _, failure = await self._admit(request)
        if failure is not None:
            return failure
        response_id = request.match_info["id"]
        stored = self.responses.get(response_id)
        if stored is None:
            return error(404, f"Response with id '{response_id}' not found.")
        return stored

    async def retrieve_response(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/responses/{id}."""
        stored = await self._stored(request)
        if isinstance(stored, web.Response):
            return stored
        return web.Response(body=orjson.dumps(stored.response), content_type="application/json")

    async def delete_response(self, request: web.Request) -> web.StreamResponse:
        """DELETE /v1/responses/{id}: forgotten afterwards."""
        stored = await self._stored(request)
        if isinstance(stored, web.Response):
            return stored
        response_id = stored.response["id"]
        del self.responses[response_id]
        answer = {"id": response_id, "object": "response.deleted", "deleted": True}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def input_items(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/responses/{id}/input_items: a cursor page (`order` desc by default, `limit`,
        `after`)."""
        stored = await self._stored(request)
        if isinstance(stored, web.Response):
            return stored
        items = list(stored.input_items)
        if request.query.get("order", "desc") == "desc":
            items.reverse()
        after = request.query.get("after")
        if after is not None:
            at = [i for i, item in enumerate(items) if item["id"] == after]
            items = items[at[0] + 1 :] if at else []
        limit = int(request.query.get("limit", "20"))
        page = items[:limit]
        answer = {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def _stream(self, request: web.Request, data: bytes) -> web.StreamResponse:
        """Write an event stream as scripted (line endings, comments, splits, delays, drops),
        keeping the exact bytes sent in `streamed`."""
        b = self.behaviour
        if b.crlf:
            data = data.replace(b"\n", b"\r\n")
        if b.keepalive_comments:
            data = b": keep-alive\n\n" + data.replace(b"data: [DONE]", b": ping\n\ndata: [DONE]")
        return await write_scripted(self, request, data, b)


def ids(prefix: str) -> Iterator[str]:
    """Fresh ids with this prefix, as many as asked for."""
    return (new_id(prefix) for _ in itertools.count())


async def wait_for(
    predicate: Callable[[], object], timeout_s: float = 5.0, every_s: float = 0.02
) -> bool:
    """Poll a condition (bounded); True once it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(every_s)
    return bool(predicate())
