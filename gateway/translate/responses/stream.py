"""A chat.completion.chunk stream rewritten, as it arrives, into Responses API stream events.
Pure: bytes in, bytes out; the gateway stores final_response() when the stream has completed.

Rules:
- Every event is ``event: <type>`` plus ``data: <json>``; each JSON has its ``type`` and a
  ``sequence_number`` counting from 0. response.created and response.in_progress come first,
  on the first feed() whatever it holds, so any split of the input gives the same output.
- Output items are written one after another, as the Responses API does: a new item (text after
  tool calls, or the next tool call) first finishes the open one with its .done events.
- Only choice 0 is read; reasoning and refusal deltas have no item here and are skipped.
- The terminal event is response.completed (response.incomplete for a ``length`` or
  ``content_filter`` finish) at ``[DONE]`` or close(), carrying the usage-only chunk's usage.
  An error event, or an end before any finish_reason, gives response.failed. Nothing follows.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...sse import SSEEvent, SSEParser
from .object import (
    ResponseContext,
    call_id,
    function_call_item,
    incomplete_reason,
    message_item,
    name_call,
    response_error,
    response_object,
    response_usage,
    text_part,
)

_CUT_SHORT = {"code": "server_error", "message": "The provider's stream ended before the answer."}


class ChatToResponsesStream:
    """Translates one chat stream: feed() it raw upstream bytes, then close() at the end."""

    __slots__ = (
        "_ctx",
        "_ended",
        "_final",
        "_finish",
        "_open",
        "_output",
        "_parser",
        "_pieces",
        "_seq",
        "_started",
        "_tool_items",
        "_usage",
    )

    def __init__(self, ctx: ResponseContext) -> None:
        self._ctx = ctx
        self._parser = SSEParser()
        self._seq = 0
        self._started = False
        self._ended = False
        self._output: list[dict[str, Any]] = []
        self._open: int | None = None  # output index of the item still receiving deltas
        self._pieces: list[str] = []  # the open item's text or arguments so far
        self._tool_items: dict[int, int] = {}  # chat tool_calls index -> output index
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._final: dict[str, Any] | None = None

    def feed(self, raw: bytes) -> bytes:
        """Upstream bytes, split anywhere; returns the whole Responses events they complete."""
        out: list[bytes] = []
        self._start(out)
        for event in self._parser.feed(raw):
            self._event(event, out)
        return b"".join(out)

    def close(self) -> bytes:
        """End of the upstream stream: the events still due, the terminal one included."""
        out: list[bytes] = []
        self._start(out)
        for event in self._parser.flush():
            self._event(event, out)
        self._terminate(out)
        return b"".join(out)

    def final_response(self) -> dict[str, Any] | None:
        """The Response of response.completed or response.incomplete; None before or on failure."""
        return self._final

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        response = response_object(self._ctx, status="in_progress", output=[])
        self._emit(out, "response.created", response=response)
        self._emit(out, "response.in_progress", response=response)

    def _event(self, event: SSEEvent, out: list[bytes]) -> None:
        if self._ended or event.data is None:
            return
        if event.data == b"[DONE]":
            self._terminate(out)
            return
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            self._fail(response_error(chunk["error"]), out)
            return
        usage = response_usage(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)

    def _choice(self, choice: dict[str, Any], out: list[bytes]) -> None:
        if self._finish is not None:
            return  # the answer is over; only usage and the end may follow
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._text(content, out)
            for position, call in enumerate(delta.get("tool_calls") or ()):
                if isinstance(call, dict):
                    self._tool_call(call, position, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self._finish = finish
            self._close_open("incomplete" if incomplete_reason(finish) else "completed", out)

    def _text(self, text: str, out: list[bytes]) -> None:
        index = self._open
        if index is None or self._output[index]["type"] != "message":
            index = self._open_item(
                message_item(self._ctx, len(self._output), None, "in_progress"), out
            )
            item_id = self._output[index]["id"]
            self._emit(
                out,
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=text_part(""),
            )
        self._pieces.append(text)
        self._emit(
            out,
            "response.output_text.delta",
            item_id=self._output[index]["id"],
            output_index=index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _tool_call(self, call: dict[str, Any], position: int, out: list[bytes]) -> None:
        key = call.get("index", position)
        key = key if isinstance(key, int) else position
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name")
        index = self._tool_items.get(key)
        if index is None:
            at = len(self._output)
            item = function_call_item(
                self._ctx,
                at,
                call_id(self._ctx, at, call.get("id")),
                name if isinstance(name, str) else "",
                "",
                "in_progress",
            )
            index = self._tool_items[key] = self._open_item(item, out)
        item = self._output[index]
        if isinstance(name, str) and name and not item["name"]:
            name_call(self._ctx, item, name)  # some providers name it after its first fragment
        fragment = function.get("arguments")
        if not isinstance(fragment, str) or not fragment:
            return
        if index == self._open:
            self._pieces.append(fragment)
        else:
            item["arguments"] += fragment  # a late fragment of a finished call: keep it whole
        self._emit(
            out,
            "response.function_call_arguments.delta",
            item_id=item["id"],
            output_index=index,
            delta=fragment,
        )

    def _open_item(self, item: dict[str, Any], out: list[bytes]) -> int:
        """Finish the open item, then add ``item`` as the open one; returns its output index."""
        self._close_open("completed", out)
        index = len(self._output)
        self._output.append(item)
        self._open, self._pieces = index, []
        self._emit(out, "response.output_item.added", output_index=index, item=item)
        return index

    def _settle_open(self, status: str) -> dict[str, Any] | None:
        """Write the open item's text or arguments into it with ``status``; no events."""
        if self._open is None:
            return None
        item = self._output[self._open]
        joined = "".join(self._pieces)
        if item["type"] == "message":
            item["content"] = [text_part(joined)]
        else:
            item["arguments"] = joined
        item["status"] = status
        self._open, self._pieces = None, []
        return item

    def _close_open(self, status: str, out: list[bytes]) -> None:
        index = self._open
        item = self._settle_open(status)
        if item is None or index is None:
            return
        if item["type"] == "message":
            part = item["content"][0]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            self._emit(out, "response.output_text.done", **common, text=part["text"], logprobs=[])
            self._emit(out, "response.content_part.done", **common, part=part)
        else:
            self._emit(
                out,
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        self._emit(out, "response.output_item.done", output_index=index, item=item)

    def _terminate(self, out: list[bytes]) -> None:
        if self._ended:
            return
        if self._finish is None:
            self._fail(dict(_CUT_SHORT), out)
            return
        reason = incomplete_reason(self._finish)
        response = response_object(
            self._ctx,
            status="incomplete" if reason else "completed",
            output=self._output,
            usage=self._usage,
            incomplete=reason,
        )
        self._ended = True
        self._final = response
        kind = "response.incomplete" if reason else "response.completed"
        self._emit(out, kind, response=response)

    def _fail(self, error: dict[str, Any], out: list[bytes]) -> None:
        self._settle_open("incomplete")
        response = response_object(
            self._ctx, status="failed", output=self._output, usage=self._usage, error=error
        )
        self._ended = True
        self._emit(out, "response.failed", response=response)

    def _emit(self, out: list[bytes], kind: str, **fields: Any) -> None:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        out.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
