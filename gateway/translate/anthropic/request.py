"""OpenAI chat-completions request -> Anthropic Messages API request (SPEC section 7).
Pure: a validated chat body in, the /v1/messages body out; what Anthropic cannot do is a 400."""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import InvalidRequest, clip

Json = dict[str, Any]

DEFAULT_MAX_TOKENS = 4096

# Anthropic-native fields a client may send through the OpenAI SDK's extra_body; they pass through
# unchanged. Every other field Anthropic does not share with OpenAI is dropped.
_NATIVE_FIELDS = ("thinking", "top_k")
# Structured output (`response_format`) goes to Anthropic as this tool, forced: the model's input
# to it is the JSON answer, which the answer translators turn back into the message's content.
OUTPUT_TOOL = "json_answer"


def chat_to_anthropic(payload: Json, upstream_model: str, default_max_tokens: int | None) -> Json:
    """The Messages API body for a validated chat-completions body.

    Raises InvalidRequest (400, naming the ``param``) for what Anthropic cannot do: ``n`` > 1,
    ``logprobs``, content it has no block for, and tool-call arguments that are not JSON objects.
    """
    _refuse_unsupported(payload)
    system, turns = _convert_messages(payload["messages"])
    body: Json = {"model": upstream_model, "messages": turns}
    if system is not None:
        body["system"] = system
    body["max_tokens"] = _max_tokens(payload, default_max_tokens)
    for field in ("temperature", "top_p"):
        if payload.get(field) is not None:
            body[field] = payload[field]
    stop = _stop_sequences(payload.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    if payload.get("tools"):
        body["tools"] = _tools(payload["tools"])
        choice = _tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
        if choice is not None:
            body["tool_choice"] = choice
    user = payload.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    if payload.get("stream") is True:
        body["stream"] = True
    for field in _NATIVE_FIELDS:
        if payload.get(field) is not None:
            body[field] = payload[field]
    schema = output_schema(payload.get("response_format"))
    if schema is not None:
        _force_output_tool(body, schema)
    return body


def output_schema(response_format: object) -> Json | None:
    """The JSON Schema the answer must follow (``{"type": "object"}`` for json_object), or None
    for free text; 400 for a format Anthropic's forced tool cannot honour."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        assert isinstance(response_format, dict)
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise _unsupported(
                "This model answers structured output as a JSON object only: "
                "`response_format.json_schema.schema` must be an object schema.",
                "response_format.json_schema.schema",
            )
        return schema
    raise _invalid(
        "`response_format.type` must be text, json_object or json_schema.", "response_format.type"
    )


def _force_output_tool(body: Json, schema: Json) -> None:
    """Add OUTPUT_TOOL and make the model call it: alone, or (with the client's tools) any tool,
    so a tool call still comes first when the model needs one."""
    tools: list[Json] = body.setdefault("tools", [])
    if any(tool.get("name") == OUTPUT_TOOL for tool in tools):
        raise _unsupported(
            f"The tool name `{OUTPUT_TOOL}` is reserved with `response_format` for this model.",
            "tools",
        )
    tools.append(
        {
            "name": OUTPUT_TOOL,
            "description": "Give your final answer: call this tool with it as the input.",
            "input_schema": schema,
        }
    )
    choice = body.get("tool_choice") or {"type": "auto"}
    if choice["type"] == "tool":
        return  # the client named the tool to call first
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") != "disabled":
        # Anthropic refuses a forced tool with thinking on: the model is asked in words instead.
        ask = f"Give your final answer by calling the `{OUTPUT_TOOL}` tool."
        system = body.get("system")
        if isinstance(system, list):
            body["system"] = [*system, {"type": "text", "text": ask}]
        else:
            body["system"] = f"{system}\n\n{ask}" if system else ask
        body["tool_choice"] = {**choice, "type": "auto"} if choice["type"] == "any" else choice
        return
    if choice["type"] == "none" or len(tools) == 1:
        forced: Json = {"type": "tool", "name": OUTPUT_TOOL}
    else:
        forced = {"type": "any"}
    if choice.get("disable_parallel_tool_use"):
        forced["disable_parallel_tool_use"] = True
    body["tool_choice"] = forced


def _unsupported(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _refuse_unsupported(payload: Json) -> None:
    n = payload.get("n")
    if n is not None and n != 1:
        raise _unsupported("This model returns one choice per request: `n` must be 1.", "n")
    if payload.get("logprobs") is True:
        raise _unsupported("This model does not return log probabilities.", "logprobs")
    if payload.get("top_logprobs") not in (None, 0):
        raise _unsupported("This model does not return log probabilities.", "top_logprobs")


def _max_tokens(payload: Json, default: int | None) -> int:
    # Both fields were validated as positive integers (64.0 included); Anthropic wants an int.
    for field in ("max_completion_tokens", "max_tokens"):
        value = payload.get(field)
        if value is not None:
            return int(value)
    return default if default is not None else DEFAULT_MAX_TOKENS


def _stop_sequences(stop: object) -> list[str]:
    if stop is None:
        return []
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise _invalid("`stop` must be a string or an array of strings.", "stop", "invalid_type")
    return [s for s in sequences if s]


def _convert_messages(messages: list[Json]) -> tuple[str | list[Json] | None, list[Json]]:
    """(system, turns): system and developer text in order, then alternating user/assistant
    turns. Anthropic requires alternation, so adjacent turns of one role are merged."""
    system: list[Json] = []
    turns: list[Json] = []
    for i, message in enumerate(messages):
        role = message["role"]
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system += _system_blocks(message.get("content"), f"{where}.content")
        elif role == "user":
            _add_turn(turns, "user", _content_blocks(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            _add_turn(turns, "assistant", _assistant_blocks(message, where))
        elif role == "tool":
            _add_turn(turns, "user", [_tool_result(message, where)])
        else:
            raise _unsupported(
                f"Messages with role `{clip(role)}` are not supported by this model; "
                "use system, developer, user, assistant and tool messages.",
                f"{where}.role",
            )
    if not system:
        return None, turns
    if any("cache_control" in block for block in system):
        return system, turns
    return "\n\n".join(block["text"] for block in system), turns


def _add_turn(turns: list[Json], role: str, blocks: list[Json]) -> None:
    # A message with nothing to say (empty text) is left out: Anthropic rejects empty content.
    if not blocks:
        return
    if not turns or turns[-1]["role"] != role:
        turns.append({"role": role, "content": blocks})
        return
    content: list[Json] = turns[-1]["content"]
    content += blocks
    if role == "user":
        # Tool results must open the user turn that follows the tool calls (stable sort).
        content.sort(key=lambda block: block["type"] != "tool_result")


def _system_blocks(content: object, param: str) -> list[Json]:
    blocks = _content_blocks(content, param)
    for j, block in enumerate(blocks):
        if block["type"] != "text":
            raise _unsupported("System messages may only contain text.", f"{param}[{j}]")
    return blocks


def _content_blocks(content: object, param: str) -> list[Json]:
    """Text and image blocks for a message's content: a string, a list of parts, or null."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _invalid(
            f"`{param}` must be a string or an array of content parts.", param, "invalid_type"
        )
    blocks = [_part_block(part, f"{param}[{j}]") for j, part in enumerate(content)]
    return [block for block in blocks if block is not None]


def _part_block(part: object, param: str) -> Json | None:
    if not isinstance(part, dict):
        raise _invalid(f"`{param}` must be an object.", param, "invalid_type")
    kind = part.get("type")
    block: Json
    if kind in ("text", "refusal"):  # an assistant's earlier refusal is what it said
        text = part.get(kind)
        if not isinstance(text, str):
            raise _invalid(f"`{param}.{kind}` must be a string.", f"{param}.{kind}", "invalid_type")
        if not text:
            return None
        block = {"type": "text", "text": text}
    elif kind == "image_url":
        block = _image_block(part.get("image_url"), f"{param}.image_url")
    else:
        raise _unsupported(
            f"Content parts of type `{clip(kind)}` are not supported by this model.",
            f"{param}.type",
        )
    if part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(image_url: object, param: str) -> Json:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise _invalid(f"`{param}.url` must be a non-empty string.", f"{param}.url")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url[5:].partition(",")
    media_type, *options = header.split(";")
    if not comma or "base64" not in options or not media_type:
        raise _invalid(
            "Images in `data:` URLs must be base64-encoded with a media type, "
            "as in `data:image/png;base64,...`.",
            f"{param}.url",
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_blocks(message: Json, where: str) -> list[Json]:
    # `reasoning_content` a client sends back is dropped: Anthropic accepts earlier thinking only
    # as `thinking` blocks carrying the signature it issued, which the OpenAI format has no room
    # for, and replaying it as plain text would put words in the assistant's mouth.
    blocks = _content_blocks(message.get("content"), f"{where}.content")
    calls = message.get("tool_calls")
    if calls is None:
        return blocks
    if not isinstance(calls, list):
        raise _invalid(f"`{where}.tool_calls` must be an array.", f"{where}.tool_calls")
    return blocks + [_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls)]


def _tool_use(call: object, param: str) -> Json:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict):
        raise _invalid(f"`{param}.function` must be an object.", f"{param}.function")
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise _invalid(f"`{param}.id` must be a non-empty string.", f"{param}.id")
    if not isinstance(function.get("name"), str) or not function["name"]:
        raise _invalid(
            f"`{param}.function.name` must be a non-empty string.", f"{param}.function.name"
        )
    return {
        "type": "tool_use",
        "id": call["id"],
        "name": function["name"],
        "input": _tool_input(function.get("arguments"), f"{param}.function.arguments"),
    }


def _tool_input(arguments: object, param: str) -> Json:
    """A tool call's arguments (a JSON string) as the object Anthropic wants for `input`."""
    if isinstance(arguments, dict):  # some clients send the object itself
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    parsed: object = None
    if isinstance(arguments, str):
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            parsed = None
    if not isinstance(parsed, dict):
        raise _invalid(f"`{param}` must be a JSON object encoded as a string.", param)
    return parsed


def _tool_result(message: Json, where: str) -> Json:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(
            f"`{where}.tool_call_id` is required for messages with role `tool`.",
            f"{where}.tool_call_id",
            "missing_required_parameter",
        )
    block: Json = {"type": "tool_result", "tool_use_id": call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif blocks := _content_blocks(content, f"{where}.content"):
        block["content"] = blocks
    return block


def _tools(tools: object) -> list[Json]:
    if not isinstance(tools, list):
        raise _invalid("`tools` must be an array.", "tools", "invalid_type")
    return [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]


def _tool(tool: object, param: str) -> Json:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise _unsupported(
            f"Only tools of type `function` are supported by this model, got `{clip(kind)}`.",
            f"{param}.type",
        )
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _invalid(f"`{param}.function.name` must be a string.", f"{param}.function.name")
    out: Json = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    parameters = function.get("parameters")
    out["input_schema"] = (
        parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
    )
    if tool.get("cache_control") is not None:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: object, parallel_tool_calls: object) -> Json | None:
    mapped: Json | None
    if choice is None:
        mapped = None
    elif choice == "auto":
        mapped = {"type": "auto"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif choice == "none":
        mapped = {"type": "none"}
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
        and isinstance(choice["function"].get("name"), str)
    ):
        mapped = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise _invalid(
            '`tool_choice` must be "auto", "required", "none" or '
            '{"type": "function", "function": {"name": ...}}.',
            "tool_choice",
        )
    if parallel_tool_calls is False:
        mapped = mapped or {"type": "auto"}
        if mapped["type"] != "none":  # with no tool use there is nothing to parallelise
            mapped["disable_parallel_tool_use"] = True
    return mapped
