"""Evaluation: retrieval, tagging and classification metrics as pure, validated functions, the
seed papers' tasks, and reports.

Conventions (1-based ranks, pessimistic ties, AP@k normalised by min(k, R), macro AUC over tags,
and the presets that reproduce each paper's code) are documented in
:mod:`melodex.evaluate.metrics`.
"""

from __future__ import annotations

from melodex.evaluate.metrics import (
    CONVENTIONS,
    Convention,
    MetricInputError,
    average_precision_at_k,
    bootstrap_ci,
    evaluate_retrieval,
    evaluate_tagging,
    jackknife_median,
    map_at_k,
    mean_rank,
    median_rank,
    mrr,
    ndcg_at_k,
    parse_convention,
    pr_auc,
    precision_at_k,
    ranks_of_relevant,
    recall_at_k,
    recall_at_k_fraction,
    roc_auc,
    top_k_accuracy,
    triplet_accuracy,
    validate_scores,
    vote_accuracy,
)

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
