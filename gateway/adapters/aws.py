"""AWS's half of a `bedrock` provider, from botocore (imported when the first request is made):
credentials (the config's, or AWS's environment and profile chain), SigV4 signatures, and the
binary `application/vnd.amazon.eventstream` framing decoded as the bytes arrive.

Rules:
- Finding credentials and refreshing expiring ones (profiles, SSO, instance roles) may block:
  that runs in a worker thread, once for all the requests waiting on it. Signing is CPU only.
- A request is signed over the exact bytes and URL that go out: the URL's path is sent as it
  is (percent-encoded once; SigV4's canonical form encodes it again, as AWS checks it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from ..config import ProviderConfig
from ..errors import GatewayError, ProviderError, UpstreamRejected
from ..translate.bedrock import EventTranslator

SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime


class AwsSigner:
    """SigV4 for one provider: its region, and credentials found once and kept fresh."""

    def __init__(self, provider: ProviderConfig):
        self.provider = provider
        self._credentials: Any = None
        self._finding: asyncio.Future[Any] | None = None

    def _find(self) -> Any:
        """The credentials (blocking: AWS's chain may read files or ask a metadata service)."""
        from botocore.credentials import Credentials

        p = self.provider
        if p.access_key_id:
            return Credentials(p.access_key_id, p.secret_access_key, p.session_token or None)
        import botocore.session

        found = _guarded(p.name, botocore.session.Session().get_credentials)
        if found is None:
            raise ProviderError(
                f"Provider `{p.name}` found no AWS credentials (none in its config, the"
                " environment or the AWS profiles)."
            )
        return found

    async def _frozen(self) -> Any:
        if self._credentials is None:
            if self._finding is None:
                self._finding = asyncio.ensure_future(asyncio.to_thread(self._find))
            finding = self._finding
            try:
                self._credentials = await asyncio.shield(finding)
            except ProviderError:
                self._finding = None  # the next request looks again
                raise
        credentials = self._credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        name = self.provider.name
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(_guarded, name, credentials.get_frozen_credentials)
        return _guarded(name, credentials.get_frozen_credentials)

    async def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """`headers` plus X-Amz-Date, the session token if any, and Authorization."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = await self._frozen()
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials, SERVICE, self.provider.region).add_auth(request)
        return dict(request.headers.items())


def _guarded(provider: str, find: Callable[[], Any]) -> Any:
    """`find()`, with botocore's failures (a bad profile, an expired SSO session, a metadata
    service that does not answer) as the provider's failure: 502, retried, cooled down."""
    from botocore.exceptions import BotoCoreError

    try:
        return find()
    except (BotoCoreError, OSError, ValueError) as exc:
        raise ProviderError(
            f"Provider `{provider}` could not get AWS credentials: {type(exc).__name__}."
        ) from exc


# The HTTP status each stream exception stands for (Bedrock's API reference).
EXCEPTION_STATUS = {
    "throttlingException": 429,
    "validationException": 400,
    "modelStreamErrorException": 424,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}


def stream_exception(
    kind: str, payload: bytes, error: Callable[[int, bytes], bytes]
) -> GatewayError:
    """An exception message that came before anything was written, as the failure the attempt
    loop retries (429, 5xx) or gives the client with its status (other 4xx), `error` making the
    body in the client's shape."""
    status = EXCEPTION_STATUS.get(kind, 500)
    if status >= 500 or status == 424:
        return ProviderError(f"The provider's stream failed before its first event: {kind}.")
    rejected = UpstreamRejected(status, error(status, payload), "application/json")
    if status == 429:
        rejected.headers["Retry-After"] = "1"
    return rejected


class EventStreamDecoder:
    """A StreamTranslator over Bedrock's binary event stream: frames are decoded by botocore's
    EventStreamBuffer as bytes arrive (split anywhere) and each message handed to `events`.
    An exception message before any output (Bedrock throttling a stream at its start) raises
    stream_exception's error, so the attempt is retried or refused like an HTTP error."""

    def __init__(self, events: EventTranslator, error: Callable[[int, bytes], bytes]):
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()
        self._events = events
        self._error = error
        self._broken = False
        self._started = False  # something was written

    def feed(self, raw: bytes) -> bytes:
        from botocore.eventstream import ParserError

        if self._broken:
            return b""
        self._buffer.add_data(raw)
        out: list[bytes] = []
        try:
            for message in self._buffer:
                headers = message.headers
                kind = str(headers.get(":message-type", ""))
                name = str(headers.get(":event-type") or headers.get(":exception-type") or "")
                if kind == "exception" and not self._started and not out:
                    self._broken = True
                    raise stream_exception(name, bytes(message.payload), self._error)
                piece = self._events.message(kind, name, bytes(message.payload))
                if piece:
                    out.append(piece)
        except ParserError:  # a bad CRC or length: nothing after it can be trusted
            self._broken = True
            out.append(self._events.broken())
        self._started = self._started or bool(out)
        return b"".join(out)

    def close(self) -> bytes:
        return b"" if self._broken else self._events.close()
