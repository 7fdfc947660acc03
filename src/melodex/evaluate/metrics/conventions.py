"""Metric conventions: the choices on which papers' evaluation code differ, made explicit.

Every retrieval number depends on a handful of choices that papers rarely print. melodex makes
each one a field of `Convention` and ships the choices of each seed paper's own code as named
presets, so a number can be computed the way the paper computed it and every report says which
way it was computed (``Convention.describe()``).

Fields
------
rank_base : 0 or 1
    Rank of the best item: 1 (melodex, CLAP) or 0 (TTMR, TTMR++). Shifts median and mean rank.
median : "plain", "floor" or "jackknife"
    Median rank as ``np.median`` (may end in .5), floored (CLAP: ``floor(median) + 1``), or the
    bias-corrected jackknife estimate of the median (TTMR, through astropy's
    ``jackknife_stats``; equal to the median for an even number of queries, not for odd).
recall : "hit" or "fraction"
    R@k as the share of queries with at least one relevant item in the top k (TTMR, CLAP,
    melodex) or as the fraction of each query's relevant items found in the top k (TTMR++,
    torchmetrics ``RetrievalRecall``). Equal when every query has one relevant item.
ap_norm : "min-k-r", "hits", "relevant" or "none"
    AP@k is ``sum_{i<=k} P@i rel_i / Z`` with Z = min(k, R) (melodex), the number of relevant
    items found in the top k (TTMR++, torchmetrics 1.2.1 ``RetrievalMAP``: one of two relevant
    found at rank 1 scores 1.0), R (CLAP's Clotho audio->text path, the textbook AP@k), or 1
    (TTMR: the sum itself, written for one relevant item). All agree for one relevant item.
empty : "drop" or "zero"
    A query without a relevant item is left out of every mean (melodex) or scores 0 and is
    averaged in (torchmetrics ``empty_target_action="neg"``, sklearn ``ndcg_score``). Ranks do
    not exist for such a query, so median and mean rank always leave it out.
ties : "pessimistic", "optimistic" or "index"
    Order of items with equal scores: relevant after non-relevant (the worst ranking consistent
    with the scores; a constant scorer gets rank N), relevant first (the best), or by position
    in the gallery (a stable sort). The papers' code sorts with unstable sorts (pandas, torch,
    NumPy quicksort), so their tie order is unspecified; with continuous scores ties do not
    occur and all three agree.
ndcg_ties : "rank" or "average"
    nDCG over the ranking chosen by ``ties``, or with the gains of tied items averaged over
    their positions (sklearn ``ndcg_score``, used by TTMR++ for OLGA).
pair_ties : "half" or "second"
    A pairwise comparison (triplet, DIM-SIM vote) whose two similarities are equal counts 1/2
    (chance; melodex, and sklearn's AUC) or as a choice of the second (TTMR++'s
    ``if song1_sim > song2_sim``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from melodex.errors import ParameterError, bad_value

__all__ = ["CONVENTIONS", "Convention", "parse_convention"]

Ties = Literal["pessimistic", "optimistic", "index"]

_CHOICES: dict[str, tuple[Any, ...]] = {
    "rank_base": (0, 1),
    "median": ("plain", "floor", "jackknife"),
    "recall": ("hit", "fraction"),
    "ap_norm": ("min-k-r", "hits", "relevant", "none"),
    "empty": ("drop", "zero"),
    "ties": ("pessimistic", "optimistic", "index"),
    "ndcg_ties": ("rank", "average"),
    "pair_ties": ("half", "second"),
}


@dataclass(frozen=True)
class Convention:
    """One set of metric choices (see the module docstring for each field)."""

    name: str = "melodex"
    rank_base: int = 1
    median: Literal["plain", "floor", "jackknife"] = "plain"
    recall: Literal["hit", "fraction"] = "hit"
    ap_norm: Literal["min-k-r", "hits", "relevant", "none"] = "min-k-r"
    empty: Literal["drop", "zero"] = "drop"
    ties: Ties = "pessimistic"
    ndcg_ties: Literal["rank", "average"] = "rank"
    pair_ties: Literal["half", "second"] = "half"

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed or isinstance(value, bool):
                raise bad_value(name, value, " or ".join(map(str, allowed)))

    def with_options(self, **options: Any) -> Convention:
        """A copy with some fields changed; its name records the changes (``ttmr-pp+ties=index``)."""
        unknown = sorted(set(options) - set(_CHOICES))
        if unknown:
            raise ParameterError(
                f"unknown convention option(s) {unknown}; known: {', '.join(_CHOICES)}"
            )
        changed = {k: v for k, v in options.items() if getattr(self, k) != v}
        if not changed:
            return self
        suffix = ",".join(f"{k}={v}" for k, v in changed.items())
        return replace(self, name=f"{self.name}+{suffix}", **changed)

    def describe(self) -> dict[str, Any]:
        """Every field, for reports and ``results.json``."""
        return asdict(self)

    def summary(self) -> str:
        """One line for a report: the name and every field."""
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if f.name != "name"]
        return f"{self.name} ({', '.join(parts)})"


CONVENTIONS: dict[str, Convention] = {
    "melodex": Convention(),
    "ttmr": Convention(
        "ttmr", rank_base=0, median="jackknife", recall="hit", ap_norm="none", empty="zero"
    ),
    "ttmr-pp": Convention(
        "ttmr-pp",
        rank_base=0,
        median="plain",
        recall="fraction",
        ap_norm="hits",
        empty="zero",
        ndcg_ties="average",
        pair_ties="second",
    ),
    "clap": Convention(
        "clap", rank_base=1, median="floor", recall="hit", ap_norm="relevant", empty="zero"
    ),
}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_convention(
    spec: str | Convention | None = None, overrides: dict[str, Any] | None = None
) -> Convention:
    """``"ttmr-pp"``, ``"melodex:ties=index,empty=zero"`` or a `Convention`, then ``overrides``.

    Raises `ParameterError` naming an unknown preset, option or value.
    """
    if spec is None:
        convention = CONVENTIONS["melodex"]
    elif isinstance(spec, Convention):
        convention = spec
    else:
        name, _, rest = spec.partition(":")
        name = name.strip().lower()
        if name not in CONVENTIONS:
            raise bad_value("conventions", name, " or ".join(CONVENTIONS))
        convention = CONVENTIONS[name]
        options: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = part.partition("=")
            if not eq:
                raise ParameterError(f"convention option {part!r} in {spec!r} is not key=value")
            options[key.strip()] = _value(value.strip())
        convention = convention.with_options(**options)
    return convention.with_options(**(overrides or {}))
