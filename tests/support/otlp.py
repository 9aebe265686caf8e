"""A real OTLP/HTTP trace receiver (an aiohttp server on 127.0.0.1) for the tests: it decodes each
ExportTraceServiceRequest with opentelemetry-proto and keeps its spans as plain records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KIND = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def value(v: AnyValue) -> Any:
    """An attribute's AnyValue as a Python value (arrays as lists)."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # "" for a root span
    attributes: dict[str, Any]
    events: list[str]
    service: str
    status_code: int  # 0 unset, 1 ok, 2 error
    trace_state: str = ""  # the W3C tracestate the span carries

    def is_parent_in(self, traceparent: str) -> bool:
        """Whether a W3C traceparent names this span as the parent, sampled (the flags may also
        carry trace-context level 2's random-trace-id bit)."""
        version, trace_id, span_id, flags = traceparent.split("-")
        sampled = int(flags, 16) & 1 == 1
        return (version, trace_id, span_id, sampled) == ("00", self.trace_id, self.span_id, True)


@dataclass
class OtlpReceiver:
    """Answers `status` (200: accepted) after `delay_s`; `requests` counts export calls."""

    status: int = 200
    delay_s: float = 0.0
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    content_types: list[str] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/v1/traces"))

    async def start(self) -> OtlpReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self.receive)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def receive(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.content_types.append(request.headers.get("Content-Type", ""))
        raw = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.Response(status=self.status, text="collector says no")
        message = ExportTraceServiceRequest()
        message.ParseFromString(raw)
        for resource_spans in message.resource_spans:
            resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=s.name,
                            kind=KIND.get(s.kind, str(s.kind)),
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            attributes={a.key: value(a.value) for a in s.attributes},
                            events=[e.name for e in s.events],
                            service=str(resource.get("service.name", "")),
                            status_code=s.status.code,
                            trace_state=s.trace_state,
                        )
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    def trace(self, request_id: str) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
        """The server span of `request_id` and its client spans, in attempt order."""
        servers = [
            s
            for s in self.spans
            if s.kind == "server" and s.attributes.get("gateway.request_id") == request_id
        ]
        assert len(servers) == 1, f"{len(servers)} server spans for {request_id}: {self.spans}"
        server = servers[0]
        children = [s for s in self.spans if s.parent_id == server.span_id]
        children.sort(key=lambda s: s.attributes.get("gateway.retry", 0))
        return server, children
