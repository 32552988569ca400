"""Load RouteLLM-format outcome tables into small typed records.

A ``columns.json`` beside a benchmark's CSV (``{"weak": COL, "strong": COL}``, written by
``rung eval run`` for rung's own tiers) names other weak/strong columns.

The format is RouteLLM's published one: per benchmark, one row per question with the
prompt and whether the weak (Mixtral-8x7B) and strong (GPT-4) models got it right. MMLU is
split into one CSV per subject; GSM8K also carries both models' full answers. Prompts listed
in a benchmark's ``contaminated_prompts.jsonl`` are dropped, as RouteLLM does.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from rung.errors import ConfigError

WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_MODEL = "gpt-4-1106-preview"
# "traffic": an outcome table exported from live traces (rung traces export --format
# outcomes), labelled by the cascade's own verdicts.
BENCHMARKS = ("mmlu", "gsm8k", "humaneval", "traffic")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question and how each model did on it."""

    prompt: str
    weak_correct: bool
    strong_correct: bool
    benchmark: str
    subject: str | None = None
    weak_response: str | None = None
    strong_response: str | None = None

    @property
    def gain(self) -> int:
        """+1 when only the strong model is right, -1 when only the weak one is, else 0."""
        return int(self.strong_correct) - int(self.weak_correct)


def parse_benchmarks(spec: str) -> tuple[str, ...]:
    """Split ``"mmlu,gsm8k"`` into known benchmark names; reject unknown ones."""
    names = tuple(n.strip().lower() for n in spec.split(",") if n.strip())
    if not names:
        raise ConfigError("no benchmark named (use e.g. --benchmark mmlu,gsm8k)")
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    return names


def load_outcomes(data_dir: str | Path, benchmark: str) -> list[Outcome]:
    """Every uncontaminated outcome of ``benchmark`` under ``data_dir``, in file order."""
    root = Path(data_dir)
    if benchmark == "mmlu":
        files = sorted((root / "mmlu" / "responses").glob("mmlu_*.csv"))
    elif benchmark in BENCHMARKS:
        files = [root / benchmark / f"{benchmark}_responses.csv"]
    else:
        raise ConfigError(f"unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    weak, strong = WEAK_MODEL, STRONG_MODEL
    columns = root / benchmark / "columns.json"
    if columns.is_file():
        names = json.loads(columns.read_text())
        weak, strong = str(names["weak"]), str(names["strong"])
    files = [f for f in files if f.is_file()]
    if not files:
        raise ConfigError(f"no {benchmark} outcome files under {root}")
    banned = _contaminated(root / benchmark / "contaminated_prompts.jsonl")
    out: list[Outcome] = []
    for path in files:
        subject = path.stem.removeprefix("mmlu_") if benchmark == "mmlu" else None
        out.extend(_read_csv(path, benchmark=benchmark, subject=subject, banned=banned,
                             weak=weak, strong=strong))
    return out


def load_many(data_dir: str | Path, benchmarks: tuple[str, ...]) -> list[Outcome]:
    """Outcomes of several benchmarks, concatenated in the order given."""
    return [o for b in benchmarks for o in load_outcomes(data_dir, b)]


def _contaminated(path: Path) -> frozenset[str]:
    if not path.is_file():
        return frozenset()
    prompts: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if isinstance(row.get("eval_prompt"), str):
                prompts.add(row["eval_prompt"].strip())
    return frozenset(prompts)


def _flag(value: str | None, *, path: Path, column: str) -> bool:
    text = (value or "").strip().lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    raise ConfigError(f"{path.name}: column {column!r} has {value!r}, expected True/False")


def _read_csv(
    path: Path, *, benchmark: str, subject: str | None, banned: frozenset[str],
    weak: str = WEAK_MODEL, strong: str = STRONG_MODEL,
) -> list[Outcome]:
    rows: list[Outcome] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        for col in ("prompt", weak, strong):
            if col not in fields:
                raise ConfigError(f"{path}: missing column {col!r}")
        for row in reader:
            prompt = row["prompt"]
            if prompt.strip() in banned:
                continue
            rows.append(
                Outcome(
                    prompt=prompt,
                    weak_correct=_flag(row[weak], path=path, column=weak),
                    strong_correct=_flag(row[strong], path=path, column=strong),
                    benchmark=benchmark,
                    subject=subject,
                    weak_response=row.get(f"{weak}_response"),
                    strong_response=row.get(f"{strong}_response"),
                )
            )
    return rows
