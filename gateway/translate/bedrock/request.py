"""OpenAI chat-completions request -> Bedrock Converse request (SPEC sections 7 and 18).
Pure: the chat body goes through the anthropic translation (one set of rules and 400s for every
Messages-shaped provider), whose blocks then become Converse's content blocks."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidRequest, clip
from ..anthropic import chat_to_anthropic

Json = dict[str, Any]

# Converse's image formats (ImageBlock.format), by the media type of a data: URL.
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
# Model-specific fields Converse takes in additionalModelRequestFields (Claude's thinking, top_k).
_ADDITIONAL = ("thinking", "top_k")


def chat_to_converse(payload: Json, upstream_model: str, default_max_tokens: int | None) -> Json:
    """The Converse body for a validated chat-completions body (the model is in the URL)."""
    return anthropic_to_converse(chat_to_anthropic(payload, upstream_model, default_max_tokens))


def anthropic_to_converse(body: Json) -> Json:
    """A Messages API body as Converse's: messages, system, inferenceConfig, toolConfig and
    additionalModelRequestFields. `cache_control` marks become cachePoint blocks after what they
    mark; `metadata` and `disable_parallel_tool_use` have no Converse field and are left out."""
    out: Json = {
        "messages": [
            {"role": turn["role"], "content": _blocks(turn["content"], f"messages[{i}]")}
            for i, turn in enumerate(body["messages"])
        ]
    }
    system = body.get("system")
    if isinstance(system, str):
        out["system"] = [{"text": system}]
    elif isinstance(system, list):
        out["system"] = _blocks(system, "messages")
    config: Json = {"maxTokens": body["max_tokens"]}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if body.get("stop_sequences"):
        config["stopSequences"] = body["stop_sequences"]
    out["inferenceConfig"] = config
    if body.get("tools"):
        out["toolConfig"] = _tool_config(body["tools"], body.get("tool_choice"))
    extra = {name: body[name] for name in _ADDITIONAL if body.get(name) is not None}
    if extra:
        out["additionalModelRequestFields"] = extra
    return out


def _cache_point(cache_control: object) -> Json:
    """Converse's cachePoint for Anthropic's cache_control (its `ttl`, 5m or 1h, kept)."""
    point: Json = {"type": "default"}
    if isinstance(cache_control, dict) and isinstance(cache_control.get("ttl"), str):
        point["ttl"] = cache_control["ttl"]
    return {"cachePoint": point}


def _blocks(blocks: list[Json], where: str) -> list[Json]:
    out: list[Json] = []
    for block in blocks:
        out.append(_block(block, where))
        if block.get("cache_control") is not None:
            out.append(_cache_point(block["cache_control"]))
    return out


def _block(block: Json, where: str) -> Json:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]}
    if kind == "image":
        return {"image": _image(block["source"], where)}
    if kind == "tool_use":
        return {
            "toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}
        }
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            parts = [{"text": content}]
        elif isinstance(content, list):
            parts = [_block(part, where) for part in content]
        else:
            parts = []
        return {"toolResult": {"toolUseId": block["tool_use_id"], "content": parts}}
    raise InvalidRequest(  # the anthropic translation makes no other block
        f"Content of type `{clip(kind)}` cannot be sent to Bedrock.",
        param=where,
        code="unsupported_parameter",
    )


def _image(source: Json, where: str) -> Json:
    if source.get("type") != "base64":
        raise InvalidRequest(
            "Bedrock takes images as data: URLs (base64), not links to fetch.",
            param=f"{where}.content",
            code="unsupported_parameter",
        )
    image_format = IMAGE_FORMATS.get(source.get("media_type", ""))
    if image_format is None:
        raise InvalidRequest(
            "Bedrock takes PNG, JPEG, GIF and WebP images,"
            f" not `{clip(source.get('media_type'))}`.",
            param=f"{where}.content",
            code="invalid_value",
        )
    # Converse's JSON protocol carries blobs as base64 text: the data: URL's data as it is.
    return {"format": image_format, "source": {"bytes": source["data"]}}


def _tool_config(tools: list[Json], choice: Json | None) -> Json:
    specs: list[Json] = []
    for tool in tools:
        spec: Json = {"name": tool["name"], "inputSchema": {"json": tool["input_schema"]}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        specs.append({"toolSpec": spec})
        if tool.get("cache_control") is not None:
            specs.append(_cache_point(tool["cache_control"]))
    config: Json = {"tools": specs}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        config["toolChoice"] = {"auto": {}}
    elif kind == "any":
        config["toolChoice"] = {"any": {}}
    elif kind == "tool" and isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": choice["name"]}}
    # `none`: Converse has no such choice; the tools stay declared (earlier turns may use them)
    # and the model decides, as with auto.
    return config
