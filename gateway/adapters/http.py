"""The HTTP half every network adapter shares: one pooled aiohttp session per provider, a live
reply, and aiohttp's errors translated at this edge into the gateway's ProviderError family."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from ..config import ProviderConfig
from ..errors import GatewayError, ProviderError, ProviderTimeout


def translate_error(exc: BaseException, provider: str) -> GatewayError:
    """Map a transport failure to the error a client sees (and routing retries on)."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderTimeout(f"Provider `{provider}` timed out.")
    return ProviderError(f"Provider `{provider}` failed: {type(exc).__name__}.")


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
            raise translate_error(exc, self.provider) from exc
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
            raise translate_error(exc, self.provider) from exc

    def close(self) -> None:
        self._response.close()


class HttpClient:
    """One provider's pooled session, made lazily so it binds to the running loop."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            p = self.provider
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=p.timeout_s or None,
                    connect=p.connect_timeout_s or None,
                    sock_read=p.read_timeout_s or None,
                ),
                auto_decompress=False,  # relayed bytes are never re-encoded or decompressed
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str | URL,
        headers: Mapping[str, str],
        payload: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> HttpReply:
        """Send `payload` as JSON (or `data`, bytes already made, as a signed body must be);
        returns once the status has arrived. A URL given as yarl's URL goes out as it is."""
        if payload is not None:
            data = orjson.dumps(payload)
        try:
            response = await self._client().request(
                method, url, data=data, headers=headers, params=params or None
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise translate_error(exc, self.provider.name) from exc
        return HttpReply(response, self.provider.name)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
