"""OAuth access tokens for `vertex` providers, from google-auth: a service-account JSON file or
Google's application default credentials. google-auth is imported on the first token only.

Rules:
- google-auth's loading and refresh are blocking (files, the token endpoint): they run in a
  worker thread, never on the event loop.
- A token is used until REFRESH_MARGIN_S before it expires; then one refresh serves every request
  that asks meanwhile (they all wait on the same task), so N concurrent requests make one call
  to the token endpoint, not N.
- A failed refresh fails the requests waiting on it (502 provider_error, retried and cooled down
  like any upstream failure); the next request tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from ..errors import ProviderError

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_MARGIN_S = 300.0  # refresh a token this long before it expires


class GoogleToken:
    """The current bearer token of one provider's credentials."""

    def __init__(
        self, provider: str, credentials_file: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.provider = provider
        self.credentials_file = credentials_file
        self.clock = clock
        self.refreshes = 0  # token endpoint calls made (for tests and logs)
        self._credentials: Any = None
        self._token = ""
        self._expires_at = 0.0  # epoch seconds; 0 with a token: google-auth gave no expiry
        self._refreshing: asyncio.Future[tuple[str, float]] | None = None
        self._request: Any = None  # google-auth's transport, made with the credentials

    def _fresh(self) -> bool:
        if not self._token:
            return False
        return not self._expires_at or self._expires_at - REFRESH_MARGIN_S > self.clock()

    async def token(self) -> str:
        """A token valid for at least REFRESH_MARGIN_S more (one refresh for all waiters)."""
        if self._fresh():
            return self._token
        if self._refreshing is None:
            task = asyncio.ensure_future(asyncio.to_thread(self._refresh))
            self._refreshing = task
            task.add_done_callback(self._refreshed)
        # shield: a waiter that is cancelled (its client left) does not cancel the others' refresh
        token, _ = await asyncio.shield(self._refreshing)
        return token

    def forget(self, token: str) -> None:
        """Drop `token` (Vertex refused it: revoked, or its account changed), so the next
        request gets a new one; a newer token already in use is kept."""
        if self._token == token:
            self._token = ""

    def _refreshed(self, task: asyncio.Future[tuple[str, float]]) -> None:
        self._refreshing = None
        if not task.cancelled() and task.exception() is None:
            self._token, self._expires_at = task.result()

    def _refresh(self) -> tuple[str, float]:
        """Load the credentials (first time) and get a new token: blocking, in a thread."""
        try:
            import google.auth
            import google.auth.transport.requests
            from google.auth.exceptions import GoogleAuthError
            from google.oauth2 import service_account
        except ImportError as exc:  # pragma: no cover - google-auth is a dependency
            raise ProviderError("vertex providers need the google-auth package.") from exc
        try:
            if self._credentials is None:
                if self.credentials_file:
                    load = service_account.Credentials.from_service_account_file
                    self._credentials = load(  # type: ignore[no-untyped-call]
                        self.credentials_file, scopes=[SCOPE]
                    )
                else:
                    self._credentials, _ = google.auth.default(scopes=[SCOPE])
                self._request = google.auth.transport.requests.Request()
            self._credentials.refresh(self._request)
        except (GoogleAuthError, OSError, ValueError) as exc:
            raise ProviderError(
                f"Provider `{self.provider}` could not get a Google access token:"
                f" {type(exc).__name__}."
            ) from exc
        self.refreshes += 1
        expiry = self._credentials.expiry  # naive UTC, or None
        expires_at = expiry.replace(tzinfo=UTC).timestamp() if expiry is not None else 0.0
        return str(self._credentials.token), expires_at
