"""Upstream clients: one pooled aiohttp ClientSession per OpenAI-compatible provider.
aiohttp's errors are translated here, at the edge, into the gateway's ProviderError family."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import orjson

from .config import ProviderConfig
from .echo import EchoUpstream
from .errors import GatewayError, ProviderError, ProviderTimeout

# Client headers that may travel upstream; everything else (OpenAI-Organization, cookies,
# the client's Authorization) stays at the gateway.
FORWARDED_REQUEST_HEADERS = ("X-Request-Id",)


class Reply(Protocol):
    """An upstream answer whose status and headers have arrived."""

    status: int
    content_type: str

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class Upstream(Protocol):
    """Something that can answer a chat-completions payload."""

    async def send(self, payload: dict, request_id: str) -> Reply: ...

    async def close(self) -> None: ...


def translate(exc: BaseException, provider: str) -> GatewayError:
    """Map a transport failure to the error a client sees (and routing retries on)."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderTimeout(f"Provider `{provider}` timed out.")
    reason = type(exc).__name__
    return ProviderError(f"Provider `{provider}` failed: {reason}.")


class HttpReply:
    """A live aiohttp response; `close()` drops the connection, cancelling the upstream work."""

    __slots__ = ("_response", "content_type", "provider", "retry_after", "status")

    def __init__(self, response: aiohttp.ClientResponse, provider: str):
        self._response = response
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "application/json")
        self.retry_after = response.headers.get("Retry-After")
        self.provider = provider

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise translate(exc, self.provider) from exc
        finally:
            self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise translate(exc, self.provider) from exc

    def close(self) -> None:
        self._response.close()


class OpenAIUpstream:
    """Any OpenAI-compatible API: POST {base_url}/chat/completions with the provider's key."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self.url = f"{provider.base_url}/chat/completions"
        self.headers = {
            "Authorization": f"Bearer {provider.api_key}",
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",  # relayed bytes are never re-encoded or decompressed
            **provider.headers,
        }
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily so it binds to the running loop; one per provider, kept alive.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=self.provider.timeout_s or None,
                    connect=self.provider.connect_timeout_s or None,
                    sock_read=self.provider.read_timeout_s or None,
                ),
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
        return self._session

    async def send(self, payload: dict, request_id: str) -> Reply:
        headers = {**self.headers, "X-Request-Id": request_id}
        try:
            response = await self._client().post(
                self.url, data=orjson.dumps(payload), headers=headers
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise translate(exc, self.provider.name) from exc
        return HttpReply(response, self.provider.name)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Upstreams:
    """The upstream client of every provider, built once per app."""

    def __init__(self, clients: Mapping[str, Upstream]):
        self.clients = dict(clients)

    def __getitem__(self, provider: str) -> Upstream:
        return self.clients[provider]

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)


def build_upstreams(providers: Mapping[str, ProviderConfig]) -> Upstreams:
    """One client per configured provider."""
    clients: dict[str, Upstream] = {}
    for name, provider in providers.items():
        clients[name] = (
            EchoUpstream(provider) if provider.type == "echo" else OpenAIUpstream(provider)
        )
    return Upstreams(clients)
