"""The tracing seam without a network: the config section, the GenAI attributes read from bytes,
the bounded processor dropping (and counting) rather than queueing without end."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from gateway.adapters.base import Call
from gateway.config import ConfigError, TelemetryConfig, parse
from gateway.tracing import NO_TRACE, Tracer, build_tracer
from gateway.tracing.attributes import (
    request_attributes,
    response_attributes,
    server_address,
    span_name,
)
from gateway.tracing.otel import BoundedProcessor, CountingExporter


def test_telemetry_is_off_by_default_and_read_when_given():
    assert parse({}, "t", {}).telemetry == TelemetryConfig()
    config = parse(
        {"telemetry": {"otlp_endpoint": "${OTLP:-}", "sample_ratio": "0.25",
                       "capture_content": "true", "headers": {"x-team": "a"}}},
        "t", {"OTLP": "http://jaeger:4318/v1/traces"},
    )  # fmt: skip
    t = config.telemetry
    assert (t.otlp_endpoint, t.sample_ratio, t.capture_content) == (
        "http://jaeger:4318/v1/traces",
        0.25,
        True,
    )
    assert t.headers == {"x-team": "a"} and t.service_name == "gateway"


@pytest.mark.parametrize(
    "section",
    [{"otlp_endpoint": "jaeger:4318"}, {"sample_ratio": 1.5}, {"exporter": "grpc"}],
)
def test_bad_telemetry_is_one_line_error(section):
    with pytest.raises(ConfigError, match="telemetry"):
        parse({"telemetry": section}, "t", {})


def test_without_an_endpoint_the_tracer_is_the_no_op_one():
    tracer = build_tracer(TelemetryConfig(), lambda n, reason: None)
    assert type(tracer) is Tracer and not tracer.enabled
    assert tracer.start("POST", "/v1/chat/completions", {}, "r1") is NO_TRACE


def test_tracing_off_imports_no_tracing_code():
    """redis-py imports the OpenTelemetry metrics SDK when it is installed (and leaves it idle
    until told otherwise); the gateway's tracing, the trace SDK and the exporter stay out."""
    probe = (
        "import sys, gateway.serve.cli, gateway.web.app, gateway.tracing; "
        "print(sorted(m for m in sys.modules if m.startswith(TRACING)))"
    )
    tracing = "TRACING = ('gateway.tracing.otel', 'opentelemetry.sdk.trace', 'opentelemetry.exp')"
    done = subprocess.run(
        [sys.executable, "-c", f"{tracing}\n{probe}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_span_names_follow_the_genai_conventions():
    assert span_name("chat", "gpt-4o") == "chat gpt-4o"
    assert span_name("completions", "m") == "text_completion m"
    assert span_name("embeddings", "") == "embeddings"


def test_server_address_of_a_base_url():
    assert server_address("https://api.openai.com/v1") == ("api.openai.com", None)
    assert server_address("http://127.0.0.1:8080/v1") == ("127.0.0.1", 8080)
    assert server_address("") == ("", None)


def test_request_attributes_take_numbers_only():
    call = Call("chat", {"max_completion_tokens": 9, "temperature": 1}, "r", "m", "m")
    assert request_attributes(call) == {
        "gen_ai.request.max_tokens": 9,
        "gen_ai.request.temperature": 1.0,
    }
    odd = Call("chat", {"max_tokens": True, "temperature": "hot"}, "r", "m", "m")
    assert request_attributes(odd) == {}


def test_response_attributes_from_an_anthropic_body_and_a_chat_chunk():
    body = (
        b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",'
        b'"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}'
    )
    assert response_attributes(body) == {
        "gen_ai.response.id": "msg_1",
        "gen_ai.response.model": "claude-x",
        "gen_ai.response.finish_reasons": ["end_turn"],
    }
    chunk = b'data: {"id":"chatcmpl-1","model":"gpt","choices":[{"finish_reason":null}]}\n\n'
    assert response_attributes(chunk) == {
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt",
    }


class StuckExporter(SpanExporter):
    """An exporter that blocks until released: a collector that does not answer."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        self.exported += len(spans)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_queue_drops_spans_at_once_and_counts_them():
    lost: dict[str, int] = {}

    def on_failure(count: int, reason: str) -> None:
        lost[reason] = lost.get(reason, 0) + count

    stuck = StuckExporter()
    exporter = CountingExporter(stuck, on_failure)
    processor = BoundedProcessor(exporter, max_queue=2, on_failure=on_failure)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    began = time.perf_counter()
    for i in range(20):
        tracer.start_span(f"s{i}").end()
    assert time.perf_counter() - began < 0.5, "ending a span must never wait on the collector"
    assert lost["queue_full"] >= 16  # at most 2 queued and 2 taken by the stuck export
    stuck.release.set()
    processor.force_flush(5000)
    assert lost["queue_full"] + lost["export"] == 20
    provider.shutdown()
