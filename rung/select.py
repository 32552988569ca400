"""``rung select``: the cheapest candidate of a ``rung bench models`` run that meets a
target, and why each cheaper one does not.

Cheapest means the least compute per answer on the machine that ran the bench (its
mean seconds per item: what a local tier's answer costs here), then the least memory. A
target is any of: an accuracy floor (the point estimate, or with ``lower_bound`` the
95% interval's lower end, for a choice that holds on data the bench did not see), a
latency ceiling per answer, a memory ceiling. The chosen candidate comes with the tier
config that serves it, its test-time-compute strategy included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rung.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Target:
    min_accuracy: float | None = None
    max_ms: float | None = None
    max_mb: float | None = None
    lower_bound: bool = False  # compare the 95% interval's lower end with min_accuracy


@dataclass(frozen=True, slots=True)
class Row:
    """One bench candidate, as ``rung select`` reads it."""

    name: str
    model: str
    path: str | None
    strategy: str | None
    accuracy: float
    ci95: tuple[float, float]
    ms: float  # mean wall time per answer, ms
    mb: float  # peak RSS, MB

    @classmethod
    def of(cls, d: dict[str, Any]) -> Row:
        try:
            n = int(d["n"])
            ci = d.get("ci95") or [d["accuracy"], d["accuracy"]]
            return cls(name=str(d["model"]), model=str(d["model"]).partition("+")[0],
                       path=d.get("path"), strategy=d.get("strategy"),
                       accuracy=float(d["accuracy"]), ci95=(float(ci[0]), float(ci[1])),
                       ms=1000 * float(d["seconds"]) / max(n, 1),
                       mb=float(d["peak_rss_mb"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bench row {d.get('model', '?')!r} lacks {exc}: select reads "
                              "`rung bench models --json` output") from exc


def rows_of(result: dict[str, Any]) -> list[Row]:
    models = result.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError("no models in the bench result (expected `rung bench models "
                          "--json` output: {\"models\": [...]})")
    return [Row.of(m) for m in models if not m.get("error")]


def misses(row: Row, target: Target) -> list[str]:
    """Why ``row`` does not meet ``target`` (empty: it does)."""
    out: list[str] = []
    if target.min_accuracy is not None:
        acc = row.ci95[0] if target.lower_bound else row.accuracy
        what = "accuracy's 95% lower bound" if target.lower_bound else "accuracy"
        if acc < target.min_accuracy:
            out.append(f"{what} {acc:.3f} < {target.min_accuracy:.3f} "
                       f"(accuracy {row.accuracy:.3f}, 95% CI {row.ci95[0]:.3f}-"
                       f"{row.ci95[1]:.3f})")
    if target.max_ms is not None and row.ms > target.max_ms:
        out.append(f"{row.ms:.0f} ms per answer > {target.max_ms:.0f}")
    if target.max_mb is not None and row.mb > target.max_mb:
        out.append(f"peak RSS {row.mb:.0f} MB > {target.max_mb:.0f}")
    return out


@dataclass(frozen=True, slots=True)
class Choice:
    chosen: Row | None
    rejected: list[tuple[Row, list[str]]]  # every cheaper candidate, and why


def select(rows: list[Row], target: Target) -> Choice:
    if target == Target() or target == Target(lower_bound=True):
        raise ConfigError("give a target: --min-accuracy, --max-ms or --max-mb")
    rejected: list[tuple[Row, list[str]]] = []
    for row in sorted(rows, key=lambda r: (r.ms, r.mb)):
        why = misses(row, target)
        if not why:
            return Choice(row, rejected)
        rejected.append((row, why))
    return Choice(None, rejected)


def tier_toml(row: Row) -> str:
    """The ``[[tiers]]`` entry that serves ``row`` as benched."""
    model = row.path or row.model
    lines = ["[[tiers]]", f'name = "{row.name.replace("+", "-")}"',
             f'backend = {{ type = "llama", model = "{model}" }}']
    if row.strategy:
        from rung.ttc import strategy_from_suffix

        strategy = strategy_from_suffix(row.strategy)
        lines += ['effort_default = "high"', f'effort = {{ high = "{strategy}" }}']
    return "\n".join(lines)
