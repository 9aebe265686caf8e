"""The bench's scenarios: what load each sends, to which endpoint, through which provider type,
and the model names that carry the answer's shape to the mock upstream."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

# Run again with `--workers N`: the scenarios that saturate the gateway.
THROUGHPUT = ("nonstream_c64", "stream20_c64")
# The translated stream's CPU per stream is judged against the passthrough one's (same run).
TRANSLATED_VS_PASSTHROUGH = ("anthropic_stream20_c64", "stream20_c64")


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    concurrency: int
    chunks: int
    delay_ms: int
    ttft_ms: int
    duration_s: float
    ramp_s: float = 0.0  # worker starts spread over this long (the slow streams: one stream)
    endpoint: str = "chat"  # what the client calls at the gateway (endpoints.py)
    provider: str = "openai"  # the provider type the gateway's model routes to: openai | anthropic

    @property
    def shape(self) -> str:
        return f"c{self.chunks}-d{self.delay_ms}-t{self.ttft_ms}"

    @property
    def upstream_model(self) -> str:
        return f"mock-{self.shape}"

    @property
    def gateway_model(self) -> str:
        if self.provider == "anthropic":
            return f"bench-anthropic-{self.shape}"
        return f"bench-{self.shape}"

    @property
    def direct_endpoint(self) -> str:
        """What the same call is upstream, sent straight to the mock for the floor: a translated
        chat request is an Anthropic Messages request there."""
        return "messages" if self.provider == "anthropic" else self.endpoint


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    """Every scenario, in table order, or the subset `--scenarios` names."""
    d = args.duration
    gap, ttft = args.chunk_delay_ms, args.ttft_ms
    # A slow stream lasts one second: the load must last as long as the ramp and one stream.
    slow_d = max(d, 3.0) if not args.quick else max(d, 1.0)
    all_ = [
        Scenario("nonstream_c1", False, 1, 20, 0, 0, d),
        Scenario("nonstream_c64", False, 64, 20, 0, 0, d),
        Scenario("stream20_c1", True, 1, 20, gap, ttft, d),
        Scenario("stream20_c64", True, 64, 20, gap, ttft, d),
        # The same stream from an `anthropic` provider: the client still speaks OpenAI chat and
        # the gateway translates every event (its CPU is judged against stream20_c64's).
        Scenario("anthropic_stream20_c64", True, 64, 20, gap, ttft, d, provider="anthropic"),
        # The Anthropic front door to an `anthropic` provider: relayed byte for byte.
        Scenario(
            "messages_stream20_c64",
            True,
            64,
            20,
            gap,
            ttft,
            d,
            endpoint="messages",
            provider="anthropic",
        ),
        Scenario("responses_c64", False, 64, 20, 0, 0, d, endpoint="responses"),
        Scenario("responses_stream20_c64", True, 64, 20, gap, ttft, d, endpoint="responses"),
        Scenario("embeddings_c64", False, 64, 20, 0, 0, d, endpoint="embeddings"),
        # Streams of equal length started at once would stay in lockstep, and every second the
        # gateway would have to open all of them within the same few milliseconds: spread the
        # starts over one stream's length, as independent clients would be.
        Scenario("slow_streams", True, args.slow_concurrency, 20, 50, 0, slow_d, 0.95),
    ]
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        unknown = wanted - {s.name for s in all_}
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        all_ = [s for s in all_ if s.name in wanted]
    return all_


def warm_variant(sc: Scenario) -> Scenario:
    """The scenario's calls with no pacing, one at a time: what warms the gateway up."""
    return replace(sc, concurrency=1, delay_ms=0, ttft_ms=0, ramp_s=0.0, duration_s=1.0)
