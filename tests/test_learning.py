"""How rung learn reads labels about the first tier from traces (rung.learning)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rung.learning import Label, labels, ranking_quality
from rung.store.feedback import Feedback
from rung.store.trace import Trace
from rung.types import ChatRequest

MSG = [{"role": "user", "content": "q"}]


def trace(tid: str, tier: str, attempts: list[dict[str, object]], *, t: float = 0.0,
          messages: list[dict[str, str]] | None = MSG) -> Trace:
    return Trace(id=tid, time=t, model="rung", tier=tier, messages=messages,
                 route={"tier": tier, "attempts": attempts})


ANSWERED = [{"tier": "small", "outcome": "answered"}]
VERIFIED = [{"tier": "small", "outcome": "answered", "verdicts": [{"name": "x"}]}]
REJECTED = [{"tier": "small", "outcome": "rejected", "verdicts": [{"name": "x"}]},
            {"tier": "big", "outcome": "answered"}]
PAST = [{"tier": "big", "outcome": "answered"}]


def test_the_label_rules() -> None:
    traces = [
        trace("user", "small", ANSWERED, t=1),
        trace("shadow", "small", ANSWERED, t=2),
        trace("both", "small", VERIFIED, t=3),
        trace("rejected", "big", REJECTED, t=4),
        trace("verified", "small", VERIFIED, t=5),
        trace("unrated", "small", ANSWERED, t=6),
        trace("past", "big", PAST, t=7),
        trace("redacted", "small", ANSWERED, t=8, messages=None),
        trace("big-rated", "big", REJECTED, t=9),
    ]
    feedback = [Feedback("user", 0.0, 1), Feedback("shadow", 1.0, 2, source="shadow"),
                Feedback("both", 0.0, 3, source="shadow"), Feedback("both", 1.0, 3),
                Feedback("past", 0.0, 7), Feedback("redacted", 0.0, 8),
                Feedback("big-rated", 1.0, 9)]
    found = labels(traces, feedback, "small")
    got = {lb.trace_id: (lb.ok, lb.source) for lb in found if lb.side == "first"}
    assert got == {
        "user": (False, "feedback"),
        "shadow": (True, "shadow"),
        "both": (True, "feedback"),  # a user's word over a shadow's and a verdict
        "rejected": (False, "verifier"),
        "verified": (True, "verifier"),
        "big-rated": (False, "verifier"),  # its feedback is about the big tier's answer
    }
    # feedback on a stronger tier's answer is a label about the stronger side; so is a
    # shadow's disagreement with a first-tier answer the user rated right
    stronger = {lb.trace_id: (lb.ok, lb.source) for lb in found if lb.side == "next"}
    assert stronger == {"past": (False, "feedback"), "big-rated": (True, "feedback"),
                        "both": (False, "shadow")}


def test_downward_shadows_label_the_first_tier_on_prompts_sent_past_it() -> None:
    cases = {  # (the user's rating of the big tier's answer, the first tier agreed) -> label
        "agreed": (None, 1.0, True),
        "differed": (None, 0.0, False),
        "agreed-right": (1.0, 1.0, True),
        "differed-right": (1.0, 0.0, False),
        "agreed-wrong": (0.0, 1.0, False),  # agreeing with a wrong answer is wrong
        "differed-wrong": (0.0, 0.0, None),  # both wrong, or the first tier right
    }
    traces, feedback = [], []
    for i, (tid, (rated, agreed, _)) in enumerate(cases.items()):
        traces.append(trace(tid, "big", PAST, t=i))
        feedback.append(Feedback(tid, agreed, i, source="shadow_first"))
        if rated is not None:
            feedback.append(Feedback(tid, rated, i))
    # a shadow_first comparison says nothing about the big tier itself
    traces.append(trace("shadow-only-big", "big", PAST, t=9))
    found = labels(traces, feedback, "small")
    first = {lb.trace_id: lb.ok for lb in found if lb.side == "first"}
    assert first == {tid: want for tid, (_, _, want) in cases.items() if want is not None}
    assert all(lb.source == "shadow" for lb in found if lb.side == "first")
    stronger = {lb.trace_id: lb.ok for lb in found if lb.side == "next"}
    assert stronger == {"agreed-right": True, "differed-right": True, "agreed-wrong": False,
                        "differed-wrong": False}
    # a rated answer with a comparison is a paired outcome: each label knows the other side
    paired = {(lb.trace_id, lb.side): lb.other for lb in found}
    assert paired[("differed-right", "first")] is True
    assert paired[("differed-right", "next")] is False
    assert paired[("agreed", "first")] is None  # unrated: the big tier's outcome unknown
    assert paired[("differed-wrong", "next")] is None  # the comparison said nothing


def test_paired_outcomes_count_what_escalating_gains() -> None:
    req = trace("x", "big", PAST).conversation
    assert req is not None

    def label(ok: bool, side: str, other: bool | None) -> Label:
        return Label("x", 0.0, ChatRequest(messages=req), ok, "shadow", side,  # type: ignore[arg-type]
                     other=other)

    found = [label(False, "first", True),  # the first tier failed, the stronger succeeded
             label(False, "first", False),  # both failed: escalating gains nothing
             label(True, "first", None)]
    gain_first = np.array([0.9, 0.5, 0.1])
    failure_first = np.array([0.5, 0.9, 0.1])  # ranks "both failed" highest
    assert ranking_quality(gain_first, found) == 1.0
    assert ranking_quality(failure_first, found) == 0.5
    # without the pairing both orders look alike: two failures, one success
    unpaired = [replace(lb, other=None) for lb in found]
    assert ranking_quality(gain_first, unpaired) == ranking_quality(failure_first, unpaired) \
        == 1.0
    # on the stronger side, a success the first tier also had gains nothing
    strong = [label(True, "next", False), label(True, "next", True), label(False, "next", None)]
    assert ranking_quality(np.array([0.9, 0.1, 0.5]), strong) == 1.0
