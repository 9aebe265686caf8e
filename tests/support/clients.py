"""How tests talk to a gateway under test (in-process or a `gateway serve` process): the OpenAI
SDK, and plain aiohttp where the SDK would hide the exact status, headers or bytes."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

import aiohttp
import openai
from multidict import CIMultiDict

from tests.support.gateway import USER_KEY


class Reachable(Protocol):
    """A running gateway: its root URL, `http://127.0.0.1:<port>`."""

    url: str


def sdk(gateway: Reachable, key: str = USER_KEY) -> openai.AsyncOpenAI:
    """An SDK client of the gateway as `key`: no retries, a 10 s timeout (`async with` it)."""
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10)


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of `key`."""
    return {"Authorization": f"Bearer {key}"}


def post_chat(
    http: aiohttp.ClientSession,
    gateway: Reachable,
    body: dict,
    key: str = USER_KEY,
    headers: dict | None = None,
) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
    """POST `body` as JSON to /v1/chat/completions as `key`; `async with` it for the response,
    which may still be streaming."""
    return http.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers={**bearer(key), **(headers or {})}
    )


async def raw_chat(
    gateway: Reachable, body: dict, headers: dict | None = None, key: str = USER_KEY
) -> tuple[int, CIMultiDict, bytes]:
    """One chat request in its own client session: (status, headers, exact body bytes)."""
    async with (
        aiohttp.ClientSession() as http,
        post_chat(http, gateway, body, key, headers) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


async def call(
    http: aiohttp.ClientSession, method: str, url: str, key: str, body: dict | None = None
) -> tuple[int, CIMultiDict, dict]:
    """One request as `key`: (status, headers, the JSON body, or {} when it is not JSON)."""
    async with http.request(method, url, json=body, headers=bearer(key)) as resp:
        payload = await resp.json() if resp.content_type == "application/json" else {}
        return resp.status, CIMultiDict(resp.headers), payload
