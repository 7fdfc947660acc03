"""Metrics against hand-worked values, a brute-force Python reference and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from melodex.evaluate import (
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
from melodex.evaluate.metrics import ranking as M

approx = pytest.approx


def log2(x: float) -> float:
    return math.log2(x)


# --------------------------------------------------------------------------- hand-worked cases

# one query, four items; ranked order = items 0,1,2,3; relevant = items 1 and 3 -> ranks 2 and 4
S1 = [[0.9, 0.8, 0.7, 0.6]]
R1 = [[0, 1, 0, 1]]


def test_ranks_and_first_rank_metrics_by_hand() -> None:
    assert ranks_of_relevant(S1, R1).tolist() == [[2, 4]]
    assert recall_at_k(S1, R1, 1) == 0.0  # best relevant is at rank 2
    assert recall_at_k(S1, R1, 2) == 1.0
    assert recall_at_k_fraction(S1, R1, 2) == 0.5  # 1 of the 2 relevant in the top 2
    assert recall_at_k_fraction(S1, R1, 4) == 1.0
    assert median_rank(S1, R1) == 2.0
    assert mean_rank(S1, R1) == 2.0
    assert mrr(S1, R1) == 0.5


def test_average_precision_by_hand() -> None:
    # precision at the hits: P@2 = 1/2, P@4 = 2/4; R = 2
    assert average_precision_at_k(S1, R1, None).tolist() == [approx((1 / 2 + 2 / 4) / 2)]
    assert map_at_k(S1, R1, 10) == approx((1 / 2 + 2 / 4) / min(10, 2))  # = 0.5
    assert map_at_k(S1, R1, 2) == approx((1 / 2) / min(2, 2))  # = 0.25, rank-4 hit cut
    assert map_at_k(S1, R1, 1) == 0.0  # nothing relevant in the top 1; / min(1, 2)
    # normalised by min(k, R): 3 relevant, k = 2, both top slots relevant -> 1, not 2/3
    assert map_at_k([[3.0, 2.0, 1.0, 0.0]], [[1, 1, 0, 1]], 2) == 1.0


def test_ndcg_binary_and_graded_by_hand() -> None:
    dcg = 1 / log2(2 + 1) + 1 / log2(4 + 1)  # hits at ranks 2 and 4
    idcg = 1 / log2(1 + 1) + 1 / log2(2 + 1)  # ideal: ranks 1 and 2
    assert ndcg_at_k(S1, R1, 4) == approx(dcg / idcg)
    assert ndcg_at_k(S1, R1, 2) == approx((1 / log2(3)) / idcg)
    # graded: gains 3 (rank 1), 0, 1 (rank 3), 2 (rank 4); ideal order 3, 2, 1
    s, g = [[0.9, 0.8, 0.7, 0.6]], [[3, 0, 1, 2]]
    dcg = 3 / log2(2) + 1 / log2(4) + 2 / log2(5)
    idcg = 3 / log2(2) + 2 / log2(3) + 1 / log2(4)
    assert ndcg_at_k(s, g, 4) == approx(dcg / idcg)
    assert ndcg_at_k(s, g, 1) == 1.0  # 3 / 3


def test_ties_are_pessimistic() -> None:
    # relevant item tied with two non-relevant: ranked after both -> rank 3 (worst of 1..3)
    assert ranks_of_relevant([[0.5, 0.5, 0.5]], [[1, 0, 0]]).tolist() == [[3]]
    assert ranks_of_relevant([[0.5, 0.5, 0.5]], [[0, 0, 1]]).tolist() == [[3]]  # index-blind
    # two relevant tied with one non-relevant: the non-relevant first -> ranks 2 and 3
    assert ranks_of_relevant([[0.5, 0.5, 0.5, 0.1]], [[1, 1, 0, 0]]).tolist() == [[2, 3]]
    assert ranks_of_relevant([[0.5, 0.5, 0.5, 0.1]], [[1, 0, 1, 0]]).tolist() == [[2, 3]]
    # a constant scorer gets the worst possible rank, not the best
    const = np.zeros((4, 4))
    assert median_rank(const, np.eye(4)) == 4.0
    assert recall_at_k(const, np.eye(4), 3) == 0.0
    # graded ties: lower gain first, so gain 1 takes rank 1 and gain 2 rank 2
    dcg = 1 / log2(2) + 2 / log2(3)
    idcg = 2 / log2(2) + 1 / log2(3)
    assert ndcg_at_k([[1.0, 1.0, 0.0]], [[2, 1, 0]], 3) == approx(dcg / idcg)


def test_median_rank_is_one_based() -> None:
    perfect = np.eye(5) + 0.01 * np.arange(5)  # diagonal always wins
    assert median_rank(perfect, np.eye(5)) == 1.0  # not 0
    assert mean_rank(perfect, np.eye(5)) == 1.0
    assert mrr(perfect, np.eye(5)) == 1.0
    assert recall_at_k(perfect, np.eye(5), 1) == 1.0
    # ranks 1, 2, 3, 4 (the relevant item moves down one place per query)
    s = np.tile([4.0, 3.0, 2.0, 1.0], (4, 1))
    assert mean_rank(s, np.eye(4), per_query=True).tolist() == [1, 2, 3, 4]
    assert median_rank(s, np.eye(4)) == 2.5  # mean of the two middle ranks
    assert mean_rank(s, np.eye(4)) == 2.5
    assert mrr(s, np.eye(4)) == approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_tag_aucs_by_hand() -> None:
    s = np.array([0.9, 0.8, 0.7, 0.6])[:, None]  # 4 items, one tag
    y = np.array([1, 0, 1, 0])[:, None]
    # pairs (pos, neg): 0.9>0.8, 0.9>0.6, 0.7<0.8, 0.7>0.6 -> 3 of 4
    assert roc_auc(s, y) == approx(3 / 4)
    # positives at ranks 1 and 3: AP = (1/1 + 2/3) / 2
    assert pr_auc(s, y) == approx((1 + 2 / 3) / 2)
    # ties: one positive tied with one negative, above another negative -> (1/2 + 1) / 2
    st, yt = np.array([[0.5], [0.5], [0.1]]), np.array([[1], [0], [0]])
    assert roc_auc(st, yt) == approx(0.75)
    assert pr_auc(st, yt) == approx(0.5)  # one threshold at 0.5: precision 1/2, recall 1


def test_auc_average_direction_by_hand() -> None:
    # 3 items x 2 tags
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.7]])
    y = np.array([[1, 0], [0, 1], [0, 1]])
    # macro, per tag (columns): tag0 pos {0.9} vs neg {0.2, 0.6} -> 1; tag1 pos {0.8, 0.7} vs
    # neg {0.1} -> 1
    assert roc_auc(s, y, average="macro", per_group=True).tolist() == [1.0, 1.0]
    # per sample (rows): item0 tag0 0.9 > 0.1 -> 1; item1 0.8 > 0.2 -> 1; item2 0.7 > 0.6 -> 1
    assert roc_auc(s, y, average="per_sample") == 1.0
    y2 = np.array([[1, 0], [0, 1], [1, 0]])  # item2 now tagged tag0 (0.6 < 0.7: wrong)
    assert roc_auc(y2 * 0 + s, y2, average="per_sample", per_group=True).tolist() == [1, 1, 0]
    # macro: tag0 pos {0.9, 0.6} vs neg {0.2} -> 1; tag1 pos {0.8} vs neg {0.1, 0.7} -> 1
    assert roc_auc(s, y2, average="macro") == 1.0


def test_top_k_accuracy_and_triplets_by_hand() -> None:
    s = [[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.9, 0.0, 0.3]]
    labels = [1, 0, 2]  # ranks 1; 2 (tied with class 1, pessimistic); 2
    assert top_k_accuracy(s, labels, 1) == approx(1 / 3)
    assert top_k_accuracy(s, labels, 2) == 1.0
    assert top_k_accuracy(s, np.eye(3)[labels], 1) == approx(1 / 3)  # one-hot labels
    # 1 > 0 counts 1, 0.5 == 0.5 counts 1/2, 0.2 < 0.3 counts 0
    assert triplet_accuracy([1.0, 0.5, 0.2], [0.0, 0.5, 0.3]) == approx(1.5 / 3)
    assert triplet_accuracy(np.zeros(7), np.zeros(7)) == 0.5  # constant scorer = chance


# --------------------------------------------------------------------------- brute force


def brute_ranked_gains(scores: np.ndarray, gains: np.ndarray) -> list[list[float]]:
    """Each query's gains in the worst order consistent with the scores, by Python sorting."""
    out = []
    for s_row, g_row in zip(scores.tolist(), gains.tolist(), strict=True):
        order = sorted(range(len(s_row)), key=lambda n: (-s_row[n], g_row[n]))
        out.append([g_row[n] for n in order])
    return out


def brute_metrics(scores: np.ndarray, gains: np.ndarray, k: int) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {
        key: [] for key in ("ranks", "first", "hit", "frac", "ap", "ndcg", "rr")
    }
    for ranked in brute_ranked_gains(scores, gains):
        ranks = [i + 1 for i, g in enumerate(ranked) if g > 0]
        n_rel = len(ranks)
        res["ranks"].append(ranks)
        res["first"].append(ranks[0])
        res["rr"].append(1 / ranks[0])
        res["hit"].append(float(ranks[0] <= k))
        res["frac"].append(sum(r <= k for r in ranks) / n_rel)
        hits, ap = 0, 0.0
        for i, g in enumerate(ranked[:k]):
            if g > 0:
                hits += 1
                ap += hits / (i + 1)
        res["ap"].append(ap / min(k, n_rel))
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(ranked[:k]))
        ideal = sorted(ranked, reverse=True)
        res["ndcg"].append(dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:k])))
    return res


def random_problem(
    seed: int, n_q: int = 30, n_items: int = 40, *, ties: bool, graded: bool = False
):
    rng = np.random.default_rng(seed)
    shape = (n_q, n_items)
    scores = rng.integers(0, 6, shape).astype(float) if ties else rng.standard_normal(shape)
    density = rng.uniform(0.02, 0.9, (n_q, 1))  # from one relevant item to nearly all
    rel = rng.random(shape) < density
    rel[np.arange(n_q), rng.integers(0, n_items, n_q)] = True  # >= 1 relevant per query
    gains = rel * rng.integers(1, 4, shape) if graded else rel
    return scores, gains


@pytest.mark.parametrize("path", ["count", "sort"])
@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_brute_force(seed: int, ties: bool, path: str, monkeypatch) -> None:
    monkeypatch.setattr(M, "_COUNT_PATH_MAX_MEAN_RELEVANT", 10**9 if path == "count" else 0)
    scores, rel = random_problem(seed, ties=ties)
    for k in (1, 3, 10, 100):
        ref = brute_metrics(scores, rel.astype(float), k)
        ranks = ranks_of_relevant(scores, rel)
        assert [row[row > 0].tolist() for row in ranks] == ref["ranks"]
        assert mean_rank(scores, rel, per_query=True).tolist() == ref["first"]
        assert median_rank(scores, rel) == np.median(ref["first"])
        assert mrr(scores, rel, per_query=True) == approx(ref["rr"])
        assert recall_at_k(scores, rel, k, per_query=True).tolist() == ref["hit"]
        assert recall_at_k_fraction(scores, rel, k, per_query=True) == approx(ref["frac"])
        assert average_precision_at_k(scores, rel, k) == approx(ref["ap"])
        assert ndcg_at_k(scores, rel, k, per_query=True) == approx(ref["ndcg"])


@pytest.mark.parametrize("path", ["count", "sort"])
def test_graded_ndcg_against_brute_force(path: str, monkeypatch) -> None:
    monkeypatch.setattr(M, "_COUNT_PATH_MAX_MEAN_RELEVANT", 10**9 if path == "count" else 0)
    for seed in range(3):
        scores, gains = random_problem(seed, ties=True, graded=True)
        for k in (1, 5, 40):
            ref = brute_metrics(scores, gains.astype(float), k)
            assert ndcg_at_k(scores, gains, k, per_query=True) == approx(ref["ndcg"])


def brute_auc(s: list[float], y: list[int]) -> float:
    pos = [a for a, t in zip(s, y, strict=True) if t]
    neg = [a for a, t in zip(s, y, strict=True) if not t]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_auc_against_brute_force_and_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for ties in (True, False):
        s = rng.integers(0, 4, (60, 7)).astype(float) if ties else rng.standard_normal((60, 7))
        y = rng.random((60, 7)) < rng.uniform(0.05, 0.6, 7)
        y[0], y[1] = True, False  # every tag has positives and negatives
        per_tag_roc = roc_auc(s, y, per_group=True)
        per_tag_pr = pr_auc(s, y, per_group=True)
        for t in range(7):
            assert per_tag_roc[t] == approx(brute_auc(s[:, t].tolist(), y[:, t].tolist()))
            assert per_tag_roc[t] == approx(sk.roc_auc_score(y[:, t], s[:, t]))
            assert per_tag_pr[t] == approx(sk.average_precision_score(y[:, t], s[:, t]))
        assert roc_auc(s, y) == approx(sk.roc_auc_score(y, s, average="macro"))
        assert pr_auc(s, y) == approx(sk.average_precision_score(y, s, average="macro"))
        # per_sample = sklearn "samples"; keep only rows with both classes (sklearn needs it)
        rows = y.any(1) & ~y.all(1)
        assert roc_auc(s[rows], y[rows], average="per_sample") == approx(
            sk.roc_auc_score(y[rows], s[rows], average="samples")
        )
        assert pr_auc(s[rows], y[rows], average="per_sample") == approx(
            sk.average_precision_score(y[rows], s[rows], average="samples")
        )


def test_against_sklearn_ranking_metrics_without_ties() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    scores, gains = random_problem(4, ties=False, graded=True)
    for k in (1, 5, 40):
        assert ndcg_at_k(scores, gains, k) == approx(sk.ndcg_score(gains, scores, k=k))
    # untruncated AP of each query = sklearn average precision of that row
    rel = gains > 0
    assert average_precision_at_k(scores, rel) == approx(
        [sk.average_precision_score(r, s) for r, s in zip(rel, scores, strict=True)]
    )
    s = rng.standard_normal((50, 6))
    labels = rng.integers(0, 6, 50)
    for k in (1, 2, 5):
        expected = sk.top_k_accuracy_score(labels, s, k=k, labels=np.arange(6))
        assert top_k_accuracy(s, labels, k) == approx(expected)


# --------------------------------------------------------------------------- edge cases


def test_single_item_all_relevant_and_large_k() -> None:
    one = ([[0.3]], [[1]])
    assert ranks_of_relevant(*one).tolist() == [[1]]
    assert median_rank(*one) == 1.0
    assert recall_at_k(*one, 10) == 1.0
    assert map_at_k(*one, 10) == 1.0
    assert ndcg_at_k(*one, 10) == 1.0
    s = np.random.default_rng(0).integers(0, 3, (3, 5)).astype(float)  # ties, all relevant
    full = np.ones((3, 5), bool)
    assert map_at_k(s, full, 10) == 1.0
    assert ndcg_at_k(s, full, 3) == 1.0
    assert recall_at_k(s, full, 1) == 1.0
    assert recall_at_k_fraction(s, full, 5) == 1.0
    assert mean_rank(s, full) == 1.0
    # k larger than N behaves as k = N
    s, r = np.array(S1), np.array(R1)
    assert recall_at_k(s, r, 100) == recall_at_k(s, r, 4) == 1.0
    assert map_at_k(s, r, 100) == map_at_k(s, r, 4) == map_at_k(s, r, None)
    assert ndcg_at_k(s, r, 100) == ndcg_at_k(s, r, 4)


def test_queries_without_relevant_items() -> None:
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.4]])
    r = np.array([[1, 0], [0, 0], [0, 1]])
    with pytest.raises(
        MetricInputError, match=r"1 of 3 queries have no relevant item \(first: \[1\]\)"
    ):
        recall_at_k(s, r, 1)
    with pytest.raises(ValueError, match="empty_queries='exclude'"):
        evaluate_retrieval(s, r)
    per_q = recall_at_k(s, r, 1, per_query=True, empty_queries="exclude")
    assert per_q[0] == 1.0 and np.isnan(per_q[1]) and per_q[2] == 0.0
    assert recall_at_k(s, r, 1, empty_queries="exclude") == 0.5  # mean over the 2 kept
    assert median_rank(s, r, empty_queries="exclude") == 1.5  # ranks 1 and 2
    assert ranks_of_relevant(s, r, empty_queries="exclude").tolist() == [[1], [0], [2]]
    out = evaluate_retrieval(s, r, empty_queries="exclude")
    assert out["n_queries"] == 2 and out["n_queries_excluded"] == 1
    assert out["R@1"] == 0.5 and out["median_rank"] == 1.5
    with pytest.raises(MetricInputError, match="no query has a relevant item"):
        mrr(s, np.zeros((3, 2)), empty_queries="exclude")


def test_auc_skips_and_counts_one_class_columns() -> None:
    s = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.6, 0.7, 0.5]])
    y = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1]])  # tag 2 has no negatives
    # tag0: pos {0.9} vs neg {0.2, 0.6} -> 1; tag1: pos {0.7} vs neg {0.1, 0.8} -> 1/2
    per_tag = roc_auc(s, y, per_group=True)
    assert per_tag[:2].tolist() == [1.0, 0.5] and np.isnan(per_tag[2])
    # AP tag0 = 1; tag1 ranked 0.8 (neg), 0.7 (pos) -> P@2 = 1/2
    assert pr_auc(s, y, per_group=True)[:2].tolist() == [1.0, 0.5]
    assert np.isnan(pr_auc(s, y, per_group=True)[2])  # skipped by both, same tags averaged
    out = evaluate_tagging(s, y)
    assert out == {"ROC-AUC": 0.75, "PR-AUC": 0.75, "n_groups": 3, "n_groups_skipped": 1}
    with pytest.raises(MetricInputError, match="only positives or only negatives"):
        roc_auc(s, np.ones((3, 3)))


@pytest.mark.parametrize(
    ("scores", "relevance", "match"),
    [
        (np.zeros((2, 3)), np.zeros((3, 2)), r"relevance shape \(3, 2\) does not match"),
        (np.zeros(3), np.zeros(3), r"scores must be 2-D .* got shape \(3,\)"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "scores is empty"),
        ([[0.1, np.nan]], [[1, 0]], r"finite: 1 NaN/inf value\(s\), first at \[0, 1\]"),
        ([[0.1, np.inf]], [[1, 0]], "must be finite"),
        ([[True, False]], [[1, 0]], "were scores and relevance swapped"),
        ([[0.1, 0.2]], [[2, 0]], "boolean or 0/1, found value 2"),
        ([["a", "b"]], [[1, 0]], "numeric array"),
    ],
)
def test_validation_errors_name_the_problem(scores, relevance, match) -> None:
    with pytest.raises(MetricInputError, match=match):
        validate_scores(scores, relevance)


def test_option_errors() -> None:
    with pytest.raises(MetricInputError, match="k must be an integer >= 1, got 0"):
        recall_at_k(S1, R1, 0)
    with pytest.raises(MetricInputError, match="gains must be >= 0"):
        ndcg_at_k(S1, [[0, -1, 0, 1]], 2)
    with pytest.raises(MetricInputError, match="empty_queries must be"):
        mrr(S1, R1, empty_queries="drop")  # type: ignore[arg-type]
    with pytest.raises(MetricInputError, match="average must be"):
        roc_auc(S1, R1, average="micro")  # type: ignore[arg-type]
    with pytest.raises(MetricInputError, match=r"labels must lie in \[0, 3\)"):
        top_k_accuracy([[0.1, 0.2, 0.3]], [3])
    with pytest.raises(MetricInputError, match="shape"):
        triplet_accuracy([1.0, 2.0], [1.0])
    with pytest.raises(MetricInputError, match="drop the NaN"):
        bootstrap_ci([1.0, np.nan])


def test_accepts_torch_and_does_not_mutate() -> None:
    scores, rel = random_problem(5, ties=True)
    before = scores.copy()
    expected = evaluate_retrieval(scores, rel, n_resamples=50)
    got = evaluate_retrieval(torch.from_numpy(scores), torch.from_numpy(rel), n_resamples=50)
    assert got == expected
    assert np.array_equal(scores, before)
    half = torch.tensor(S1, dtype=torch.bfloat16)
    assert median_rank(half, torch.tensor(R1)) == 2.0


# --------------------------------------------------------------------------- bootstrap, evaluate


def test_bootstrap_ci_contains_mean_and_is_seeded() -> None:
    values = np.random.default_rng(6).random(200) < 0.3
    mean, low, high = bootstrap_ci(values)
    assert mean == approx(values.mean())
    assert low < mean < high
    assert bootstrap_ci(values, seed=0) == (mean, low, high)  # same seed, same interval
    assert bootstrap_ci(values, seed=1) != (mean, low, high)
    _, low99, high99 = bootstrap_ci(values, confidence=0.99)
    assert low99 <= low and high <= high99
    assert bootstrap_ci(np.full(10, 3.0)) == (3.0, 3.0, 3.0)
    med, mlow, mhigh = bootstrap_ci([1, 1, 2, 5, 9], statistic="median")
    assert med == 2.0 and mlow <= med <= mhigh


def test_evaluate_retrieval_keys_order_and_consistency() -> None:
    scores, rel = random_problem(7, n_q=80, n_items=50, ties=True)
    out = evaluate_retrieval(scores, rel, seed=3)
    names = ["R@1", "R@5", "R@10", "median_rank", "mean_rank", "MRR", "mAP@10", "nDCG@10"]
    expected_keys = [x for n in names for x in (n, f"{n}_ci_low", f"{n}_ci_high")]
    assert list(out) == [
        *expected_keys,
        "n_queries",
        "n_queries_excluded",
        "n_queries_scored_zero",
        "n_items",
    ]
    assert out["R@5"] == recall_at_k(scores, rel, 5)
    assert out["median_rank"] == median_rank(scores, rel)
    assert out["MRR"] == approx(mrr(scores, rel))
    assert out["mAP@10"] == approx(map_at_k(scores, rel, 10))
    assert out["nDCG@10"] == approx(ndcg_at_k(scores, rel, 10))
    for n in names:
        assert out[f"{n}_ci_low"] <= out[n] <= out[f"{n}_ci_high"]
    # the same resampled queries as bootstrap_ci with the same seed
    per_q = recall_at_k(scores, rel, 10, per_query=True)
    assert bootstrap_ci(per_q, seed=3) == approx(
        (out["R@10"], out["R@10_ci_low"], out["R@10_ci_high"])
    )
    assert evaluate_retrieval(scores, rel, seed=3) == out


def test_a_large_matrix_agrees_with_the_per_query_definition() -> None:
    """2000 x 2000 (speed belongs to benchmarks; this checks the vectorised path's values)."""
    rng = np.random.default_rng(8)
    n = 2000
    scores = rng.standard_normal((n, n), dtype=np.float32)
    scores[np.arange(n), np.arange(n)] += 2.0
    out = evaluate_retrieval(scores, np.eye(n, dtype=bool))
    ranks = (scores > scores[np.arange(n), np.arange(n)][:, None]).sum(axis=1)  # 0-based
    assert out["n_queries"] == n
    assert out["R@1"] == pytest.approx(float(np.mean(ranks < 1)))
    assert out["R@10"] == pytest.approx(float(np.mean(ranks < 10)))


def test_track_clustered_bootstrap_is_wider_with_repeated_captions() -> None:
    """Five near-identical captions per track: resampling captions as if independent gives a
    too-narrow interval; resampling tracks gives the honest, wider one. With one caption per
    track both schemes agree in distribution (same width up to resampling noise)."""
    rng = np.random.default_rng(0)
    per_track = rng.random(40) < 0.5  # hit or miss per track
    values = np.repeat(per_track.astype(float), 5)  # five captions share the track's outcome
    tracks = np.repeat(np.arange(40), 5)
    point, low, high = bootstrap_ci(values, n_resamples=2000)
    cpoint, clow, chigh = bootstrap_ci(values, n_resamples=2000, clusters=tracks)
    assert point == cpoint
    assert (chigh - clow) > 1.8 * (high - low)  # ~sqrt(5) wider
    single = per_track.astype(float)
    _, slow, shigh = bootstrap_ci(single, n_resamples=2000)
    _, s2low, s2high = bootstrap_ci(single, n_resamples=2000, clusters=np.arange(40))
    assert abs((shigh - slow) - (s2high - s2low)) < 0.06
    # evaluate_retrieval passes clusters through to every metric's interval
    scores = rng.normal(size=(200, 40))
    rel = np.zeros((200, 40), dtype=bool)
    rel[np.arange(200), tracks] = True
    scores[rel] += np.repeat(np.where(per_track, 5.0, -5.0), 5)
    plain = evaluate_retrieval(scores, rel, ks=(1,))
    clustered = evaluate_retrieval(scores, rel, ks=(1,), clusters=tracks)
    assert plain["R@1"] == clustered["R@1"]
    width = clustered["R@1_ci_high"] - clustered["R@1_ci_low"]
    assert width > 1.5 * (plain["R@1_ci_high"] - plain["R@1_ci_low"])
    with pytest.raises(MetricInputError):
        bootstrap_ci(values, clusters=tracks[:-1])
