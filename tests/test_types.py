"""The shared records: the stored route's JSON shape, read back typed, and fixed outcomes."""

from __future__ import annotations

import dataclasses

import pytest

from rung.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Overloaded,
    UpstreamError,
)
from rung.types import Attempt, Judged, Outcome, Route, Usage, Verdict

# A route exactly as the cascade of d68c44c stored it (attempt dicts built by hand there):
# every trace written before the typed records must read back and write out unchanged.
STORED = {
    "tier": "big", "reason": "score 0.412 >= 0.300", "score": 0.412, "router_ms": 0.25,
    "start": 0, "escalations": 1, "cost": 0.5, "compute_s": 1.25,
    "attempts": [
        {"tier": "small", "outcome": "rejected", "start": 1700000000.5, "ms": 812.5,
         "generate_ms": 800.0, "verify_ms": 12.5,
         "verdicts": [{"name": "logprob", "score": 0.9, "accept": False,
                       "detail": "mean logprob -2.1"}],
         "usage": [10, 4], "queue_ms": 3.0, "compute_s": 1.25, "why": "rejected by logprob",
         "answer": "4?"},
        {"tier": "mid", "outcome": "BackendTimeout", "start": 1700000001.4, "ms": 5000.0},
        {"tier": "big", "outcome": "answered", "start": 1700000006.4, "ms": 20.0,
         "usage": [10, 1], "generate_ms": 20.0},
    ],
}


def test_a_stored_route_reads_back_typed_and_writes_out_unchanged() -> None:
    route = Route.from_dict(STORED, requested="rung")
    small, mid, big = route.attempts
    assert small.outcome is Outcome.REJECTED and small.verified
    assert small.verdicts == (Verdict("logprob", 0.9, False, "mean logprob -2.1"),)
    assert small.usage == Usage(10, 4) and small.answer == "4?"
    assert mid.outcome is Outcome.TIMEOUT and mid.usage is None and not mid.verified
    assert big.outcome is Outcome.ANSWERED and big.verdicts == ()
    assert route.escalated and route.requested == "rung"
    assert route.as_dict() == STORED
    without = route.as_dict(answers=False)
    assert "answer" not in without["attempts"][0] and without["attempts"][1:] == \
        STORED["attempts"][1:]


def test_the_header_names_each_tier_and_its_verdicts() -> None:
    route = Route.from_dict(STORED)
    assert route.header() == ("reason=score 0.412 >= 0.300;score=0.412;"
                              "small:rejected(logprob=0.90-);mid:BackendTimeout;big:answered")


def test_a_judged_route_round_trips() -> None:
    route = Route(requested="rung", tier="a",
                  judged=Judged(Verdict("judge", 0.2, True, "P(yes) 0.80"), "big"))
    d = route.as_dict()
    assert d["judged"] == {"name": "judge", "score": 0.2, "accept": True,
                           "detail": "P(yes) 0.80", "tier": "big"}
    assert Route.from_dict(d).judged == route.judged


def test_an_empty_or_old_route_reads_with_defaults() -> None:
    assert Route.from_dict({}) == Route(requested="")
    assert not Route.from_dict({"attempts": [{"tier": "a", "outcome": "answered"}]}).escalated


@pytest.mark.parametrize(("exc", "stored"), [
    (BackendError("x"), "BackendError"),
    (BackendTimeout("x"), "BackendTimeout"),
    (BackendUnavailable("x"), "BackendUnavailable"),
    (UpstreamError("x", upstream_status=500, retryable=True), "UpstreamError"),
    (Overloaded("x"), "Overloaded"),
])
def test_each_failure_has_a_fixed_stored_outcome(exc: BackendError | Overloaded,
                                                 stored: str) -> None:
    assert exc.outcome.value == stored
    assert exc.outcome.moved_on


@pytest.mark.parametrize(("value", "outcome"), [
    ("answered", Outcome.ANSWERED), ("pending", Outcome.PENDING),
    ("rejected", Outcome.REJECTED), ("SomethingNew", Outcome.FAILED), (None, Outcome.FAILED),
])
def test_stored_outcomes_parse(value: object, outcome: Outcome) -> None:
    assert Outcome.parse(value) is outcome


def test_records_are_frozen() -> None:
    attempt = Attempt(tier="a", outcome=Outcome.ANSWERED, start=0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attempt.tier = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Route(requested="x").tier = "a"  # type: ignore[misc]
