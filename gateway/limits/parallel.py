"""Caps on the requests in flight at once (max_parallel_requests of a key, a user, a team).
Counted per process: a gateway of N workers or instances admits up to N times a cap."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class InFlight:
    """This process's count of unfinished requests per subject id ("k:<key>", "u:<uid>", ...)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def enter(self, caps: Sequence[tuple[str, int]]) -> str | None:
        """Count one request against every (subject id, cap), or against none of them and
        return the id whose cap is already reached."""
        counts = self._counts
        for subject, cap in caps:
            if counts.get(subject, 0) >= cap:
                return subject
        for subject, _ in caps:
            counts[subject] = counts.get(subject, 0) + 1
        return None

    def leave(self, subjects: Iterable[str]) -> None:
        """A request counted by `enter` has ended."""
        counts = self._counts
        for subject in subjects:
            left = counts.get(subject, 0) - 1
            if left > 0:
                counts[subject] = left
            else:
                counts.pop(subject, None)

    def count(self, subject: str) -> int:
        return self._counts.get(subject, 0)
