"""Each metric convention against the seed papers' own metric code.

The reference functions below are plain ports of the authors' code, made only for these tests
(behaviour ported, not text vendored; attribution on each). The papers' code sorts with unstable
sorts (pandas, torch, NumPy quicksort), so on tied scores its order is unspecified: the ports
use a stable descending sort, and melodex is compared on tied inputs with ``ties="index"`` (the
same stable order); the presets' own tie rule (pessimistic) is compared on tie-free inputs.
Where the real library is installed (scikit-learn, torchmetrics) it is called directly too.

Inputs cover ties, several relevant items per query, queries with none, and k > N.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melodex.errors import ParameterError
from melodex.evaluate import (
    CONVENTIONS,
    average_precision_at_k,
    evaluate_retrieval,
    jackknife_median,
    map_at_k,
    mean_rank,
    median_rank,
    mrr,
    ndcg_at_k,
    parse_convention,
    precision_at_k,
    recall_at_k,
    vote_accuracy,
)

approx = pytest.approx


def stable_desc(row: np.ndarray) -> np.ndarray:
    return np.argsort(-row, kind="stable")


# ------------------------------------------------------------------ reference implementations


def ref_torchmetrics_1_2_1(
    scores: np.ndarray, target: np.ndarray, metric: str, top_k: int | None = None
) -> float:
    """torchmetrics 1.2.1 (Apache-2.0; pinned by TTMR++ setup.py): ``RetrievalMetric.compute``
    with ``empty_target_action="neg"`` over ``retrieval_recall``, ``retrieval_average_precision``
    and ``retrieval_reciprocal_rank`` (src/torchmetrics/functional/retrieval/*.py of v1.2.1)."""
    res = []
    for preds, t in zip(scores, target.astype(bool), strict=True):
        if not t.sum():
            res.append(0.0)  # "neg"
            continue
        order = stable_desc(preds)
        if metric == "recall":
            k = preds.shape[-1] if top_k is None else top_k
            res.append(t[order][:k].sum() / t.sum())
        elif metric == "map":
            k = top_k or preds.shape[-1]
            tt = t[order[: min(k, preds.shape[-1])]]
            if not tt.sum():
                res.append(0.0)
                continue
            positions = np.arange(1, len(tt) + 1, dtype=float)[tt]
            res.append(float(np.mean((np.arange(len(positions)) + 1) / positions)))
        elif metric == "mrr":
            tt = t[order]
            res.append(1.0 / (np.flatnonzero(tt)[0] + 1.0))
    return float(np.mean(res))


def ref_ttmrpp_median_rank(scores: np.ndarray, target: np.ndarray) -> float:
    """TTMR++ ``mtrpp/utils/metrics.py: median_rank`` (seungheondoh/music-text-representation-pp,
    4bc7aa7): the 0-based rank of each query's best target, ``np.median`` over queries."""
    results = []
    for row, t in zip(scores, target.astype(bool), strict=True):
        desc = stable_desc(row)
        targets = set(np.flatnonzero(t))
        results.append(min(idx for idx, i in enumerate(desc) if i in targets))
    return float(np.median(results))


def ref_astropy_jackknife_median(data: np.ndarray) -> float:
    """astropy ``stats.jackknife_stats(data, np.median)[0]`` (BSD-3): the bias-corrected
    estimate from the n leave-one-out medians."""
    n = data.shape[0]
    resamples = np.stack([np.delete(data, i) for i in range(n)])
    stat = np.median(data)
    mean_jack = np.mean(np.median(resamples, axis=1))
    return float(stat - (n - 1) * (mean_jack - stat))


def ref_ttmr_rank_eval(scores: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """TTMR ``mtr/utils/eval_utils.py: rank_eval`` (seungheondoh/music-text-representation,
    5e54e0d): one positive per query; R@k = ``sum(preds[:k])``, mAP@10 = sum over hits of
    i / position, median of the 0-based rank, each through astropy's jackknife (the mean's
    estimate is the mean itself)."""
    r1, r5, r10, ap10, med = [], [], [], [], []
    for row, pos in zip(scores, positive, strict=True):
        preds = stable_desc(row) == pos
        med.append(int(np.flatnonzero(preds)[0]))
        r1.append(float(np.sum(preds[:1])))
        r5.append(float(np.sum(preds[:5])))
        r10.append(float(np.sum(preds[:10])))
        positions = np.arange(1, 11, dtype=float)[preds[:10] > 0]
        ap10.append(float(np.sum(np.arange(1, len(positions) + 1) / positions)))
    return {
        "R@1": np.mean(r1),
        "R@5": np.mean(r5),
        "R@10": np.mean(r10),
        "mAP@10": np.mean(ap10),
        "median_rank": ref_astropy_jackknife_median(np.asarray(med, dtype=float)),
    }


def ref_clap_get_metrics(logits: np.ndarray) -> dict[str, float]:
    """LAION-CLAP ``src/laion_clap/training/train.py: get_metrics`` (CC0, 1fd4c37), one
    direction: ground truth on the diagonal, r = 0-based position of it."""
    preds = np.array(
        [int(np.flatnonzero(stable_desc(row) == i)[0]) for i, row in enumerate(logits)]
    )
    out = {
        "mean_rank": preds.mean() + 1,
        "median_rank": np.floor(np.median(preds)) + 1,
        "mAP@10": np.mean(np.where(preds < 10, 1 / (preds + 1), 0.0)),
    }
    for k in (1, 5, 10):
        out[f"R@{k}"] = np.mean(preds < k)
    return out


def ref_won_precision_at_10(scores: np.ndarray, ground_truth: np.ndarray) -> list[float]:
    """Won et al. 2021 ``train/solver.py: get_precision`` (minzwon/tag-based-music-retrieval,
    MIT): per tag, ``precision_score(gt[top10], ones(10))`` with sklearn."""
    from sklearn.metrics import precision_score

    out = []
    for row, gt in zip(scores, ground_truth, strict=True):
        top = stable_desc(row)[:10]
        out.append(float(precision_score(gt[top], np.ones(10), zero_division=0)))
    return out


def ref_dimsim_accuracy(sim1: np.ndarray, sim2: np.ndarray, votes: np.ndarray) -> float:
    """TTMR++ ``mtrpp/evaluation/eval_dimsim.py``: predict song1 iff sim1 > sim2, then
    ``sklearn.metrics.accuracy_score(song1_vote, pred)``."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(votes, (sim1 > sim2).astype(int)))


# ------------------------------------------------------------------ inputs


def problem(seed: int, n_q: int = 25, n_items: int = 12, *, ties: bool, empty: bool):
    """Several relevant items per query, some queries with none (``empty``), ties or not."""
    rng = np.random.default_rng(seed)
    shape = (n_q, n_items)
    scores = rng.integers(0, 5, shape).astype(float) if ties else rng.standard_normal(shape)
    rel = rng.random(shape) < rng.uniform(0.05, 0.5, (n_q, 1))
    rel[np.arange(n_q), rng.integers(0, n_items, n_q)] = True
    if empty:
        rel[::6] = False
    return scores, rel


CASES = [(s, t, e) for s in (0, 1) for t in (True, False) for e in (True, False)]


# ------------------------------------------------------------------ ttmr-pp (torchmetrics 1.2.1)


@pytest.mark.parametrize(("seed", "ties", "empty"), CASES)
def test_ttmr_pp_matches_torchmetrics_1_2_1_and_its_median_rank(seed, ties, empty) -> None:
    scores, rel = problem(seed, ties=ties, empty=empty)
    conv = "ttmr-pp:ties=index" if ties else "ttmr-pp"
    opts = {"empty_queries": None, "convention": conv}
    for k in (1, 5, 10, 50):  # 50 > N = 12
        assert recall_at_k(scores, rel, k, **opts) == approx(
            ref_torchmetrics_1_2_1(scores, rel, "recall", k)
        )
        assert map_at_k(scores, rel, k, **opts) == approx(
            ref_torchmetrics_1_2_1(scores, rel, "map", k)
        )
    assert mrr(scores, rel, **opts) == approx(ref_torchmetrics_1_2_1(scores, rel, "mrr"))
    has = rel.any(1)  # TTMR++'s median rank takes min() of each query's target ranks
    assert median_rank(scores, rel, **opts) == ref_ttmrpp_median_rank(scores[has], rel[has])
    out = evaluate_retrieval(scores, rel, ks=(1, 5, 50), convention=conv, empty_queries=None)
    assert out["R@50"] == approx(ref_torchmetrics_1_2_1(scores, rel, "recall", 50))
    assert out["mAP@10"] == approx(ref_torchmetrics_1_2_1(scores, rel, "map", 10))
    assert out["MRR"] == approx(ref_torchmetrics_1_2_1(scores, rel, "mrr"))
    assert out["median_rank"] == ref_ttmrpp_median_rank(scores[has], rel[has])
    assert out["n_queries"] == len(scores) and out["n_queries_excluded"] == 0
    assert out["n_queries_scored_zero"] == int((~has).sum())


def test_ttmr_pp_map_divides_by_the_hits_not_by_the_relevant() -> None:
    # two relevant, one found at rank 1, the other beyond the top 10: 1.0 (melodex: 0.5)
    s = np.array([np.linspace(1, 0, 20)])
    r = np.zeros((1, 20), bool)
    r[0, [0, 15]] = True
    assert map_at_k(s, r, 10, convention="ttmr-pp") == 1.0
    assert map_at_k(s, r, 10) == 0.5
    assert recall_at_k(s, r, 10, convention="ttmr-pp") == 0.5  # fraction found
    assert recall_at_k(s, r, 10) == 1.0  # hit


@pytest.mark.heavy  # importing torchmetrics takes seconds
def test_installed_torchmetrics_agrees_where_it_has_not_changed() -> None:
    tm = pytest.importorskip("torchmetrics.retrieval")
    rng = np.random.default_rng(5)
    scores, rel = problem(5, ties=False, empty=True)
    scores = 1.0 + rng.random(scores.shape)  # > 0: torchmetrics >= 1.3 drops non-positive preds
    idx = torch.arange(len(scores))[:, None].repeat(1, scores.shape[1])
    for k in (1, 5):
        metric = tm.RetrievalRecall(top_k=k)
        ref = metric(torch.tensor(scores), torch.tensor(rel), indexes=idx).item()
        assert recall_at_k(scores, rel, k, empty_queries=None, convention="ttmr-pp") == approx(ref)
    ref = tm.RetrievalMRR()(torch.tensor(scores), torch.tensor(rel), indexes=idx).item()
    assert mrr(scores, rel, empty_queries="zero") == approx(ref)


# ------------------------------------------------------------------ ttmr


@pytest.mark.parametrize("n", [7, 8, 31])  # the jackknife differs from the median for odd n
def test_ttmr_matches_rank_eval_with_jackknife(n: int) -> None:
    rng = np.random.default_rng(n)
    scores = rng.standard_normal((n, 40))
    positive = rng.integers(0, 40, n)
    rel = np.zeros_like(scores, dtype=bool)
    rel[np.arange(n), positive] = True
    ref = ref_ttmr_rank_eval(scores, positive)
    out = evaluate_retrieval(scores, rel, convention="ttmr")
    for key in ("R@1", "R@5", "R@10", "mAP@10", "median_rank"):
        assert out[key] == approx(ref[key]), key
    assert median_rank(scores, rel, convention="ttmr") == approx(ref["median_rank"])


def test_ttmr_with_ties_in_stable_order() -> None:
    rng = np.random.default_rng(9)
    scores = rng.integers(0, 4, (15, 30)).astype(float)
    positive = rng.integers(0, 30, 15)
    rel = np.zeros_like(scores, dtype=bool)
    rel[np.arange(15), positive] = True
    ref = ref_ttmr_rank_eval(scores, positive)
    out = evaluate_retrieval(scores, rel, convention="ttmr:ties=index")
    for key in ("R@1", "R@5", "R@10", "mAP@10", "median_rank"):
        assert out[key] == approx(ref[key]), key


def test_jackknife_median_against_astropy_port() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 4, 5, 10, 11, 100, 101):
        x = rng.integers(0, 50, n).astype(float)
        assert jackknife_median(x) == approx(ref_astropy_jackknife_median(x))
    x = np.array([0, 1, 2, 50, 60, 61, 70.0])  # odd n: far from the median 50
    assert jackknife_median(x) != approx(np.median(x))


# ------------------------------------------------------------------ clap


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("n", [6, 9, 12])  # 6 < 10: k > N for R@10 and mAP@10
def test_clap_matches_get_metrics(n: int, ties: bool) -> None:
    rng = np.random.default_rng(n + ties)
    logits = rng.integers(0, 3, (n, n)).astype(float) if ties else rng.standard_normal((n, n))
    ref = ref_clap_get_metrics(logits)
    conv = "clap:ties=index" if ties else "clap"
    out = evaluate_retrieval(logits, np.eye(n, dtype=bool), convention=conv)
    for key in ("R@1", "R@5", "R@10", "mAP@10", "median_rank", "mean_rank"):
        assert out[key] == approx(ref[key]), key


def test_clap_median_is_floored_and_one_based() -> None:
    s = np.tile([4.0, 3.0, 2.0, 1.0], (4, 1))  # 0-based ranks 0, 1, 2, 3: median 1.5
    eye = np.eye(4, dtype=bool)
    assert median_rank(s, eye, convention="clap") == 2.0  # floor(1.5) + 1
    assert median_rank(s, eye) == 2.5  # melodex: 1-based, not floored
    assert median_rank(s, eye, convention="ttmr-pp") == 1.5  # 0-based
    assert mean_rank(s, eye, convention="ttmr-pp") == 1.5


# ------------------------------------------------------------------ sklearn ndcg (OLGA)


@pytest.mark.parametrize(("seed", "ties", "empty"), CASES)
def test_tie_averaged_ndcg_is_sklearns(seed, ties, empty) -> None:
    from sklearn.metrics import ndcg_score

    scores, rel = problem(seed, ties=ties, empty=empty)
    gains = rel * np.random.default_rng(seed).integers(1, 3, rel.shape)  # grades 1 and 2
    for k in (1, 5, 200):  # 200 > N
        ours = ndcg_at_k(scores, gains, k, empty_queries=None, convention="ttmr-pp")
        assert ours == approx(ndcg_score(gains, scores, k=k))


# ------------------------------------------------------------------ Won et al. P@10


@pytest.mark.parametrize("ties", [True, False])
def test_precision_at_10_matches_won_et_al(ties: bool) -> None:
    rng = np.random.default_rng(ties)
    scores = rng.integers(0, 4, (20, 30)).astype(float) if ties else rng.standard_normal((20, 30))
    gt = rng.random((20, 30)) < rng.uniform(0.05, 0.6, (20, 1))
    gt[:, 0] = True
    ref = ref_won_precision_at_10(scores, gt)
    conv = "melodex:ties=index" if ties else None
    ours = precision_at_k(scores, gt, 10, per_query=True, convention=conv)
    assert ours == approx(ref)
    # k > N: the top k is the gallery, the divisor stays k
    assert precision_at_k([[0.3, 0.2]], [[1, 1]], 10) == 0.2


def test_dimsim_vote_accuracy_matches_ttmr_pp_including_ties() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 3, 50).astype(float), rng.integers(0, 3, 50).astype(float)
    votes = rng.integers(0, 2, 50)
    assert vote_accuracy(a, b, votes, tie="second") == approx(ref_dimsim_accuracy(a, b, votes))
    ties = a == b
    expected = ((a > b) == votes)[~ties].sum() + 0.5 * ties.sum()
    assert vote_accuracy(a, b, votes) == approx(expected / 50)


# ------------------------------------------------------------------ tie rules and options


def test_tie_rules_on_one_tied_row() -> None:
    s, r = [[0.5, 0.5, 0.5, 0.1]], [[0, 1, 0, 0]]
    ranks = {
        t: mean_rank(s, r, convention=f"melodex:ties={t}")
        for t in ("pessimistic", "optimistic", "index")
    }
    assert ranks == {"pessimistic": 3.0, "optimistic": 1.0, "index": 2.0}


def test_empty_queries_dropped_or_scored_zero() -> None:
    s = [[0.9, 0.1], [0.9, 0.1]]
    r = [[1, 0], [0, 0]]
    assert recall_at_k(s, r, 1, empty_queries="exclude") == 1.0
    assert recall_at_k(s, r, 1, empty_queries="zero") == 0.5
    assert recall_at_k(s, r, 1, empty_queries=None, convention="ttmr-pp") == 0.5
    assert recall_at_k(s, r, 1, empty_queries=None) == 1.0  # melodex drops
    assert average_precision_at_k(s, r, 10, empty_queries="zero").tolist() == [1.0, 0.0]
    assert median_rank(s, r, empty_queries="zero") == 1.0  # ranks never include empty queries
    with pytest.raises(ValueError, match="no relevant item"):
        recall_at_k(s, r, 1)


def test_parse_convention_presets_options_and_errors() -> None:
    assert parse_convention("ttmr-pp") is CONVENTIONS["ttmr-pp"]
    c = parse_convention("clap:ties=index,empty=drop")
    assert (c.ties, c.empty, c.median, c.name) == (
        "index",
        "drop",
        "floor",
        "clap+ties=index,empty=drop",
    )
    assert parse_convention(None, {"rank_base": 0}).rank_base == 0
    assert "rank_base=1" in CONVENTIONS["melodex"].summary()
    with pytest.raises(ParameterError, match="conventions must be"):
        parse_convention("sklearn")
    with pytest.raises(ParameterError, match="unknown convention option"):
        parse_convention("melodex:medr=0")
    with pytest.raises(ParameterError, match="ties must be"):
        parse_convention("melodex:ties=random")
