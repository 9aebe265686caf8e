"""The OpenTelemetry form of the tracing seam: SDK spans, OTLP/HTTP protobuf export on the SDK's
batch thread, a bounded queue; imported only when `telemetry.otlp_endpoint` is set.

Rules:
- Contexts are passed explicitly (client traceparent -> server span -> attempt span); the global
  context and the global tracer provider are never touched.
- A span that ends while `max_queue_size` spans wait for export is dropped and counted
  ("queue_full"); a batch the collector refuses or never receives is counted ("export"). The
  request path only appends to a deque: it never waits on the collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span as ApiSpan
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..config import TelemetryConfig
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

if TYPE_CHECKING:
    from ..accounting.recorder import Outcome
    from ..adapters.base import Call
    from ..routing import Target

_PROPAGATOR = TraceContextTextMapPropagator()  # stateless: one for the process is enough
SCHEDULE_DELAY_MS = 1000.0
MAX_BATCH = 512


class CountingExporter(SpanExporter):
    """The OTLP exporter, its failures counted; `taken` is how many spans left the queue."""

    def __init__(self, inner: SpanExporter, on_failure: OnFailure):
        self.inner = inner
        self.on_failure = on_failure
        self.taken = 0  # written by the export thread only

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.taken += len(spans)
        try:
            result = self.inner.export(spans)
        except Exception:  # the SDK's exporter should not raise; a failure is counted all the same
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.on_failure(len(spans), "export")
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class BoundedProcessor(SpanProcessor):
    """A BatchSpanProcessor that drops (and counts) a span rather than let its queue overflow."""

    def __init__(self, exporter: CountingExporter, max_queue: int, on_failure: OnFailure):
        self.exporter = exporter
        self.max_queue = max_queue
        self.on_failure = on_failure
        self.queued = 0  # written by the event loop's thread only
        self.batch = BatchSpanProcessor(
            exporter,
            max_queue_size=max_queue,
            schedule_delay_millis=SCHEDULE_DELAY_MS,
            max_export_batch_size=min(MAX_BATCH, max_queue),
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.queued - self.exporter.taken >= self.max_queue:
            self.on_failure(1, "queue_full")
            return
        self.queued += 1
        self.batch.on_end(span)

    def shutdown(self) -> None:
        self.batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.batch.force_flush(timeout_millis)


def _context(span: ApiSpan) -> Context:
    return set_span_in_context(span, Context())


class OtelAttempt(AttemptTrace):
    """A client span around one upstream attempt."""

    __slots__ = ("_ended", "_headers", "_status", "span")

    def __init__(self, span: ApiSpan):
        self.span = span
        self._ended = False
        self._status: int | None = None
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=_context(span))
        self._headers = carrier

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    def answered(self, status: int) -> None:
        self._status = status

    def end(self, status: int | None = None, error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self.span
        status = self._status if status is None else status
        if error is None and status is not None and status >= 400:
            error = str(status)
        if status is not None and error is None:
            span.set_attribute("http.response.status_code", status)
        elif error is not None:
            attrs: Attributes = {"error.type": error}
            if status is not None:
                attrs["http.response.status_code"] = status
            span.set_attributes(attrs)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class OtelRequest(RequestTrace):
    """The server span of one API request, parent of its attempts' client spans. Its attributes
    gather in a plain dict and reach the span once, at its end (one validation pass, one lock)."""

    __slots__ = ("_tracer", "attrs", "capture_content", "recording", "span")

    def __init__(self, tracer: OtelTracer, span: ApiSpan):
        self._tracer = tracer
        self.span = span
        self.recording = span.is_recording()
        self.capture_content = tracer.capture_content
        self.attrs: Attributes = {}

    def attempt(self, target: Target, call: Call, number: int) -> AttemptTrace:
        recording = self.recording
        if number == 1 and recording:
            self.attrs.update(request_attributes(call))
            if self.capture_content and (messages := input_messages(call)) is not None:
                self.attrs["gen_ai.input.messages"] = messages
        child = self._tracer.otel.start_span(
            span_name(call.endpoint, target.upstream_model),
            context=_context(self.span),
            kind=SpanKind.CLIENT,
            attributes=attempt_attributes(target, call, number) if recording else None,
        )
        return OtelAttempt(child)

    def first_byte(self) -> None:
        if self.recording:
            self.span.add_event("gateway.first_byte")

    def response(self, body: bytes) -> None:
        if self.recording:
            self.attrs.update(response_attributes(body))

    def stream_ended(self, tail: bytes) -> None:
        if self.recording and (reasons := finish_reasons(tail)):
            self.attrs["gen_ai.response.finish_reasons"] = reasons

    def outcome(self, o: Outcome, cost_usd: Decimal) -> None:
        if not self.recording:
            return
        self.span.update_name(span_name(o.endpoint, o.model))
        self.attrs.update(outcome_attributes(o, cost_usd))
        if self.capture_content and o.answer:
            self.attrs["gen_ai.output.messages"] = output_messages(o.answer)

    def end(self, status: int, error: str | None = None) -> None:
        span, attrs = self.span, self.attrs
        if self.recording:
            attrs["http.response.status_code"] = status
            if error is not None:
                attrs["error.type"] = error
            span.set_attributes(attrs)
            if status >= 500:  # a server span marks its own failures, not the client's 4xx
                span.set_status(Status(StatusCode.ERROR))
        span.end()


class OtelTracer(Tracer):
    """A TracerProvider of its own (the global one is left alone) exporting over OTLP/HTTP."""

    enabled = True

    def __init__(self, config: TelemetryConfig, on_failure: OnFailure):
        self.capture_content = config.capture_content
        exporter = OTLPSpanExporter(
            endpoint=config.otlp_endpoint,
            headers=dict(config.headers),
            timeout=config.export_timeout_s,
        )
        self.exporter = CountingExporter(exporter, on_failure)
        self.processor = BoundedProcessor(self.exporter, config.max_queue_size, on_failure)
        self.provider = TracerProvider(
            resource=Resource({"service.name": config.service_name}),
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        )
        self.provider.add_span_processor(self.processor)
        self.otel = self.provider.get_tracer("gateway")

    def start(
        self, method: str, path: str, headers: Mapping[str, str], request_id: str
    ) -> RequestTrace:
        parent = _PROPAGATOR.extract(headers) if "traceparent" in headers else Context()
        span = self.otel.start_span(f"{method} {path}", context=parent, kind=SpanKind.SERVER)
        trace = OtelRequest(self, span)
        # Set with the rest at the end (one validation pass); the request id is known even if
        # the request is refused at the door.
        trace.attrs["url.path"] = path
        trace.attrs["gateway.request_id"] = request_id
        return trace

    async def close(self) -> None:
        # shutdown joins the export thread, which may be mid-export: never on the event loop.
        await asyncio.to_thread(self.provider.shutdown)
