"""The Anthropic front door (Messages API client, chat completions upstream): requests turned into
chat bodies. Pure; checks, answers, errors and counts live in checks.py, answer.py, errors.py,
count.py.

This is the one module callers import: it re-exports those helpers. Choices where the two APIs
differ:
- Consecutive turns of one role are merged first, as Anthropic does, so a turn's tool results
  always come right after the assistant's tool calls.
- ``system`` text blocks are joined with a blank line into one system message; a
  ``{"role": "system"}`` message inside ``messages`` (Claude Code sends them) keeps its place.
- A ``tool_result`` becomes a ``role: tool`` message placed before the rest of its user turn; its
  text blocks are joined with a newline; ``is_error: true`` prefixes the text with ``Error: ``.
  Chat tool messages hold only text, so images in a tool result move to the user message that
  follows the tool messages.
- An assistant turn's text blocks are concatenated (no separator); thinking and redacted thinking
  blocks are dropped (their signatures mean nothing to another provider); a turn left empty is
  dropped.
- Refused with 400 naming the field: document, search_result and other blocks chat completions
  cannot carry, image ``file`` sources, server tools (a ``tools[].type`` other than ``custom``)
  and ``mcp_servers``.
- Dropped: ``top_k``, ``thinking``, ``output_config.effort``, ``cache_control``, ``citations``,
  ``service_tier``, ``container``, ``context_management`` and other Anthropic-only fields.
- ``output_config.format`` (structured outputs) becomes ``response_format`` json_schema.
- ``tool_choice`` and ``parallel_tool_calls`` are sent only with a non-empty ``tools`` list, as
  OpenAI refuses them without one.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import InvalidRequest, clip
from .answer import ChatToMessagesStream, chat_to_message
from .checks import check_translatable, max_tokens, system_text, validate_messages_request
from .count import estimate_input_tokens
from .errors import anthropic_error_type, error_body, openai_error_to_anthropic

__all__ = [
    "ChatToMessagesStream",
    "anthropic_error_type",
    "chat_to_message",
    "check_translatable",
    "error_body",
    "estimate_input_tokens",
    "messages_to_chat",
    "openai_error_to_anthropic",
    "validate_messages_request",
]

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- request translation ---------------------------------------------------------------------


def messages_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages API request (checked by validate_messages_request) as a chat completions body.

    ``model`` is kept as sent (the dispatcher rewrites it); see the module docstring for the
    mapping of each field. Raises InvalidRequest for what chat completions cannot express.
    """
    check_translatable(body)
    chat_messages: list[dict[str, Any]] = []
    system = system_text(body.get("system"))
    if system:
        chat_messages.append({"role": "system", "content": system})
    for role, blocks in _turns(body["messages"]):
        if role == "user":
            chat_messages.extend(_user_turn(blocks))
        elif role == "system":  # keeps its place: chat has system messages anywhere
            chat_messages.append({"role": "system", "content": _system_turn(blocks)})
        elif (assistant := _assistant_turn(blocks)) is not None:
            chat_messages.append(assistant)
    chat: dict[str, Any] = {
        "model": body["model"],
        "messages": chat_messages,
        "max_tokens": max_tokens(body.get("max_tokens")),
    }
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _bad(
                "`stop_sequences` must be an array of strings.", "stop_sequences", "invalid_type"
            )
        if stop:
            chat["stop"] = stop
    for field in ("temperature", "top_p"):
        value = body.get(field)
        if value is not None:
            if not _is_number(value):
                raise _bad(f"`{field}` must be a number.", field, "invalid_type")
            chat[field] = value
    _tools_into(body, chat)
    user = _user_id(body.get("metadata"))
    if user is not None:
        chat["user"] = user
    response_format = _response_format(body.get("output_config"))
    if response_format is not None:
        chat["response_format"] = response_format
    if body.get("mcp_servers"):
        raise _bad("`mcp_servers` is not supported for this model.", "mcp_servers")
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


Block = tuple[str, dict[str, Any]]  # (where it came from, for errors; the block)


def _turns(messages: list[dict[str, Any]]) -> list[tuple[str, list[Block]]]:
    """The messages as turns: consecutive messages of one role merged, strings as text blocks."""
    turns: list[tuple[str, list[Block]]] = []
    for i, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):
            blocks: list[Block] = [(f"messages[{i}].content", {"type": "text", "text": content})]
        else:
            blocks = [(f"messages[{i}].content[{j}]", block) for j, block in enumerate(content)]
        if turns and turns[-1][0] == message["role"]:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message["role"], blocks))
    return turns


def _user_turn(blocks: list[Block]) -> list[dict[str, Any]]:
    """Tool messages for the turn's tool results, then one user message with everything else."""
    out: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []  # images from tool results
    parts: list[dict[str, Any]] = []
    for path, block in blocks:
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, path)})
        elif kind == "image":
            parts.append(_image_part(block, path))
        elif kind == "tool_result":
            message, images = _tool_message(block, path)
            out.append(message)
            moved.extend(images)
        else:
            raise _unsupported(kind, path, "a user message")
    parts = moved + parts
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _system_turn(blocks: list[Block]) -> str:
    """A system message inside ``messages``: its text blocks joined as the top-level system."""
    texts = []
    for path, block in blocks:
        if block["type"] != "text":
            raise _unsupported(block["type"], path, "a system message")
        texts.append(_text(block, path))
    return "\n\n".join(texts)


def _assistant_turn(blocks: list[Block]) -> dict[str, Any] | None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for path, block in blocks:
        kind = block["type"]
        if kind == "text":
            texts.append(_text(block, path))
        elif kind == "tool_use":
            calls.append(_tool_call(block, path))
        elif kind not in ("thinking", "redacted_thinking"):
            raise _unsupported(kind, path, "an assistant message")
    if not texts and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _unsupported(kind: str, path: str, where: str) -> InvalidRequest:
    return _bad(
        f"Content blocks of type `{clip(kind)}` are not supported in {where} for this model "
        "(it is served through the chat completions API).",
        f"{path}.type",
    )


def _text(block: dict[str, Any], path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(f"`{path}.text` must be a string.", f"{path}.text", "invalid_type")
    return text


def _string(block: dict[str, Any], field: str, path: str) -> str:
    value = block.get(field)
    if not isinstance(value, str) or not value:
        raise _bad(
            f"`{path}.{field}` must be a non-empty string.", f"{path}.{field}", "invalid_type"
        )
    return value


def _image_part(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"`{path}.source` must be an object.", f"{path}.source", "invalid_type")
    kind = source.get("type")
    if kind == "base64":
        media_type = _string(source, "media_type", f"{path}.source")
        data = _string(source, "data", f"{path}.source")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = _string(source, "url", f"{path}.source")
    else:
        raise _bad(
            f"`{path}.source.type` must be `base64` or `url` for this model.",
            f"{path}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_message(block: dict[str, Any], path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool_result as a chat tool message, and the image parts it held."""
    call_id = _string(block, "tool_use_id", path)
    content = block.get("content")
    images: list[dict[str, Any]] = []
    if content is None or isinstance(content, str):
        text = content or ""
    elif isinstance(content, list):
        texts: list[str] = []
        for k, inner in enumerate(content):
            inner_path = f"{path}.content[{k}]"
            kind = inner.get("type") if isinstance(inner, dict) else None
            if not isinstance(inner, dict) or not isinstance(kind, str):
                raise _bad(
                    f"`{inner_path}` must be an object with a string `type`.",
                    inner_path,
                    "invalid_type",
                )
            if kind == "text":
                texts.append(_text(inner, inner_path))
            elif kind == "image":
                images.append(_image_part(inner, inner_path))
            else:
                raise _unsupported(kind, inner_path, "a tool result")
        text = "\n".join(texts)
    else:
        raise _bad(
            f"`{path}.content` must be a string or an array of content blocks.",
            f"{path}.content",
            "invalid_type",
        )
    if block.get("is_error") is True:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _tool_call(block: dict[str, Any], path: str) -> dict[str, Any]:
    tool_input = block.get("input", {})
    if not isinstance(tool_input, dict):
        raise _bad(f"`{path}.input` must be an object.", f"{path}.input", "invalid_type")
    return {
        "id": _string(block, "id", path),
        "type": "function",
        "function": {
            "name": _string(block, "name", path),
            "arguments": orjson.dumps(tool_input).decode(),
        },
    }


def _tools_into(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """``tools`` and ``tool_choice`` as chat's tools, tool_choice and parallel_tool_calls."""
    tools = body.get("tools")
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise _bad("`tools` must be an array.", "tools", "invalid_type")
    functions = [_function(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    mapped = None if choice is None else _tool_choice(choice)
    if not functions:
        return
    chat["tools"] = functions
    if isinstance(choice, dict) and mapped is not None:
        chat["tool_choice"] = mapped
        if choice.get("disable_parallel_tool_use") is True and mapped != "none":
            chat["parallel_tool_calls"] = False


def _tool_choice(choice: object) -> str | dict[str, Any]:
    if not isinstance(choice, dict):
        raise _bad("`tool_choice` must be an object.", "tool_choice", "invalid_type")
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}
    if isinstance(kind, str) and kind in _TOOL_CHOICES:
        return _TOOL_CHOICES[kind]
    raise _bad("`tool_choice.type` must be one of auto, any, tool, none.", "tool_choice.type")


def _function(tool: object, path: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise _bad(f"`{path}` must be an object.", path, "invalid_type")
    kind = tool.get("type")
    if kind is not None and kind != "custom":
        raise _bad(
            f"Server tools (`{path}.type` `{clip(kind)}`) are not supported for this model; "
            "only custom tools with an `input_schema` are.",
            f"{path}.type",
        )
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise _bad(f"`{path}.input_schema` must be an object.", f"{path}.input_schema")
    function: dict[str, Any] = {"name": _string(tool, "name", path)}
    description = tool.get("description")
    if isinstance(description, str):
        function["description"] = description
    function["parameters"] = schema
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _user_id(metadata: object) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise _bad("`metadata` must be an object.", "metadata", "invalid_type")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise _bad("`metadata.user_id` must be a string.", "metadata.user_id", "invalid_type")
    return user or None


def _response_format(config: object) -> dict[str, Any] | None:
    """``output_config.format`` (JSON schema outputs) as chat's ``response_format``."""
    if not isinstance(config, dict) or config.get("format") is None:
        return None
    fmt = config["format"]
    if not (
        isinstance(fmt, dict)
        and fmt.get("type") == "json_schema"
        and isinstance(fmt.get("schema"), dict)
    ):
        raise _bad(
            '`output_config.format` must be {"type": "json_schema", "schema": {...}}.',
            "output_config.format",
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}
