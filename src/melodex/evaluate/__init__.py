"""Evaluation: retrieval, tagging and classification metrics as pure, validated functions.

Conventions (1-based ranks, pessimistic ties, AP@k normalised by min(k, R), macro AUC over
tags) are documented in :mod:`melodex.evaluate.metrics`.
"""

from __future__ import annotations

from melodex.evaluate.metrics import (
    MetricInputError,
    average_precision_at_k,
    bootstrap_ci,
    evaluate_retrieval,
    evaluate_tagging,
    map_at_k,
    mean_rank,
    median_rank,
    mrr,
    ndcg_at_k,
    pr_auc,
    ranks_of_relevant,
    recall_at_k,
    recall_at_k_fraction,
    roc_auc,
    top_k_accuracy,
    triplet_accuracy,
    validate_scores,
)

__all__ = [
    "MetricInputError",
    "average_precision_at_k",
    "bootstrap_ci",
    "evaluate_retrieval",
    "evaluate_tagging",
    "map_at_k",
    "mean_rank",
    "median_rank",
    "mrr",
    "ndcg_at_k",
    "pr_auc",
    "ranks_of_relevant",
    "recall_at_k",
    "recall_at_k_fraction",
    "roc_auc",
    "top_k_accuracy",
    "triplet_accuracy",
    "validate_scores",
]
