"""Retrieval, tagging and classification metrics as pure, validated functions.

The shape follows mir_eval: one validating step (:func:`validate_scores`), the single metrics,
and an ``evaluate_*`` function that returns an ordered ``dict`` of named scores. Every function
accepts NumPy arrays or torch tensors, never mutates its input, and is deterministic.

Modules, one job each:

- :mod:`~melodex.evaluate.metrics.validation`: input checks and `MetricInputError`;
- :mod:`~melodex.evaluate.metrics.conventions`: `Convention`, the presets ``melodex``, ``ttmr``,
  ``ttmr-pp``, ``clap`` (how ranks are based, medians taken, R@k and AP@k normalised, empty
  queries and ties treated);
- :mod:`~melodex.evaluate.metrics.ranking`: where the relevant items land, per tie rule;
- :mod:`~melodex.evaluate.metrics.retrieval`: R@k, P@k, median/mean rank, MRR, AP@k, nDCG@k;
- :mod:`~melodex.evaluate.metrics.tagging`: ROC-AUC, PR-AUC per tag or per item;
- :mod:`~melodex.evaluate.metrics.classification`: top-k accuracy, triplet and vote accuracy;
- :mod:`melodex.evaluate.bootstrap` (beside this package): confidence intervals.

The melodex convention (the default everywhere): 1-based ranks; pessimistic ties (a relevant item
tied with non-relevant ones is placed after them, so a constant scorer gets rank N and nothing
depends on the order of the gallery); R@k as the share of queries with a hit; AP@k normalised by
min(k, R); queries without a relevant item left out of the means (the bare functions raise unless
told ``empty_queries=``); pairwise metrics (AUC, triplets) count a tie 1/2. Values are fractions
in [0, 1].
"""

from __future__ import annotations

from melodex.evaluate.bootstrap import bootstrap_ci
from melodex.evaluate.metrics.classification import (
    top_k_accuracy,
    triplet_accuracy,
    vote_accuracy,
)
from melodex.evaluate.metrics.conventions import CONVENTIONS, Convention, parse_convention
from melodex.evaluate.metrics.ranking import ranks_of_relevant
from melodex.evaluate.metrics.retrieval import (
    average_precision_at_k,
    evaluate_retrieval,
    jackknife_median,
    map_at_k,
    mean_rank,
    median_rank,
    mrr,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    recall_at_k_fraction,
)
from melodex.evaluate.metrics.tagging import evaluate_tagging, pr_auc, roc_auc
from melodex.evaluate.metrics.validation import MetricInputError, validate_scores

__all__ = [
    "CONVENTIONS",
    "Convention",
    "MetricInputError",
    "average_precision_at_k",
    "bootstrap_ci",
    "evaluate_retrieval",
    "evaluate_tagging",
    "jackknife_median",
    "map_at_k",
    "mean_rank",
    "median_rank",
    "mrr",
    "ndcg_at_k",
    "parse_convention",
    "pr_auc",
    "precision_at_k",
    "ranks_of_relevant",
    "recall_at_k",
    "recall_at_k_fraction",
    "roc_auc",
    "top_k_accuracy",
    "triplet_accuracy",
    "validate_scores",
    "vote_accuracy",
]
