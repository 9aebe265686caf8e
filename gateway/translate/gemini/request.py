"""OpenAI chat-completions and embeddings bodies as Google Gemini request bodies.
Pure: dicts in, dicts out; what Gemini cannot take is refused with InvalidRequest naming the param.

Rules:
- system/developer -> ``systemInstruction``; user/assistant/tool -> ``contents`` with roles
  user/model, adjacent turns of one role merged, empty turns left out (Gemini refuses them).
- A tool result's ``functionResponse`` is named after the matching tool call, found by
  ``tool_call_id`` in the earlier assistant messages; its ``response`` is the result when that is a
  JSON object, else ``{"content": text}``.
- A tool call's ``extra_content.google.thought_signature`` goes back on its ``functionCall`` part
  as ``thoughtSignature``, as Gemini requires for multi-turn tool use with thinking models.
- Tool parameters and ``json_schema`` formats are JSON Schema, so they go to Gemini's JSON Schema
  fields (``parametersJsonSchema``, ``responseJsonSchema``), not its OpenAPI-subset ones.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import InvalidRequest, clip

_TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# The file types Gemini reads that a URL's extension can name; unknown ones go without mimeType.
_MIME_BY_EXTENSION = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
}


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def chat_to_gemini(payload: dict[str, Any], default_max_tokens: int | None) -> dict[str, Any]:
    """The generateContent body for a validated chat-completions body."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, from assistant turns so far
    for i, message in enumerate(payload.get("messages") or []):
        role = message.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system += [{"text": t} for t in _texts(message.get("content"), f"{where}.content") if t]
        elif role == "user":
            _add_turn(turns, "user", _user_parts(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            _add_turn(turns, "model", _assistant_parts(message, where, call_names))
        elif role == "tool":
            _add_turn(turns, "user", [_tool_result(message, where, call_names)])
        elif role == "function":  # OpenAI's deprecated form: the function's name is on the message
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise _bad(f"`{where}.name` is required.", f"{where}.name", "invalid_type")
            response = _function_response(name, message.get("content"), where)
            _add_turn(turns, "user", [response])
        else:
            raise _bad(
                f"Messages with role `{clip(role)}` are not supported by this model.",
                f"{where}.role",
                "unsupported_parameter",
            )
    body: dict[str, Any] = {"contents": turns}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = _tools(payload.get("tools"))
    if tools:
        body["tools"] = tools
    tool_config = _tool_config(payload.get("tool_choice"))
    if tool_config:
        body["toolConfig"] = tool_config
    config = _generation_config(payload, default_max_tokens)
    if config:
        body["generationConfig"] = config
    return body


def _add_turn(turns: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Append a turn, merged into the previous one when it has the same role; empty ones vanish."""
    if not parts:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["parts"].extend(parts)
    else:
        turns.append({"role": role, "parts": parts})


def _texts(content: Any, param: str) -> list[str]:
    """The text of a system, assistant or tool message: a string or a list of text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _bad(f"`{param}` must be a string or an array of parts.", param, "invalid_type")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal") and isinstance(part.get(kind), str):
            texts.append(part[kind])
        else:
            raise _bad(f"`{param}[{j}]` must be a text part here.", f"{param}[{j}]")
    return texts


def _user_parts(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise _bad(f"`{param}` must be a string or an array of parts.", param, "invalid_type")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(_media_part(url, f"{where}.image_url.url"))
        elif kind == "input_audio" and isinstance(part.get("input_audio"), dict):
            audio = part["input_audio"]
            fmt, data = audio.get("format"), audio.get("data")
            if not isinstance(fmt, str) or not isinstance(data, str):
                raise _bad(f"`{where}.input_audio` needs `data` and `format`.", where)
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": data}})
        elif kind == "file" and isinstance(part.get("file"), dict):
            data_url = part["file"].get("file_data")
            if not isinstance(data_url, str):
                raise _bad(
                    "Gemini models read files sent inline as `file_data` only.",
                    f"{where}.file.file_data",
                    "unsupported_parameter",
                )
            parts.append(_media_part(data_url, f"{where}.file.file_data"))
        else:
            raise _bad(f"`{where}` is not a content part Gemini models accept.", where)
    return parts


def _media_part(url: Any, param: str) -> dict[str, Any]:
    """A ``data:`` URL as inlineData; an http(s) URL as fileData (mimeType from its extension)."""
    if not isinstance(url, str):
        raise _bad(f"`{param}` must be a string.", param, "invalid_type")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not mime:
            raise _bad(f"`{param}` must be a base64 data URL (data:<type>;base64,...).", param)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("https://", "http://")):
        path = url.split("?", 1)[0].split("#", 1)[0]
        extension = path.rsplit("/", 1)[-1].rpartition(".")[2].lower()
        file_data = {"fileUri": url}
        if extension in _MIME_BY_EXTENSION:
            file_data = {"mimeType": _MIME_BY_EXTENSION[extension], "fileUri": url}
        return {"fileData": file_data}
    raise _bad(f"`{param}` must be an http(s) URL or a data URL, got {clip(url)!r}.", param)


def _assistant_parts(
    message: dict[str, Any], where: str, call_names: dict[str, str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"text": t} for t in _texts(message.get("content"), f"{where}.content") if t
    ]
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise _bad(f"`{where}.tool_calls` must be an array.", f"{where}.tool_calls", "invalid_type")
    for k, call in enumerate(calls or []):
        param = f"{where}.tool_calls[{k}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _bad(f"`{param}.function.name` is required.", f"{param}.function.name")
        part: dict[str, Any] = {
            "functionCall": {
                "name": function["name"],
                "args": _arguments(function.get("arguments"), f"{param}.function.arguments"),
            }
        }
        signature = _signature(call)
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
        if isinstance(call.get("id"), str):
            call_names[call["id"]] = function["name"]
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        args = _arguments(legacy.get("arguments"), f"{where}.function_call.arguments")
        parts.append({"functionCall": {"name": legacy["name"], "args": args}})
    return parts


def _arguments(raw: Any, param: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Gemini's ``args`` must be."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        args = orjson.loads(raw) if isinstance(raw, str | bytes) else None
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise _bad(f"`{param}` must be a JSON object in a string.", param)
    return args


def _signature(call: dict[str, Any]) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _tool_result(message: dict[str, Any], where: str, call_names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in call_names:
        raise _bad(
            f"`{where}.tool_call_id` must name a tool call of an earlier assistant message.",
            f"{where}.tool_call_id",
        )
    return _function_response(call_names[call_id], message.get("content"), where)


def _function_response(name: str, content: Any, where: str) -> dict[str, Any]:
    """Gemini wants an object: a JSON object result as is, any other text as {"content": text}."""
    text = "".join(_texts(content, f"{where}.content"))
    try:
        parsed = orjson.loads(text) if text.lstrip().startswith("{") else None
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("`tools` must be an array.", "tools", "invalid_type")
    declarations = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise _bad(f"`tools[{i}]`: Gemini models take function tools only.", f"tools[{i}]")
        if not isinstance(function.get("name"), str):
            raise _bad(f"`tools[{i}].function.name` is required.", f"tools[{i}].function.name")
        declaration: dict[str, Any] = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            declaration["description"] = function["description"]
        if isinstance(function.get("parameters"), dict):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_config(choice: Any) -> dict[str, Any]:
    if choice is None:
        return {}
    if isinstance(choice, str) and choice in _TOOL_CHOICE_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_CHOICE_MODES[choice]}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
        }
    raise _bad("`tool_choice` must be auto, none, required or a named function.", "tool_choice")


def _generation_config(payload: dict[str, Any], default_max_tokens: int | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
    ):
        if payload.get(ours) is not None:
            config[theirs] = payload[ours]
    max_tokens = payload.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = payload.get("max_tokens")
    if max_tokens is None:
        max_tokens = default_max_tokens
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = payload.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    fmt = payload.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is not None and kind not in ("text", "json_object", "json_schema"):
        raise _bad(
            "`response_format.type` must be text, json_object or json_schema.",
            "response_format.type",
        )
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            config["responseJsonSchema"] = schema
    return config


def embeddings_to_gemini(payload: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """The batchEmbedContents body for an OpenAI embeddings body (text inputs only)."""
    texts = payload.get("input")
    if texts is None:
        raise _bad("`input` is required.", "input", "missing_required_parameter")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts:
        raise _bad("`input` must be a string or a non-empty array of strings.", "input")
    if all(isinstance(t, int | list) for t in texts):
        raise _bad(
            "Gemini embedding models take text only, not token ids.",
            "input",
            "unsupported_parameter",
        )
    if not all(isinstance(t, str) for t in texts):
        raise _bad("`input` must be a string or an array of strings.", "input", "invalid_type")
    dimensions = payload.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise _bad("`dimensions` must be a positive integer.", "dimensions", "invalid_type")
    model = upstream_model if upstream_model.startswith("models/") else f"models/{upstream_model}"
    requests = []
    for text in texts:
        request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}
