"""The traced form of the seam (SPEC 15): span records made on the request path, W3C context in
and out, sampling, export over OTLP/HTTP; imported only when `telemetry.otlp_endpoint` is set.

Rules:
- The request path does the least it can: ids, clock reads and a dict of attributes per span.
  Encoding and posting happen later, in batches, in the exporter's task (gateway.tracing.exporter).
- A client's `traceparent` (and `tracestate`) is read by OpenTelemetry's W3C propagator, and its
  sampled flag decides; without one, the trace id decides against `sample_ratio` exactly as the
  OpenTelemetry SDK's ParentBased(TraceIdRatioBased) does, so services agree on a trace.
- An unsampled request still sends its upstream a `traceparent` (flags 00) and exports nothing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from time import time_ns
from typing import TYPE_CHECKING

from opentelemetry.trace import SpanContext, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..config import TelemetryConfig
from ..version import version
from . import AttemptTrace, OnFailure, RequestTrace, Tracer
from .attributes import (
    Attributes,
    attempt_attributes,
    finish_reasons,
    input_messages,
    outcome_attributes,
    output_messages,
    request_attributes,
    response_attributes,
    span_name,
)
from .exporter import OtlpExporter
from .wire import CLIENT, SERVER, Envelope, SpanRecord, attribute_fields

if TYPE_CHECKING:
    from ..accounting.recorder import Outcome
    from ..adapters.base import Call
    from ..routing import Target

_PROPAGATOR = TraceContextTextMapPropagator()  # stateless: one for the process is enough
_LOW_64 = (1 << 64) - 1
_bits = random.getrandbits


def _new_id(bits: int) -> int:
    while not (found := _bits(bits)):  # zero is W3C's invalid id
        pass
    return found


def _remote_parent(headers: Mapping[str, str]) -> SpanContext | None:
    parent = get_current_span(_PROPAGATOR.extract(headers)).get_span_context()
    return parent if parent.is_valid else None


@lru_cache(maxsize=1024)
def _attempt_fields(
    provider_type: str, provider: str, base_url: str, model: str, endpoint: str, number: int
) -> bytes:
    """A client span's attributes but its outcome, written once per target and try."""
    attributes = attempt_attributes(provider_type, provider, base_url, model, endpoint, number)
    return attribute_fields(attributes)


class OtlpAttempt(AttemptTrace):
    """A client span around one upstream attempt (`record` None: unsampled, or ended)."""

    __slots__ = ("_exporter", "_headers", "_status", "record")

    def __init__(
        self, record: SpanRecord | None, headers: Mapping[str, str], exporter: OtlpExporter
    ):
        self.record = record
        self._headers = headers
        self._exporter = exporter
        self._status: int | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    def answered(self, status: int) -> None:
        self._status = status

    def end(self, status: int | None = None, error: str | None = None) -> None:
        record = self.record
        if record is None:
            return
        self.record = None
        status = self._status if status is None else status
        if error is None and status is not None and status >= 400:
            error = str(status)
        if status is not None:
            record.attributes["http.response.status_code"] = status
        if error is not None:
            record.attributes["error.type"] = error
            record.error = True
        record.end_ns = time_ns()
        self._exporter.add(record)


class OtlpRequest(RequestTrace):
    """The server span of one API request, parent of its attempts' client spans."""

    __slots__ = ("_flags", "_tracer", "capture_content", "record", "recording")

    def __init__(self, tracer: OtlpTracer, record: SpanRecord, sampled: bool):
        self._tracer = tracer
        self.record = record
        self.recording = sampled
        self._flags = "01" if sampled else "00"
        self.capture_content = tracer.capture_content

    def attempt(self, target: Target, call: Call, number: int) -> AttemptTrace:
        server = self.record
        span_id = _new_id(64)
        headers = {"traceparent": f"00-{server.trace_id:032x}-{span_id:016x}-{self._flags}"}
        if server.trace_state:
            headers["tracestate"] = server.trace_state
        exporter = self._tracer.exporter
        if not self.recording:
            return OtlpAttempt(None, headers, exporter)
        if number == 1:
            server.attributes.update(request_attributes(call))
            if self.capture_content and (messages := input_messages(call)) is not None:
                server.attributes["gen_ai.input.messages"] = messages
        provider = target.provider
        model, endpoint = target.upstream_model, call.endpoint
        record = SpanRecord(
            server.trace_id,
            span_id,
            server.span_id,
            span_name(endpoint, model),
            CLIENT,
            time_ns(),
            {},
            trace_state=server.trace_state,
            encoded=_attempt_fields(
                provider.type, provider.name, provider.base_url, model, endpoint, number
            ),
        )
        return OtlpAttempt(record, headers, exporter)

    def first_byte(self) -> None:
        if self.recording:
            self.record.events.append((time_ns(), "gateway.first_byte"))

    def response(self, body: bytes) -> None:
        if self.recording:
            self.record.attributes.update(response_attributes(body))

    def stream_ended(self, tail: bytes) -> None:
        if self.recording and (reasons := finish_reasons(tail)):
            self.record.attributes["gen_ai.response.finish_reasons"] = reasons

    def outcome(self, o: Outcome, cost_usd: Decimal) -> None:
        if not self.recording:
            return
        record = self.record
        record.name = span_name(o.endpoint, o.model)
        record.attributes.update(outcome_attributes(o, cost_usd))
        if self.capture_content and o.answer:
            record.attributes["gen_ai.output.messages"] = output_messages(o.answer)

    def end(self, status: int, error: str | None = None) -> None:
        record = self.record
        if not self.recording or record.end_ns:
            return
        record.attributes["http.response.status_code"] = status
        if error is not None:
            record.attributes["error.type"] = error
        record.error = status >= 500  # a server span marks its own failures, not a client's 4xx
        record.end_ns = time_ns()
        self._tracer.exporter.add(record)


class OtlpTracer(Tracer):
    """Starts the server spans and owns the exporter; built inside the running event loop."""

    enabled = True

    def __init__(self, config: TelemetryConfig, on_failure: OnFailure):
        self.capture_content = config.capture_content
        # TraceIdRatioBased's bound: a trace is kept when its id's low 64 bits are below it.
        self.bound = round(config.sample_ratio * (1 << 64))
        envelope = Envelope(config.service_name, "gateway", version())
        self.exporter = OtlpExporter(config, envelope, on_failure)
        self.exporter.start()

    def start(
        self, method: str, path: str, headers: Mapping[str, str], request_id: str
    ) -> RequestTrace:
        parent = _remote_parent(headers) if "traceparent" in headers else None
        attributes: Attributes = {"url.path": path, "gateway.request_id": request_id}
        if parent is None:
            trace_id = _new_id(128)
            record = SpanRecord(
                trace_id, _new_id(64), 0, f"{method} {path}", SERVER, time_ns(), attributes
            )
            return OtlpRequest(self, record, trace_id & _LOW_64 < self.bound)
        record = SpanRecord(
            parent.trace_id,
            _new_id(64),
            parent.span_id,
            f"{method} {path}",
            SERVER,
            time_ns(),
            attributes,
            remote_parent=True,
            trace_state=parent.trace_state.to_header(),
        )
        return OtlpRequest(self, record, parent.trace_flags.sampled)

    async def flush(self) -> None:
        """Export every finished span now (the tests' way to look at them at once)."""
        await self.exporter.flush()

    async def close(self) -> None:
        await self.exporter.close()
