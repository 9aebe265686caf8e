"""Fakes that play an agent's model for one tool turn: a request that offers the agent's shell
tool (`exec_command` {cmd} for Codex, `Bash` {command} for Claude Code) and carries no tool result
yet gets a call of it; the request with the result gets a final text; any other request (an
agent's side calls) gets that text too. OpenAI-compatible (Responses and chat), Anthropic and
Gemini flavours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_anthropic import FakeAnthropic, Tool
from tests.support.fake_gemini import Call, FakeGemini
from tests.support.front_door import ToolCallingUpstream

COMMAND = "echo compat-ok"
FINAL = "The command printed compat-ok."


@dataclass(frozen=True)
class ShellTool:
    """The agent's shell tool: its name and the argument holding the command."""

    name: str
    argument: str

    @property
    def arguments(self) -> dict[str, str]:
        return {self.argument: COMMAND}


CODEX_SHELL = ShellTool("exec_command", "cmd")
CLAUDE_CODE_SHELL = ShellTool("Bash", "command")


def has_tool_result(body: Any) -> bool:
    """Whether a Responses, chat, Messages or Gemini body carries a tool's result."""
    if not isinstance(body, dict):
        return False
    items = body.get("input") if isinstance(body.get("input"), list) else []
    if any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items):
        return True
    for message in [*(body.get("messages") or ()), *(body.get("contents") or ())]:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            return True
        blocks = message.get("content") or message.get("parts")
        for block in blocks if isinstance(blocks, list) else ():
            if isinstance(block, dict) and (
                block.get("type") == "tool_result" or "functionResponse" in block
            ):
                return True
    return False


def offered_tools(body: Any) -> set[str]:
    """The tool names a request offers, in any of the four APIs."""
    names: set[str] = set()
    for tool in body.get("tools") or () if isinstance(body, dict) else ():
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        names.add(str((function if isinstance(function, dict) else tool).get("name")))
        for declaration in tool.get("functionDeclarations") or ():
            names.add(str(declaration.get("name")))
    return names


def wants_call(body: Any, shell: ShellTool) -> bool:
    return shell.name in offered_tools(body) and not has_tool_result(body)


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

    shell = CODEX_SHELL

    def _script(self, body: Any) -> None:
        b = self.behaviour
        b.text, b.pieces = FINAL, [FINAL]
        b.tool_call = None
        if wants_call(body, self.shell):
            arguments = orjson.dumps(self.shell.arguments).decode()
            b.tool_call = {"name": self.shell.name, "arguments": arguments, "call_id": "call_cx1"}
            b.text, b.pieces = "", []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._script(await _body(request))
        return await super().handle(request)

    async def create_response(self, request: web.Request) -> web.StreamResponse:
        self._script(await _body(request))
        return await super().create_response(request)


class AgentAnthropic(FakeAnthropic):
    """The Anthropic fake playing the tool turn."""

    shell = CODEX_SHELL

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        s = self.script
        s.pieces, s.tool = [FINAL], None
        if wants_call(body, self.shell):
            arguments = orjson.dumps(self.shell.arguments).decode()
            s.pieces, s.tool = [], Tool(self.shell.name, "toolu_cx1", [arguments])
        return await super()._messages(request)


class AgentGemini(FakeGemini):
    """The Gemini fake playing the tool turn."""

    shell = CLAUDE_CODE_SHELL

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        b = self.behaviour
        b.pieces, b.calls = [FINAL], []
        if wants_call(body, self.shell):
            b.pieces, b.calls = [], [Call(self.shell.name, self.shell.arguments)]
        return await super().handle(request)


# (API, public model, fake) of the SDK clients' tool-turn tests: chat relayed and translated to
# Anthropic; Responses relayed, bridged to Anthropic and bridged to a chat-only server.
SDK_ROUTES = [
    ("chat", "fake-model", "openai"),
    ("chat", "claude-sonnet", "anthropic"),
    ("responses", "fake-model", "openai"),
    ("responses", "claude-sonnet", "anthropic"),
    ("responses", "local-llm", "openai"),
]
