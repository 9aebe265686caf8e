"""POST /v1/chat/completions: validate, route, admit, forward, relay, then account off the path.
A failure before the first relayed byte is a JSON error; after it, one in-stream error event."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..accounting.tokens import estimate_chat_prompt
from ..adapters.capabilities import relayed
from ..errors import ServiceUnavailable, session_not_found
from ..store import StoreUnavailable
from ..store.history import storable, with_history
from ..validation import ChatRequest, check_roles, upstream_payload, validate_chat
from .proxy import exchange
from .services import Services


async def _messages_with_history(s: Services, chat: ChatRequest, uid: str) -> list[dict[str, Any]]:
    """The request's messages, with the session's history window when session_id is given."""
    if chat.session_id is None:
        return chat.messages
    try:
        loaded = await s.reads.load_history(
            uid, chat.session_id, s.config.sessions.history_max_messages
        )
    except StoreUnavailable:
        raise ServiceUnavailable("Sessions are unavailable: the database is down.") from None
    if loaded is None:
        raise session_not_found(chat.session_id)
    _, history = loaded
    limits = s.config.sessions
    return with_history(
        history, chat.messages, limits.history_max_tokens, limits.history_max_messages
    )


async def chat_completions(request: web.Request) -> web.StreamResponse:
    async with exchange(request, "chat") as ex:
        chat = validate_chat(await ex.read_json())
        ex.outcome.session_id = chat.session_id
        targets = ex.plan(chat.model, chat.stream)
        if not all(relayed(t.provider.type, "chat") for t in targets):
            check_roles(chat.messages)  # a translation must understand every message
        entry = await ex.cached(chat.payload, chat.stream)
        if entry is not None:
            return await ex.answer_cached(entry, chat.stream, chat.client_wants_usage)
        messages = await _messages_with_history(ex.s, chat, ex.principal.user)
        prompt_estimate = estimate_chat_prompt(chat.payload, messages)
        await ex.admit(prompt_estimate, chat.max_output, chat.choices)
        ex.outcome.new_messages = storable(chat.messages)
        payload = upstream_payload(chat, messages)
        answer = await ex.forward(
            targets, lambda target: ex.call(target, payload, stream=chat.stream)
        )
        return await ex.answer_openai(
            answer, prompt_estimate, chat.client_wants_usage, need_text=chat.session_id is not None
        )
