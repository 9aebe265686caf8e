"""The tracing seam: the config section, the GenAI attributes read from bytes, the OTLP protobuf
the gateway writes (decoded by opentelemetry-proto), and the export queue dropping (and counting)
rather than growing without end."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.adapters.base import Call
from gateway.config import ConfigError, TelemetryConfig, parse
from gateway.tracing import NO_TRACE, Tracer, build_tracer
from gateway.tracing.attributes import (
    finish_reasons,
    request_attributes,
    response_attributes,
    server_address,
    span_name,
)
from gateway.tracing.exporter import OtlpExporter
from gateway.tracing.wire import CLIENT, SERVER, Envelope, SpanRecord, attribute_fields, span
from tests.support.otlp import OtlpReceiver, value


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
    tracing = (
        "TRACING = ('gateway.tracing.otlp', 'gateway.tracing.exporter', 'gateway.tracing.wire')"
    )
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


def test_finish_reasons_are_only_finish_and_stop_reasons():
    body = (
        b'{"choices":[{"finish_reason":"length","refusal_reason":"policy"},'
        b'{"finish_reason" : "tool_calls"},{"finish_reason":null}],"stop_reason":"end_turn",'
        b'"text":"a _reason\\" : \\"fake\\""}'
    )
    assert finish_reasons(body) == ["length", "tool_calls", "end_turn"]


def _record(n: int = 1, **attributes: object) -> SpanRecord:
    return SpanRecord(7, n, 0, f"s{n}", SERVER, 1_000, dict(attributes))  # type: ignore[arg-type]


def test_the_wire_format_is_what_opentelemetry_proto_reads():
    server = SpanRecord(
        0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 0x00F067AA0BA902B7,
        "chat gpt-4o", SERVER, 1_700_000_000_123_456_789,
        {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 12,
         "gateway.cost_usd": 0.000123, "big": 1 << 70, "neg": -5, "flag": True,
         "gen_ai.response.finish_reasons": ["stop", "length"], "text": "naïve ☃", "empty": ""},
        remote_parent=True, trace_state="vendor=a,other=b",
    )  # fmt: skip
    server.end_ns = server.start_ns + 2_500_000
    server.events.append((server.start_ns + 1_000, "gateway.first_byte"))
    server.error = True
    client = SpanRecord(
        server.trace_id, 0x1122334455667788, server.span_id, "chat m", CLIENT,
        server.start_ns + 10, {"server.port": 443},
        encoded=attribute_fields({"gateway.retry": 0, "server.address": "api.example.com"}),
    )  # fmt: skip

    client.end_ns = server.end_ns - 10
    body = Envelope("gw", "gateway", "1.2.3").wrap(span(server) + span(client))

    message = ExportTraceServiceRequest()
    message.ParseFromString(body)
    [resource_spans] = message.resource_spans
    assert {a.key: value(a.value) for a in resource_spans.resource.attributes} == {
        "service.name": "gw"
    }
    [scope_spans] = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("gateway", "1.2.3")
    first, second = scope_spans.spans
    assert first.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert (first.span_id.hex(), first.parent_span_id.hex()) == (
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
    )
    assert (first.name, first.kind, first.trace_state) == ("chat gpt-4o", 2, "vendor=a,other=b")
    assert (first.start_time_unix_nano, first.end_time_unix_nano) == (
        1_700_000_000_123_456_789, 1_700_000_000_125_956_789,
    )  # fmt: skip
    assert {a.key: value(a.value) for a in first.attributes} == {
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 12,
        "gateway.cost_usd": 0.000123, "big": str(1 << 70), "neg": -5, "flag": True,
        "gen_ai.response.finish_reasons": ["stop", "length"], "text": "naïve ☃", "empty": "",
    }  # fmt: skip
    assert [(e.name, e.time_unix_nano) for e in first.events] == [
        ("gateway.first_byte", 1_700_000_000_123_457_789)
    ]
    assert first.status.code == 2  # ERROR
    assert first.flags == 0x301  # sampled, parent remoteness known, parent remote
    assert (second.kind, second.parent_span_id.hex(), second.status.code) == (
        3,
        "b7ad6b7169203331",
        0,
    )
    assert second.flags == 0x101 and second.trace_state == ""
    assert {a.key: value(a.value) for a in second.attributes} == {
        "gateway.retry": 0,
        "server.address": "api.example.com",
        "server.port": 443,
    }


def test_a_repeated_attribute_encodes_the_same_each_time():
    """Kept encodings must never leak between keys or between a value and a look-alike."""
    records = [_record(1, a="x", b=1), _record(2, a=1, b="x"), _record(3, a=True, b=1.0)]
    for _ in range(2):
        message = ExportTraceServiceRequest()
        message.ParseFromString(Envelope("gw", "g", "1").wrap(b"".join(span(r) for r in records)))
        spans = message.resource_spans[0].scope_spans[0].spans
        got = [{a.key: (a.value.WhichOneof("value"), value(a.value)) for a in s.attributes}
               for s in spans]  # fmt: skip
        assert got == [
            {"a": ("string_value", "x"), "b": ("int_value", 1)},
            {"a": ("int_value", 1), "b": ("string_value", "x")},
            {"a": ("bool_value", True), "b": ("double_value", 1.0)},
        ]


async def test_a_full_queue_drops_spans_at_once_and_counts_them():
    lost: dict[str, int] = {}

    def on_failure(count: int, reason: str) -> None:
        lost[reason] = lost.get(reason, 0) + count

    receiver = await OtlpReceiver().start()
    config = TelemetryConfig(otlp_endpoint=receiver.url, max_queue_size=2)
    exporter = OtlpExporter(config, Envelope("gw", "gateway", "0"), on_failure)
    exporter.start()
    try:
        for i in range(20):  # no await in between: the exporter cannot have taken any
            exporter.add(_record(i + 1))
        assert lost == {"queue_full": 18}
        await exporter.flush()
        assert sorted(s.name for s in receiver.spans) == ["s1", "s2"]
        receiver.status = 500
        exporter.add(_record(21))
        await exporter.flush()
        assert lost == {"queue_full": 18, "export": 1} and receiver.requests == 2
    finally:
        await exporter.close()
        await receiver.close()


async def test_closing_exports_what_is_queued():
    receiver = await OtlpReceiver().start()
    config = TelemetryConfig(otlp_endpoint=receiver.url)
    exporter = OtlpExporter(config, Envelope("gw", "gateway", "0"), lambda n, reason: None)
    exporter.start()
    try:
        for i in range(3):
            exporter.add(_record(i + 1))
        await exporter.close()
        assert sorted(s.name for s in receiver.spans) == ["s1", "s2", "s3"]
    finally:
        await receiver.close()
