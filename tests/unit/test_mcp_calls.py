"""The MCP gateway's pure parts: public names (`<server>__<tool>`), the `mcp_tools` allow-lists,
and what a recorded tool call leaves (a request-log row, a metric, a log line whose arguments
appear only with logging.content)."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from gateway.access.auth import Principal
from gateway.access.governance import Scope
from gateway.limits import MemoryLimiter
from gateway.limits.base import Limits, Subject
from gateway.mcp.calls import Caller, Ledger, ToolCall
from gateway.mcp.names import may_call, public_name, split_name, tool_allowed
from gateway.metrics import Metrics


def test_public_names_split_on_the_first_separator() -> None:
    assert public_name("calc", "add") == "calc__add"
    assert split_name("calc__add") == ("calc", "add")
    assert split_name("calc__snake__case") == ("calc", "snake__case")
    assert split_name("calc") is None and split_name("__add") is None
    assert split_name("calc__") is None


@pytest.mark.parametrize(
    ("name", "patterns", "allowed"),
    [
        ("calc__add", None, True),
        ("calc__add", ("calc__add",), True),
        ("calc__add", ("calc__*",), True),
        ("calc__add", ("*",), True),
        ("calc__add", ("calc__ad",), False),
        ("calc__add", ("files__*",), False),
        ("calculator__add", ("calc__*",), False),
    ],
)
def test_tool_allow_lists(name: str, patterns: tuple[str, ...] | None, allowed: bool) -> None:
    assert tool_allowed(name, patterns) is allowed


def test_a_tool_needs_both_the_keys_and_the_teams_list() -> None:
    assert may_call("calc__add", ("calc__*",), ("calc__add",))
    assert not may_call("calc__sub", ("calc__*",), ("calc__add",))
    assert may_call("calc__sub", None, None)


class Rows:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def submit(self, item: Any) -> None:
        self.rows.append(item)


def _caller(rpm: int = 0) -> Caller:
    principal = Principal("alice", "7", team="core")
    scope = Scope((Subject("alice", Limits(rpm, 100)),), (), None)
    return Caller(principal, None, scope, "req-1")


@pytest.mark.parametrize("content", [False, True])
def test_a_recorded_call_leaves_a_row_a_metric_and_a_line(
    content: bool, caplog: pytest.LogCaptureFixture
) -> None:
    rows, metrics = Rows(), Metrics()
    ledger = Ledger(MemoryLimiter(), rows, metrics, log_content=content)  # type: ignore[arg-type]
    call = ToolCall(_caller(), "calc__add", "calc", "add", {"a": 1, "b": 2})
    with caplog.at_level(logging.INFO, logger="gateway.mcp"):
        ledger.record(call)
    [row] = rows.rows
    assert (row.endpoint, row.model, row.provider, row.upstream_model) == (
        "mcp", "calc__add", "calc", "add"
    )  # fmt: skip
    assert (row.uid, row.key_id, row.team, row.status, row.cost_usd) == (
        "alice", "7", "core", "ok", Decimal(0)
    )  # fmt: skip
    [line] = [r for r in caplog.records if r.getMessage() == "mcp call"]
    fields = line.__dict__["fields"]
    assert fields["tool"] == "calc__add" and fields["status"] == "ok"
    assert ("arguments" in fields) is content
    if content:
        assert fields["arguments"] == {"a": 1, "b": 2}
    sample = metrics.registry.get_sample_value(
        "gateway_mcp_calls_total", {"server": "calc", "status": "ok"}
    )
    assert sample == 1.0


async def test_admission_takes_from_the_rpm_only() -> None:
    ledger = Ledger(MemoryLimiter(), Rows(), Metrics(), log_content=False)  # type: ignore[arg-type]
    caller = _caller(rpm=2)
    assert [await ledger.admit(caller) for _ in range(3)] == [None, None, 2]
    assert await ledger.admit(_caller(rpm=0)) is None  # unlimited: nothing to take
