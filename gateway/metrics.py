"""Prometheus metrics of SPEC section 6, held in one object built per app (no module globals).
No label names a user or a key; with `serve --workers N` a scrape sums every worker's files."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60,
)  # fmt: skip


class Metrics:
    """Every series the gateway exports, in `registry` (a fresh one when None).

    `multiprocess_dir` is set in the workers of `serve --workers N` (see config.metrics_dir):
    prometheus-client then keeps values in per-process files there, and `render` sums them all.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, multiprocess_dir: str | None = None
    ):
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        self.multiprocess_dir = multiprocess_dir
        self.requests = Counter(
            "gateway_requests_total",
            "API requests by endpoint and outcome.",
            ["model", "provider", "status", "stream", "endpoint"],
            registry=r,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to the last byte of the answer.",
            ["model", "stream"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request to the first streamed byte sent to the client.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens_total",
            "Tokens counted, by kind.",
            ["model", "provider", "kind"],
            registry=r,
        )
        self.cost = Counter("gateway_cost_usd_total", "Cost in USD.", ["model"], registry=r)
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Failed upstream attempts, by reason.",
            ["provider", "reason"],
            registry=r,
        )
        self.mcp_calls = Counter(
            "gateway_mcp_calls_total",
            "MCP tool calls through /mcp, by upstream server and outcome.",
            ["server", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total", "Requests refused by a quota.", ["limit"], registry=r
        )
        self.active_streams = Gauge(
            "gateway_active_streams",
            "Streams being relayed now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.persist_queue_depth = Gauge(
            "gateway_persist_queue_depth",
            "Rows waiting to be written to the database.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.persist_failures = Counter(
            "gateway_persist_failures_total", "Failed database batch writes.", registry=r
        )
        self.deployment_cooldown = Gauge(
            "gateway_deployment_cooling_down",
            "1 while a deployment is skipped after repeated failures.",
            ["deployment"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.trace_export_failures = Counter(
            "gateway_trace_export_failures_total",
            "Spans lost on the way to the collector: export failed, or dropped on a full queue.",
            ["reason"],
            registry=r,
        )
        self.cache_requests = Counter(
            "gateway_cache_requests_total",
            "Requests to a model with a response cache, by what the cache did: hit, miss,"
            " bypass (not cacheable, or the client said so) or refresh.",
            ["result"],
            registry=r,
        )
        self.cache_errors = Counter(
            "gateway_cache_errors_total",
            "Response cache calls that failed (Redis away): those requests went upstream.",
            registry=r,
        )
        self.limiter_degraded = Gauge(
            "gateway_limiter_degraded",
            "1 while Redis is unreachable and limits are per process.",
            registry=r,
            multiprocess_mode="livemax",
        )

    def render(self) -> bytes:
        """The text exposition: this process's registry, or every worker's files together."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        # A fresh registry per scrape: the collector reads the files anew each time.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)
