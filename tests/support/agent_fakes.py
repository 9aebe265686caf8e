"""Fakes that play an agent's model for one tool turn: the first request gets a call of the
agent's shell tool (`exec_command`, as Codex names it), the request carrying its result gets a
final text. OpenAI-compatible (Responses and chat) and Anthropic flavours."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_anthropic import FakeAnthropic, Tool
from tests.support.front_door import ToolCallingUpstream

SHELL_TOOL = "exec_command"
COMMAND = "echo compat-ok"
FINAL = "The command printed compat-ok."


def has_tool_result(body: Any) -> bool:
    """Whether a Responses, chat or Messages body carries a tool's result."""
    if not isinstance(body, dict):
        return False
    items = body.get("input") if isinstance(body.get("input"), list) else []
    if any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items):
        return True
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            return True
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks):
            return True
    return False


def tool_output(body: Any) -> str:
    """Everything a body says about tool results, as text (to find the command's output)."""
    return orjson.dumps(body).decode() if has_tool_result(body) else ""


async def _body(request: web.Request) -> Any:
    raw = await request.read()  # aiohttp keeps it: the fake reads it again
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


class AgentUpstream(ToolCallingUpstream):
    """The OpenAI fake (chat and Responses) playing the tool turn."""

    def _script(self, body: Any) -> None:
        b = self.behaviour
        b.text, b.pieces = FINAL, [FINAL]
        b.tool_call = None
        if not has_tool_result(body):
            arguments = orjson.dumps({"cmd": COMMAND}).decode()
            b.tool_call = {"name": SHELL_TOOL, "arguments": arguments, "call_id": "call_compat1"}
            b.text, b.pieces = "", []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._script(await _body(request))
        return await super().handle(request)

    async def create_response(self, request: web.Request) -> web.StreamResponse:
        self._script(await _body(request))
        return await super().create_response(request)


class AgentAnthropic(FakeAnthropic):
    """The Anthropic fake playing the tool turn."""

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        s = self.script
        s.pieces, s.tool = [FINAL], None
        if not has_tool_result(body):
            s.pieces = []
            s.tool = Tool(
                name=SHELL_TOOL, id="toolu_compat1", fragments=[f'{{"cmd": "{COMMAND}"}}']
            )
        return await super()._messages(request)
