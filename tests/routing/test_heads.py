"""The heads router's implied labels (rung.routing.heads): a label about one side of the
ladder says something about the other side, by dominance."""

from __future__ import annotations

from rung.routing.domain import features
from rung.routing.heads import HeadsRouter, implied, train_heads


def _rows(word: str, ok: bool, n: int = 20) -> list[tuple[str, bool]]:
    return [(f"A question about the {word}, number {i}?", ok) for i in range(n)]


def _p(router: HeadsRouter, head: str, word: str) -> float:
    prompt = f"A question about the {word}, number 99?"
    return router._p(head, prompt, router.tfidf.row(prompt),
                     router._shape(features([prompt])[0]))


def test_only_successes_of_the_first_tier_and_failures_of_a_stronger_one_imply_labels() -> None:
    first = [("a", True), ("b", False), ("c", True)]
    stronger = [("c", False), ("d", False), ("e", True)]
    to_first, to_stronger = implied(first, stronger)
    assert to_first == [("d", False)]  # "c" has its own label about the first tier
    assert to_stronger == [("a", True)]  # "c" has its own about the stronger side
    # two-sided data implies nothing
    assert implied(first, [(p, ok) for p, ok in first]) == ([], [])


def test_a_topic_labelled_on_one_side_only_is_learned_on_the_other() -> None:
    # the first tier answered apples (right) and bananas (wrong); a stronger tier answered
    # zebras (wrong) and pears (right): what the first tier would do on zebras, and a
    # stronger tier on apples, only the implied labels say
    first = _rows("apple", True) + _rows("banana", False)
    stronger = _rows("zebra", False) + _rows("pear", True)
    plain = train_heads(first, stronger, implied_weight=0)
    learned = train_heads(first, stronger)
    assert learned.meta["implied"] == {"first": 20, "next": 20, "weight": 0.25}
    assert plain.meta["implied"]["first"] == 0
    assert _p(learned, "first", "zebra") < _p(plain, "first", "zebra") - 0.1
    assert _p(learned, "next", "apple") > _p(plain, "next", "apple") + 0.1
    # the labels a side has of its own still decide it
    assert _p(learned, "first", "apple") > _p(learned, "first", "banana") + 0.2
    assert _p(learned, "next", "pear") > _p(learned, "next", "zebra") + 0.2
