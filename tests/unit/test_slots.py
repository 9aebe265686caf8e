"""Grouping an admission and a settlement batch by Cluster slot (gateway/limits/slots.py), with a
made-up slot function."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.limits import Budget, Limits, Settlement, Subject
from gateway.limits.slots import Group, group, merge, split_settlements, whole

SLOTS = {"u:a": 900, "k:1": 20, "t:x": 5000, "u:b": 20}
LIMITS = Limits(rpm=1, tpd=0)


def slot_of(owner: str) -> int:
    return SLOTS[owner]


def test_groups_come_in_ascending_slot_order_with_the_request_order_inside() -> None:
    subjects = [Subject(i, LIMITS) for i in ("u:a", "k:1", "t:x", "u:b")]
    budgets = [Budget(i, Decimal(1), "daily") for i in ("t:x", "u:a")]
    assert group(subjects, budgets, slot_of) == [
        Group(20, (1, 3), ()),
        Group(900, (0,), (1,)),  # a user and the user's budget share their slot
        Group(5000, (2,), (0,)),
    ]
    assert whole(subjects, budgets) == Group(0, (0, 1, 2, 3), (0, 1))


def test_merge_puts_group_states_back_in_request_order() -> None:
    groups = [Group(20, (1, 3), ()), Group(900, (0,), (1,)), Group(5000, (2,), (0,))]
    parts = [(groups[0], ["k", "b"], []), (groups[1], ["a"], [1]), (groups[2], ["t"], [0])]
    assert merge(parts, 4, 2) == (["a", "k", "t", "b"], [0, 1])
    with pytest.raises(ValueError):
        merge(parts[:2], 4, 2)


def test_settlements_are_cut_into_each_slots_share_in_batch_order() -> None:
    user, team = Budget("u:a", Decimal(1), "daily"), Budget("t:x", Decimal(1), "total")
    first = Settlement("r1", ("u:a", "k:1", "t:x"), (user, team), Decimal("0.1"), 5)
    second = Settlement("r2", ("u:b",), (), Decimal(0), 3)
    shares = split_settlements([first, second], slot_of)
    assert shares == [
        [
            Settlement("r1", ("k:1",), (), Decimal("0.1"), 5),
            Settlement("r2", ("u:b",), (), Decimal(0), 3),
        ],
        [Settlement("r1", ("u:a",), (user,), Decimal("0.1"), 5)],
        [Settlement("r1", ("t:x",), (team,), Decimal("0.1"), 5)],
    ]
