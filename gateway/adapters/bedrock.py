"""AWS Bedrock (`bedrock`): chat through the Converse API (converse / converse-stream), the
Anthropic front door to Claude models through InvokeModel (invoke / invoke-with-response-stream),
embeddings through InvokeModel (embeddings.py); every request SigV4-signed (aws.py)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import orjson
from yarl import URL

from ..config import ProviderConfig
from ..errors import InvalidRequest, clip
from ..translate import anthropic as claude
from ..translate import bedrock as tr
from ..translate.messages import error_body
from .aws import AwsSigner, EventStreamDecoder
from .base import Call, not_supported
from .bedrock_embeddings import MadeReply, embed
from .http import HttpClient, HttpReply
from .translated import TranslatedReply, unchanged

# The `anthropic_version` Bedrock wants in the body of a Claude InvokeModel request.
ANTHROPIC_VERSION = "bedrock-2023-05-31"
EVENT_STREAM = "application/vnd.amazon.eventstream"


def model_segment(model_id: str) -> str:
    """A model id (or an inference profile's ARN) as one percent-encoded URL path segment."""
    if not model_id or model_id in (".", "..") or not model_id.isprintable():
        raise InvalidRequest(
            f"The model name `{clip(model_id)}` cannot be sent to Bedrock.",
            param="model",
            code="invalid_value",
        )
    return quote(model_id, safe="")


def invoke_body(body: dict[str, Any], beta: str | None) -> dict[str, Any]:
    """A Messages API body as InvokeModel takes it for Claude: no model (it is in the URL), no
    stream flag (the path says it), the version in the body, beta flags as `anthropic_beta`."""
    out = {k: v for k, v in body.items() if k not in ("model", "stream")}
    out["anthropic_version"] = ANTHROPIC_VERSION
    if beta:
        out["anthropic_beta"] = [flag.strip() for flag in beta.split(",") if flag.strip()]
    return out


def _anthropic_error(status: int, raw: bytes) -> bytes:
    return error_body(status, tr.error_message(status, raw))


class BedrockUpstream:
    """POST {base_url}/model/{modelId}/{converse|converse-stream|invoke|
    invoke-with-response-stream}, signed for service `bedrock` in the provider's region."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self.http = HttpClient(provider)
        self.signer = AwsSigner(provider)

    async def post(self, call: Call, model_id: str, action: str, body: dict[str, Any]) -> HttpReply:
        """One signed POST of `body` to the model's `action`."""
        url = f"{self.provider.base_url}/model/{model_segment(model_id)}/{action}"
        data = orjson.dumps(body)
        headers = {
            "Content-Type": "application/json",
            "Accept": EVENT_STREAM if call.stream else "application/json",
            "Accept-Encoding": "identity",  # answers are read as they come, never decompressed
            **self.provider.headers,
            "X-Request-Id": call.request_id,
            **call.trace,
        }
        signed = await self.signer.sign("POST", url, headers, data)
        return await self.http.request("POST", URL(url, encoded=True), signed, data=data)

    async def send(self, call: Call) -> TranslatedReply | MadeReply:
        if call.payload is None:
            raise not_supported(self.provider.type, call.endpoint)
        if call.endpoint == "chat":
            return await self._converse(call)
        if call.endpoint == "messages":
            return await self._invoke(call)
        if call.endpoint == "embeddings":
            return await embed(self, call)
        raise not_supported(self.provider.type, call.endpoint)

    async def _converse(self, call: Call) -> TranslatedReply:
        assert call.payload is not None
        body = tr.chat_to_converse(call.payload, call.upstream_model, call.default_max_tokens)
        action = "converse-stream" if call.stream else "converse"
        reply = await self.post(call, call.upstream_model, action, body)
        created, public = int(time.time()), call.public_model
        chunk_id = f"chatcmpl-{call.request_id}"
        schema = claude.output_schema(call.payload.get("response_format"))
        output = claude.OUTPUT_TOOL if schema is not None else None
        return TranslatedReply(
            reply,
            body=lambda raw: tr.converse_to_chat(raw, public, chunk_id, created, output),
            error=tr.error_to_openai,
            stream=EventStreamDecoder(
                tr.ConverseStream(public, chunk_id, created, output), tr.error_to_openai
            )
            if call.stream
            else None,
        )

    async def _invoke(self, call: Call) -> TranslatedReply:
        """The Anthropic front door to a Claude model: Anthropic's body, Anthropic's answer."""
        assert call.payload is not None
        body = invoke_body(call.payload, call.headers.get("anthropic-beta"))
        action = "invoke-with-response-stream" if call.stream else "invoke"
        reply = await self.post(call, call.upstream_model, action, body)
        return TranslatedReply(
            reply,
            body=unchanged,
            error=_anthropic_error,
            stream=EventStreamDecoder(tr.InvokeStream(), _anthropic_error) if call.stream else None,
        )

    async def close(self) -> None:
        await self.http.close()
