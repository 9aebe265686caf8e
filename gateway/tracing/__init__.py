"""Traces of SPEC 15: the seam the request path calls (a Tracer, a RequestTrace, an AttemptTrace)
and its no-op form, which is all that loads when `telemetry.otlp_endpoint` is empty.

Rules:
- The request path calls these methods whether or not tracing is on; off, each is an empty
  method of a shared no-op object, and no OpenTelemetry module is imported at all.
- `build_tracer` imports the traced form (gateway.tracing.otlp) only when an endpoint is
  configured, inside the running loop; it never raises for a collector that is down (export
  happens later, in its own task).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from ..config import TelemetryConfig

if TYPE_CHECKING:
    from ..accounting.recorder import Outcome
    from ..adapters.base import Call
    from ..routing import Target

# Called with (spans, reason) when spans are lost: reason "export" (the collector failed or is
# unreachable) or "queue_full" (dropped before export; the request never waits for the queue).
OnFailure = Callable[[int, str], None]

NO_HEADERS: Mapping[str, str] = {}


class AttemptTrace:
    """One upstream attempt's client span; this base class records nothing."""

    __slots__ = ()

    @property
    def headers(self) -> Mapping[str, str]:
        """The W3C trace context to send upstream (`traceparent`, maybe `tracestate`)."""
        return NO_HEADERS

    def answered(self, status: int) -> None:
        """Upstream's status has arrived (a stream's span ends later, with the relay)."""

    def end(self, status: int | None = None, error: str | None = None) -> None:
        """End the span (once; later calls do nothing) with the upstream status or the error."""


class RequestTrace:
    """One API request's server span; this base class records nothing."""

    __slots__ = ()

    capture_content = False
    recording = False  # whether the request path should hand it what `stream_ended` reads

    def attempt(self, target: Target, call: Call, number: int) -> AttemptTrace:
        """A client span for attempt `number` (1-based) of `call` on `target`."""
        return NO_ATTEMPT

    def first_byte(self) -> None:
        """The answer's first streamed byte is on its way to the client."""

    def response(self, body: bytes) -> None:
        """A whole answer's body, or a stream's first chunk: its id, model, finish reasons."""

    def stream_ended(self, tail: bytes) -> None:
        """The last bytes a relayed stream sent the client: its finish reasons."""

    def outcome(self, o: Outcome, cost_usd: Decimal) -> None:
        """What the request came to: model, usage, cost (as billed), attempts, errors."""

    def end(self, status: int, error: str | None = None) -> None:
        """End the server span with the response's status (and the error's code)."""


class Tracer:
    """Starts one RequestTrace per API request; this base class traces nothing."""

    enabled = False

    def start(
        self, method: str, path: str, headers: Mapping[str, str], request_id: str
    ) -> RequestTrace:
        """The request's trace; `headers` may carry the client's `traceparent`."""
        return NO_TRACE

    async def close(self) -> None:
        """Export what is queued (within the export timeout) and stop exporting."""


NO_ATTEMPT = AttemptTrace()
NO_TRACE = RequestTrace()


def build_tracer(config: TelemetryConfig, on_failure: OnFailure) -> Tracer:
    """The configured Tracer: the OpenTelemetry one when an OTLP endpoint is set, else no-op."""
    if not config.otlp_endpoint:
        return Tracer()
    from .otlp import OtlpTracer  # loads only when tracing is configured

    return OtlpTracer(config, on_failure)
