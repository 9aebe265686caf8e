"""Reading Prometheus text in tests: sum the samples of one series that match some labels.
Shared by the in-process metrics tests and the multi-worker tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


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
