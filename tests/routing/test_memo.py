"""rung.routing.memo: per-text results kept inside ``remembered()`` only, and the same
results as without it."""

from __future__ import annotations

import threading

from rung.routing import memo
from rung.routing.domain import features
from rung.routing.text import analyze


def test_results_are_kept_inside_a_block_and_dropped_after() -> None:
    calls: list[str] = []

    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert memo.cached("up", "a", upper) == "A" and memo.cached("up", "a", upper) == "A"
    assert calls == ["a", "a"]  # outside a block nothing is kept
    with memo.remembered():
        assert [memo.cached("up", t, upper) for t in ("b", "b", "c")] == ["B", "B", "C"]
        with memo.remembered():  # a nested block shares the outer one's
            assert memo.cached("up", "b", upper) == "B"
        assert memo.cached("up", "c", upper) == "C"
    assert calls == ["a", "a", "b", "c"]
    assert memo.cached("up", "b", upper) == "B" and calls[-1] == "b"  # dropped


def test_tokens_and_surface_features_are_the_same_kept_or_not() -> None:
    texts = ["What is 12% of 50?", "Which is a mammal?\nA. frog\nB. whale", "What is 12% of 50?"]
    plain = [analyze(t) for t in texts], features(texts)
    with memo.remembered():
        kept = [analyze(t) for t in texts], features(texts)
        assert kept[0][0] is kept[0][2]  # the repeated text was tokenised once
    assert plain[0] == kept[0] and (plain[1] == kept[1]).all()
    assert plain[0][0] == ("what", "is", "12", "of", "50", "what is", "is 12", "12 of",
                           "of 50")


def test_another_thread_keeps_nothing_of_a_block() -> None:
    seen: list[object] = []
    with memo.remembered():
        memo.cached("up", "x", str.upper)
        worker = threading.Thread(target=lambda: seen.append(memo._kept.get()))
        worker.start()
        worker.join()
    assert seen == [None]
