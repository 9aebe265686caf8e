"""OpenAI's Responses API bridged onto chat completions, for providers that speak only chat.
Requests become chat bodies here; answers become Responses objects and events (imported below).

Rules:
- ``instructions`` is the first (system) message, the replayed history follows, then ``input``.
- A function_call item joins the assistant message just before it, so an answer's text and its
  tool calls, or several parallel calls, stay one assistant turn as chat expects.
- Tools: see tools.py (namespaces flattened, hosted tools left out and named).
- What cannot be honoured is refused with 400 naming the ``param`` (background, stored prompts,
  conversations, file inputs); settings a chat provider has no use for are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import InvalidRequest, clip
from .object import ResponseContext, chat_to_response
from .stream import ChatToResponsesStream
from .tools import ToolPlan, plan_tools, qualified

__all__ = [
    "ChatToResponsesStream",
    "ResponseContext",
    "ToolPlan",
    "chat_to_response",
    "plan_tools",
    "responses_to_chat",
    "stored_history",
]

_ROLES = ("user", "assistant", "system", "developer")
_TOOL_CHOICES = ("auto", "none", "required")
_IMAGE_DETAILS = ("auto", "low", "high")
# Fields whose presence changes what the client gets back; dropping them would be a lie.
_REFUSED = ("conversation", "prompt")
_KINDS: dict[str, Callable[[Any], bool]] = {
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "a boolean": lambda v: isinstance(v, bool),
    "a string": lambda v: isinstance(v, str),
}
# (Responses field, chat field, expected kind): settings that pass straight through.
_SETTINGS = (
    ("max_output_tokens", "max_tokens", "an integer"),
    ("temperature", "temperature", "a number"),
    ("top_p", "top_p", "a number"),
    ("parallel_tool_calls", "parallel_tool_calls", "a boolean"),
    ("user", "user", "a string"),
)


def responses_to_chat(
    body: dict[str, Any], history: list[dict[str, Any]], reject_hosted: bool = False
) -> dict[str, Any]:
    """The chat completions body for a Responses request; ``history`` is the replayed turns of
    ``previous_response_id`` (chat messages, see stored_history()). Hosted tools are left out
    (see tools.py), or refused with ``reject_hosted``. Raises InvalidRequest."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _missing("model") if not model else _type("model", "a string")
    if body.get("background") is True:
        raise _unsupported("background", "Background responses are not supported for this model.")
    for name in _REFUSED:
        if body.get(name) is not None:
            raise _unsupported(name, f"`{name}` is not supported for this model.")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _type("instructions", "a string")
        messages.append({"role": "system", "content": instructions})
    messages.extend(dict(m) for m in history)  # copies: a function_call may extend the last
    _input_messages(body.get("input"), messages)
    if not any(m.get("role") in ("user", "assistant", "tool") for m in messages):
        raise _missing("input")
    chat: dict[str, Any] = {"model": model, "messages": messages}
    tools = body.get("tools")
    if tools is not None:
        converted = plan_tools(tools, reject_hosted).functions
        if converted:
            chat["tools"] = converted
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    for name, to, kind in _SETTINGS:
        value = body.get(name)
        if value is not None:
            if not _KINDS[kind](value):
                raise _type(name, kind)
            chat[to] = value
    text = body.get("text")
    if text is not None:
        response_format = _response_format(text)
        if response_format is not None:
            chat["response_format"] = response_format
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type("stream", "a boolean")
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def stored_history(
    request_messages: list[dict[str, Any]], response: dict[str, Any]
) -> list[dict[str, Any]]:
    """The chat messages to replay when a later request names ``response`` as its
    previous_response_id: this request's messages without its instructions, then the answer."""
    messages = list(request_messages)
    instructions = response.get("instructions")
    if (
        messages
        and isinstance(instructions, str)
        and messages[0].get("role") == "system"
        and messages[0].get("content") == instructions
    ):
        messages = messages[1:]
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.extend(
                part["text"]
                for part in item.get("content") or ()
                if isinstance(part, dict) and part.get("type") == "output_text"
            )
        elif item.get("type") == "function_call":
            calls.append(_tool_call(item["call_id"], _call_name(item), item["arguments"]))
    if texts or calls:
        answer: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            answer["tool_calls"] = calls
        messages.append(answer)
    return messages


def _input_messages(value: Any, messages: list[dict[str, Any]]) -> None:
    """Append the chat messages of ``input`` (a string or a list of items)."""
    if value is None:
        return
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return
    if not isinstance(value, list):
        raise _type("input", "a string or an array of input items")
    for i, item in enumerate(value):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise _type(param, "an object")
        kind = item.get("type", "message")
        if kind == "message":
            _message(item, param, messages)
        elif kind == "function_call":
            _required_str(item, "name", param)
            if item.get("namespace") is not None:
                _required_str(item, "namespace", param)
            call = _tool_call(
                _required_str(item, "call_id", param),
                _call_name(item),
                _required_str(item, "arguments", param),
            )
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last["tool_calls"] = [*(last.get("tool_calls") or ()), call]
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _required_str(item, "call_id", param),
                    "content": _tool_output(item.get("output"), f"{param}.output"),
                }
            )
        elif kind == "reasoning":
            continue  # the model's own reasoning: nothing a chat provider can take back
        else:
            raise _unsupported(
                f"{param}.type", f"Input items of type `{clip(kind)}` are not supported."
            )


def _message(item: dict[str, Any], param: str, messages: list[dict[str, Any]]) -> None:
    role = item.get("role")
    if role not in _ROLES:
        got = f"`{clip(role)}`" if isinstance(role, str) else "no role"
        raise InvalidRequest(
            f"Invalid value for `{param}.role`: expected one of {', '.join(_ROLES)}, got {got}.",
            param=f"{param}.role",
            code="invalid_value",
        )
    content = item.get("content")
    if content is None:
        raise _missing(f"{param}.content")
    if isinstance(content, str):
        converted: str | list[dict[str, Any]] = content
    elif isinstance(content, list):
        converted = [_part(p, f"{param}.content[{j}]", role) for j, p in enumerate(content)]
        converted = [p for p in converted if p]
        if role != "user":
            # Chat takes only text from the other roles; one string reads the same everywhere.
            converted = "".join(p["text"] for p in converted)
    else:
        raise _type(f"{param}.content", "a string or an array of content parts")
    last = messages[-1] if messages else None
    if role == "assistant" and last is not None and _is_tool_calls_only(last):
        last["content"] = converted  # text after tool calls of one turn: keep the turn whole
        return
    messages.append({"role": role, "content": converted})


def _part(part: Any, param: str, role: str) -> dict[str, Any]:
    """One content part in chat's shape; {} for parts chat has no place for (refusals)."""
    if not isinstance(part, dict):
        raise _type(param, "an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _required_str(part, "text", param)}
    if kind == "refusal":
        return {}
    if kind == "input_image" and role == "user":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise _unsupported(
                f"{param}.image_url", "Images are supported by `image_url` only (no `file_id`)."
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in _IMAGE_DETAILS:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _unsupported(
        f"{param}.type", f"Content parts of type `{clip(kind)}` are not supported here."
    )


def _tool_output(output: Any, param: str) -> str | list[dict[str, Any]]:
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise _missing(param) if output is None else _type(param, "a string or an array")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(output):
        converted = _part(part, f"{param}[{j}]", "tool")
        if converted:
            parts.append(converted)
    return parts


def _tool_choice(choice: Any) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise InvalidRequest(
                f"Invalid value for `tool_choice`: expected one of {', '.join(_TOOL_CHOICES)}.",
                param="tool_choice",
                code="invalid_value",
            )
        return choice
    if not isinstance(choice, dict):
        raise _type("tool_choice", "a string or an object")
    if choice.get("type") != "function":
        raise _unsupported("tool_choice", "Only `function` tool choices are supported.")
    return {"type": "function", "function": {"name": _required_str(choice, "name", "tool_choice")}}


def _response_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict):
        raise _type("text", "an object")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _type("text.format", "an object")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise (
                _missing("text.format.schema")
                if schema is None
                else _type("text.format.schema", "an object")
            )
        spec: dict[str, Any] = {"name": _required_str(fmt, "name", "text.format"), "schema": schema}
        for key in ("description", "strict"):
            if fmt.get(key) is not None:
                spec[key] = fmt[key]
        return {"type": "json_schema", "json_schema": spec}
    raise InvalidRequest(
        "Invalid value for `text.format.type`: expected one of text, json_object, json_schema.",
        param="text.format.type",
        code="invalid_value",
    )


def _is_tool_calls_only(message: dict[str, Any]) -> bool:
    return (
        message.get("role") == "assistant"
        and bool(message.get("tool_calls"))
        and message.get("content") is None
    )


def _call_name(item: dict[str, Any]) -> str:
    """A function_call item's chat function name: qualified when it names its namespace."""
    name, namespace = str(item["name"]), item.get("namespace")
    return qualified(namespace, name) if isinstance(namespace, str) and namespace else name


def _tool_call(call: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call, "type": "function", "function": {"name": name, "arguments": arguments}}


def _required_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if isinstance(value, str):
        return value
    raise _missing(f"{where}.{key}") if value is None else _type(f"{where}.{key}", "a string")


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: `{param}`.", param=param, code="missing_required_parameter"
    )


def _type(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for `{param}`: expected {expected}.", param=param, code="invalid_type"
    )


def _unsupported(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")
