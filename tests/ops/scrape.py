"""Reading Prometheus text in tests: sum the samples of one series that match some labels; the
metrics SPEC section 6 names. Shared by the metrics, multi-worker and deployment-file tests."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import Reachable

SPEC_HISTOGRAMS = ("gateway_request_duration_seconds", "gateway_time_to_first_token_seconds")
# Every metric of SPEC section 6, histograms by their base name.
SPEC_METRICS = (
    "gateway_requests_total",
    *SPEC_HISTOGRAMS,
    "gateway_tokens_total",
    "gateway_cost_usd_total",
    "gateway_upstream_errors_total",
    "gateway_rate_limited_total",
    "gateway_active_streams",
    "gateway_persist_queue_depth",
    "gateway_persist_failures_total",
)


async def fetch(http: aiohttp.ClientSession, gateway: Reachable) -> str:
    """The gateway's /metrics page (a 200 in Prometheus' text format)."""
    async with http.get(f"{gateway.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample as (name, labels, value)."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0.0 when none)."""
    return sum(
        v
        for sample, got, v in samples(text)
        if sample == name and all(got.get(k) == want for k, want in labels.items())
    )


def names(text: str) -> set[str]:
    """The sample names present."""
    return {name for name, _, _ in samples(text)}
