"""InFlight, the per-process count behind max_parallel_requests: all of a request's caps or
none, and places given back when it ends."""

from __future__ import annotations

from gateway.limits.parallel import InFlight


def test_a_request_takes_a_place_under_every_cap_or_none():
    flight = InFlight()
    assert flight.enter([("k:1", 2), ("t:a", 3)]) is None
    assert flight.enter([("k:1", 2), ("t:a", 3)]) is None
    assert flight.enter([("k:1", 2), ("t:a", 3)]) == "k:1"
    assert (flight.count("k:1"), flight.count("t:a")) == (2, 2)  # the refusal took nothing
    assert flight.enter([("k:2", 5), ("t:a", 3)]) is None
    assert flight.enter([("k:2", 5), ("t:a", 3)]) == "t:a"
    assert flight.count("k:2") == 1


def test_leaving_frees_the_places():
    flight = InFlight()
    flight.enter([("u:x", 1)])
    assert flight.enter([("u:x", 1)]) == "u:x"
    flight.leave(["u:x"])
    assert flight.count("u:x") == 0
    assert flight.enter([("u:x", 1)]) is None
