"""Pure grouping of an admission's subjects and budgets, and of settlements, by Redis Cluster slot.
No I/O: the caller says which slot an id's keys live in; redis.py runs one script per group.

Rules:
- Every key of one subject or budget carries the id as its hash tag, so an id is in one slot;
  a subject and a budget with the same id (a user and the user's budget) share it.
- Groups come in ascending slot order: every admission takes its slots in the same order.
- Within a group, subjects and budgets keep the request's order; states merged back from the
  groups are in the request's order again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from gateway.limits.base import Budget, Settlement, Subject

S = TypeVar("S")
B = TypeVar("B")
SlotOf = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class Group:
    """The subjects and budgets of one request that live in one slot, as indexes into it."""

    slot: int
    subjects: tuple[int, ...]
    budgets: tuple[int, ...]


def group(subjects: Sequence[Subject], budgets: Sequence[Budget], slot_of: SlotOf) -> list[Group]:
    """The request's slot groups, in ascending slot order."""
    members: dict[int, tuple[list[int], list[int]]] = {}
    for i, s in enumerate(subjects):
        members.setdefault(slot_of(s.id), ([], []))[0].append(i)
    for j, b in enumerate(budgets):
        members.setdefault(slot_of(b.id), ([], []))[1].append(j)
    return [Group(slot, tuple(s), tuple(b)) for slot, (s, b) in sorted(members.items())]


def whole(subjects: Sequence[Subject], budgets: Sequence[Budget]) -> Group:
    """One group holding the whole request (a single server has no slots to respect)."""
    return Group(0, tuple(range(len(subjects))), tuple(range(len(budgets))))


def merge(
    parts: Sequence[tuple[Group, Sequence[S], Sequence[B]]], subjects: int, budgets: int
) -> tuple[list[S], list[B]]:
    """Per-group (subject states, budget states) back in the request's order."""
    by_subject: list[S | None] = [None] * subjects
    by_budget: list[B | None] = [None] * budgets
    for g, subject_states, budget_states in parts:
        for i, subject in zip(g.subjects, subject_states, strict=True):
            by_subject[i] = subject
        for j, held in zip(g.budgets, budget_states, strict=True):
            by_budget[j] = held
    if any(s is None for s in by_subject) or any(b is None for b in by_budget):
        raise ValueError("the groups do not cover the request")
    return [s for s in by_subject if s is not None], [b for b in by_budget if b is not None]


def split_settlements(settlements: Sequence[Settlement], slot_of: SlotOf) -> list[list[Settlement]]:
    """Each slot's share of the batch, ascending by slot: every settlement cut down to its
    subjects and budgets in that slot (same request id, cost and tokens), in batch order."""
    shares: dict[int, list[Settlement]] = {}
    for s in settlements:
        slots = {slot_of(i) for i in s.subjects} | {slot_of(b.id) for b in s.budgets}
        for slot in sorted(slots):
            part = replace(
                s,
                subjects=tuple(i for i in s.subjects if slot_of(i) == slot),
                budgets=tuple(b for b in s.budgets if slot_of(b.id) == slot),
            )
            shares.setdefault(slot, []).append(part)
    return [shares[slot] for slot in sorted(shares)]
