"""Quality gate: the learned router beats random routing on items it never saw.

Deterministic: fixed splits by item position, the default router (TF-IDF and structure, no
embeddings; 2 inner folds to keep it quick) and lbfgs logistic regression. MMLU uses one
held-out fold (2,000 items); GSM8K is small (909 items, one fold APGR is noisy), so it is
cross-validated over 5 folds. bench/routing_cv.py prints the full numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rung.routing.data import Outcome, load_outcomes
from rung.routing.learned import train_router
from rung.routing.metrics import evaluate

DATA = Path(__file__).parents[2].parent / "shared/data/routellm"


def _held_out_scores(rows: list[Outcome], folds: list[int]) -> tuple[list[int], np.ndarray]:
    idx: list[int] = []
    scores: list[np.ndarray] = []
    for fold in folds:
        train = [r for i, r in enumerate(rows) if i % 5 != fold]
        test = [i for i in range(len(rows)) if i % 5 == fold]
        model = train_router(train, use_embeddings=False, inner_folds=2)
        scores.append(model.score_batch([rows[i].prompt for i in test]))
        idx.extend(test)
    return idx, np.concatenate(scores)


def _apgr(rows: list[Outcome], idx: list[int], scores: np.ndarray) -> float:
    weak = [rows[i].weak_correct for i in idx]
    strong = [rows[i].strong_correct for i in idx]
    return evaluate(scores, weak, strong).apgr


def test_mmlu_router_beats_random_on_held_out_fold() -> None:
    rows = load_outcomes(DATA, "mmlu")
    idx, scores = _held_out_scores(rows, [0])
    assert np.all((scores >= 0) & (scores <= 1))
    assert _apgr(rows, idx, scores) > 0.6  # random is 0.5


def test_gsm8k_router_beats_random_cross_validated() -> None:
    rows = load_outcomes(DATA, "gsm8k")
    idx, scores = _held_out_scores(rows, [0, 1, 2, 3, 4])
    assert sorted(idx) == list(range(len(rows)))
    assert _apgr(rows, idx, scores) > 0.56  # random is 0.5


def test_subject_scorer_recovers_the_subject_from_the_prompt() -> None:
    # Two subjects told apart only by their vocabulary; the strong model alone is right on
    # every chemistry question, both are right on every history one.
    def row(i: int, chem: bool) -> Outcome:
        text = (f"Question {i}: which reagent oxidises the alcohol to an aldehyde in step {i}?"
                if chem else f"Question {i}: which treaty ended the war between the kingdoms "
                f"in year {i}?")
        return Outcome(prompt=text, weak_correct=not chem, strong_correct=True,
                       benchmark="mmlu", subject="chemistry" if chem else "history")

    rows = [row(i, i % 2 == 0) for i in range(60)]
    model = train_router(rows, use_embeddings=False, inner_folds=2)
    assert "tsubject" in model.components
    col = model.components.index("tsubject")
    base = model.base_scores(["Which reagent oxidises a secondary alcohol?",
                              "Which treaty ended the war?"])
    assert base[0, col] > 0.9 and base[1, col] < 0.1  # expected gains +1 and 0
    no_subjects = [Outcome(r.prompt, r.weak_correct, r.strong_correct, "gsm8k") for r in rows]
    assert "tsubject" not in train_router(no_subjects, use_embeddings=False,
                                          inner_folds=2).components
