"""Losses against values worked out by hand on 2-3 item, 2-dimensional toy batches."""

from __future__ import annotations

import math

import pytest
import torch

from melodex.errors import ParameterError
from melodex.lab.losses import (
    BidirectionalRankingLoss,
    ClassificationLoss,
    InfoNCELoss,
    TripletMarginLoss,
    euclidean_distance_matrix,
)


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def log_softmax_at(logits: list[float], index: int) -> float:
    return logits[index] - math.log(sum(math.exp(v) for v in logits))


def one_sgd_step_decreases(loss_fn, params: list[torch.Tensor], lr: float = 0.1) -> None:
    before = loss_fn()
    before.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None
    after = loss_fn()
    assert after.item() < before.item()


# --------------------------------------------------------------------------- InfoNCE

# audio a0=(1,0), a1=(0,1); text t0=(1,0), t1=(0.6,0.8); tau=0.1 so logits = 10 * cos:
#   cos = [[1, 0.6], [0, 0.8]]  ->  logits = [[10, 6], [0, 8]]
AUDIO = [[1.0, 0.0], [0.0, 1.0]]
TEXT = [[1.0, 0.0], [0.6, 0.8]]


def test_infonce_matches_hand_computed_value() -> None:
    a2t = [-log_softmax_at([10, 6], 0), -log_softmax_at([0, 8], 1)]  # rows
    t2a = [-log_softmax_at([10, 0], 0), -log_softmax_at([6, 8], 1)]  # columns
    expected = 0.5 * (sum(a2t) / 2 + sum(t2a) / 2)
    # the same numbers written as log(1 + e^-gap): gaps 4, 8 (rows) and 10, 2 (columns)
    gaps = [4, 8, 10, 2]
    assert expected == pytest.approx(sum(math.log1p(math.exp(-g)) for g in gaps) / 4)
    loss = InfoNCELoss()(t(AUDIO), t(TEXT))
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_infonce_normalizes_inside() -> None:
    scaled = InfoNCELoss()(3 * t(AUDIO), 0.5 * t(TEXT))
    assert scaled.item() == pytest.approx(InfoNCELoss()(t(AUDIO), t(TEXT)).item(), rel=1e-6)


def test_infonce_multi_positive_matches_hand_computed_value() -> None:
    # text 1 also describes audio 0: mask [[1, 1], [0, 1]]
    mask = torch.tensor([[True, True], [False, True]])
    row0 = -(log_softmax_at([10, 6], 0) + log_softmax_at([10, 6], 1)) / 2  # audio 0: texts 0, 1
    row1 = -log_softmax_at([0, 8], 1)  # audio 1: text 1
    col0 = -log_softmax_at([10, 0], 0)  # text 0: audio 0
    col1 = -(log_softmax_at([6, 8], 0) + log_softmax_at([6, 8], 1)) / 2  # text 1: audios 0, 1
    expected = 0.5 * ((row0 + row1) / 2 + (col0 + col1) / 2)
    loss = InfoNCELoss()(t(AUDIO), t(TEXT), positive_mask=mask)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_infonce_identity_mask_equals_single_positive() -> None:
    gen = torch.Generator().manual_seed(0)
    audio, text = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    loss = InfoNCELoss()
    plain = loss(audio, text)
    masked = loss(audio, text, positive_mask=torch.eye(4, dtype=torch.bool))
    assert masked.item() == pytest.approx(plain.item(), rel=1e-6)


def test_infonce_temperature_is_learnable() -> None:
    loss = InfoNCELoss()
    assert loss.temperature == pytest.approx(0.1)
    assert loss.log_inv_tau.requires_grad
    assert loss.log_inv_tau.item() == pytest.approx(math.log(10.0))
    loss(t(AUDIO), t(TEXT)).backward()
    assert loss.log_inv_tau.grad is not None and loss.log_inv_tau.grad.item() != 0.0
    with torch.no_grad():
        loss.log_inv_tau -= 0.5 * loss.log_inv_tau.grad
    assert loss.temperature != pytest.approx(0.1)
    fixed = InfoNCELoss(learnable=False)
    assert not any(p.requires_grad for p in fixed.parameters())


def test_infonce_temperature_is_clamped() -> None:
    loss = InfoNCELoss(tau_min=0.01, tau_max=1.0)
    with torch.no_grad():
        loss.log_inv_tau.fill_(math.log(1000.0))  # tau = 0.001, below tau_min
    assert loss.temperature == pytest.approx(0.01)
    value = loss(t(AUDIO), t(TEXT))
    reference = InfoNCELoss(temperature=0.01, learnable=False)(t(AUDIO), t(TEXT))
    assert value.item() == pytest.approx(reference.item(), rel=1e-5)
    value.backward()
    assert loss.log_inv_tau.grad.item() == 0.0  # held at the bound
    with torch.no_grad():
        loss.log_inv_tau.fill_(math.log(1 / 50.0))  # tau = 50, above tau_max
    assert loss.temperature == pytest.approx(1.0)


def test_infonce_sgd_step_decreases_loss() -> None:
    gen = torch.Generator().manual_seed(1)
    audio = torch.randn(4, 3, generator=gen).requires_grad_()
    text = torch.randn(4, 3, generator=gen)
    loss = InfoNCELoss()
    one_sgd_step_decreases(lambda: loss(audio, text), [audio, loss.log_inv_tau])


def test_infonce_validates() -> None:
    loss = InfoNCELoss()
    with pytest.raises(ParameterError, match=r"text has shape \(3, 2\)"):
        loss(t(AUDIO), torch.zeros(3, 2))
    with pytest.raises(ParameterError, match=r"audio must have shape \(B, D\)"):
        loss(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ParameterError, match="positive_mask must have shape"):
        loss(t(AUDIO), t(TEXT), positive_mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ParameterError, match="diagonal"):
        loss(t(AUDIO), t(TEXT), positive_mask=torch.tensor([[False, True], [True, True]]))
    with pytest.raises(ParameterError, match="outside"):
        InfoNCELoss(temperature=2.0)


# --------------------------------------------------------------------------- triplet


def test_triplet_zero_when_margin_satisfied() -> None:
    # d(tag, pos) = 1 - cos 0 = 0, d(tag, neg) = 1 - cos 90deg = 1: 0.4 + 0 - 1 < 0
    loss = TripletMarginLoss()(t([[1, 0]]), t([[1, 0]]), t([[0, 1]]))
    assert loss.item() == 0.0


def test_triplet_exact_value_when_violated() -> None:
    # tag (1,0); positive (0.6,0.8): d = 1 - 0.6 = 0.4; negative (0.8,0.6): d = 1 - 0.8 = 0.2
    # hinge = 0.4 + 0.4 - 0.2 = 0.6; with the satisfied triplet above the mean is 0.3
    tag = t([[1, 0], [2, 0]])  # norm does not matter for cosine
    pos = t([[0.6, 0.8], [1, 0]])
    neg = t([[0.8, 0.6], [0, 1]])
    assert TripletMarginLoss()(tag[:1], pos[:1], neg[:1]).item() == pytest.approx(0.6, abs=1e-6)
    assert TripletMarginLoss()(tag, pos, neg).item() == pytest.approx(0.3, abs=1e-6)
    # margin 0.1: 0.1 + 0.4 - 0.2 = 0.3
    assert TripletMarginLoss(margin=0.1)(tag[:1], pos[:1], neg[:1]).item() == pytest.approx(
        0.3, abs=1e-6
    )


def test_triplet_reverse_and_both_directions() -> None:
    tag, pos, neg = t([[1, 0]]), t([[0.6, 0.8]]), t([[0.8, 0.6]])
    neg_tag = t([[0, 1]])
    # item anchor (0.6,0.8): d(item, tag (1,0)) = 0.4, d(item, neg tag (0,1)) = 1 - 0.8 = 0.2
    reverse = TripletMarginLoss(direction="item_to_tag")(tag, pos, neg, negative_tag=neg_tag)
    assert reverse.item() == pytest.approx(0.4 + 0.4 - 0.2, abs=1e-6)
    both = TripletMarginLoss(direction="both")(tag, pos, neg, negative_tag=neg_tag)
    assert both.item() == pytest.approx(0.6 + 0.6, abs=1e-6)
    with pytest.raises(ParameterError, match="needs negative_tag"):
        TripletMarginLoss(direction="both")(tag, pos, neg)


def test_triplet_sgd_step_decreases_loss() -> None:
    gen = torch.Generator().manual_seed(2)
    tag = torch.randn(4, 3, generator=gen).requires_grad_()
    pos, neg = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    loss = TripletMarginLoss(margin=2.0)  # every triplet violated, so every one has gradient
    one_sgd_step_decreases(lambda: loss(tag, pos, neg), [tag])


def test_triplet_validates() -> None:
    with pytest.raises(ParameterError, match=r"negative has shape \(2, 2\)"):
        TripletMarginLoss()(t([[1, 0]]), t([[1, 0]]), torch.zeros(2, 2))
    with pytest.raises(ParameterError, match="direction"):
        TripletMarginLoss(direction="up")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- two-branch ranking

# Points on a line (second coordinate 0), normalize=False, so distances are |difference|:
#   audio x = 0, 2, 5; text y = 2, 0, 3
#   d(x_i, y_j) = [[2, 0, 3], [0, 2, 1], [3, 5, 2]]
#   d(x_i, x_j) = [[0, 2, 5], [2, 0, 3], [5, 3, 0]];  d(y_i, y_j) = [[0, 2, 1], [2, 0, 3], [1, 3, 0]]
X = t([[0, 0], [2, 0], [5, 0]])
Y = t([[2, 0], [0, 0], [3, 0]])
M = 0.5
# eq (6), audio anchor i, text positive i, text negatives k != i: [m + d(x_i,y_i) - d(x_i,y_k)]_+
#   i=0: k=1: .5+2-0 = 2.5, k=2: .5+2-3 < 0      -> 2.5
#   i=1: k=0: .5+2-0 = 2.5, k=2: .5+2-1 = 1.5    -> 4.0
#   i=2: k=0: .5+2-3 < 0,   k=1: .5+2-5 < 0      -> 0
TERM6, TERM6_TOP1 = 6.5, 2.5 + 2.5 + 0.0
# eq (7), text anchor i, audio positive i, audio negatives k: [m + d(x_i,y_i) - d(x_k,y_i)]_+
#   i=0 (column [2,0,3]): k=1: 2.5, k=2: < 0 -> 2.5
#   i=1 (column [0,2,5]): k=0: 2.5, k=2: < 0 -> 2.5
#   i=2 (column [3,1,2]): k=0: < 0, k=1: .5+2-1 = 1.5 -> 1.5
TERM7, TERM7_TOP1 = 6.5, 6.5
# labels [1, 0, 0]: neighbour pairs (1,2) and (2,1), the only other-label item is 0
#   eq (8) audio: (1,2): .5 + 3 - d(x1,x0)=2 -> 1.5;  (2,1): .5 + 3 - d(x2,x0)=5 < 0 -> 0
#   eq (9) text:  (1,2): .5 + 3 - d(y1,y0)=2 -> 1.5;  (2,1): .5 + 3 - d(y2,y0)=1 -> 2.5
LABELS = torch.tensor([1, 0, 0])
TERM8, TERM9 = 1.5, 4.0


def test_distance_matrix_on_a_line() -> None:
    expected = [[2, 0, 3], [0, 2, 1], [3, 5, 2]]
    assert torch.allclose(euclidean_distance_matrix(X, Y), t(expected), atol=1e-6)


def test_ranking_loss_hand_computed() -> None:
    loss = BidirectionalRankingLoss(margin=M, top_k=None, normalize=False)
    assert loss(X, Y).item() == pytest.approx(TERM6 + TERM7, abs=1e-5)
    top1 = BidirectionalRankingLoss(margin=M, top_k=1, normalize=False)
    assert top1(X, Y).item() == pytest.approx(TERM6_TOP1 + TERM7_TOP1, abs=1e-5)
    uni = BidirectionalRankingLoss(margin=M, lambda2=0.0, top_k=None, normalize=False)
    assert uni(X, Y).item() == pytest.approx(TERM6, abs=1e-5)
    mean = BidirectionalRankingLoss(margin=M, top_k=None, normalize=False, reduction="mean")
    assert mean(X, Y).item() == pytest.approx(TERM6 / 3 + TERM7 / 3, abs=1e-5)


def test_neighbourhood_terms_add_hand_computed_amount() -> None:
    base = BidirectionalRankingLoss(margin=M, top_k=None, normalize=False)(X, Y, labels=LABELS)
    full = BidirectionalRankingLoss(margin=M, lambda3=1.0, lambda4=2.0, top_k=None, normalize=False)
    value = full(X, Y, labels=LABELS)
    assert value.item() - base.item() == pytest.approx(1.0 * TERM8 + 2.0 * TERM9, abs=1e-5)
    only_text = BidirectionalRankingLoss(
        margin=M, lambda1=0.0, lambda2=0.0, lambda4=1.0, top_k=None, normalize=False
    )
    assert only_text(X, Y, labels=LABELS).item() == pytest.approx(TERM9, abs=1e-5)


def test_ranking_loss_on_unit_vectors() -> None:
    # audio (1,0), (0,1); texts swapped: d(x_i, y_i) = sqrt(2), d(x_i, y_k) = 0
    # each of the 2 + 2 anchors has one negative with hinge 0.05 + sqrt(2) - 0
    swapped = BidirectionalRankingLoss()(t([[1, 0], [0, 1]]), t([[0, 3], [2, 0]]))
    assert swapped.item() == pytest.approx(4 * (0.05 + math.sqrt(2)), abs=1e-5)
    matched = BidirectionalRankingLoss()(t([[1, 0], [0, 1]]), t([[1, 0], [0, 1]]))
    assert matched.item() == 0.0


def brute_force_ranking(
    x: torch.Tensor, y: torch.Tensor, margin: float, top_k: int | None
) -> float:
    """Eq. (3) of the seed with plain loops: both directions, top-k hinges per anchor."""
    n = x.shape[0]
    d = [[float(torch.linalg.norm(x[i] - y[j])) for j in range(n)] for i in range(n)]
    total = 0.0
    for i in range(n):
        rows = [max(0.0, margin + d[i][i] - d[i][k]) for k in range(n) if k != i]
        cols = [max(0.0, margin + d[i][i] - d[k][i]) for k in range(n) if k != i]
        for hinges in (rows, cols):
            total += sum(sorted(hinges, reverse=True)[:top_k])
    return total


@pytest.mark.parametrize("top_k", [None, 2])
def test_zero_neighbourhood_lambdas_equal_plain_ranking_loss(top_k: int | None) -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.nn.functional.normalize(torch.randn(5, 3, generator=gen), dim=1)
    y = torch.nn.functional.normalize(torch.randn(5, 3, generator=gen), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 2])
    loss = BidirectionalRankingLoss(margin=0.3, lambda3=0.0, lambda4=0.0, top_k=top_k)
    value = loss(x, y, labels=labels).item()
    assert value == pytest.approx(brute_force_ranking(x, y, 0.3, top_k), abs=1e-5)
    assert value > 0


def test_ranking_sgd_step_decreases_loss_and_survives_zero_distance() -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, generator=gen)
    y = x.clone().requires_grad_()  # positives at distance 0: gradient must stay finite
    x[1] = y[0].detach()
    loss = BidirectionalRankingLoss(margin=0.5, lambda3=0.5, lambda4=0.5)
    labels = torch.tensor([0, 0, 1, 1])
    value = loss(x, y, labels=labels)
    value.backward()
    assert torch.isfinite(y.grad).all()
    y.grad = None
    one_sgd_step_decreases(lambda: loss(x, y, labels=labels), [y])


def test_ranking_validates() -> None:
    with pytest.raises(ParameterError, match="need labels"):
        BidirectionalRankingLoss(lambda3=1.0)(X, Y)
    with pytest.raises(ParameterError, match=r"labels must be a tensor of shape \(3,\)"):
        BidirectionalRankingLoss(lambda4=1.0)(X, Y, labels=torch.tensor([0, 1]))
    with pytest.raises(ParameterError, match="top_k"):
        BidirectionalRankingLoss(top_k=0)
    with pytest.raises(ParameterError, match=r"text has shape \(2, 2\)"):
        BidirectionalRankingLoss()(X, Y[:2])


# --------------------------------------------------------------------------- classification

# audio a0=(1,0), a1=(0,2); centroids c0=(1,0), c1=(0,1), c2=(1,1): dot logits
#   [[1, 0, 1], [0, 2, 2]]
A = t([[1, 0], [0, 2]])
C = t([[1, 0], [0, 1], [1, 1]])


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_classification_multiclass_hand_computed() -> None:
    expected = (-log_softmax_at([1, 0, 1], 0) - log_softmax_at([0, 2, 2], 2)) / 2
    loss = ClassificationLoss(mode="multiclass")(A, torch.tensor([0, 2]), centroids=C)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_classification_multilabel_hand_computed() -> None:
    targets = t([[1, 0, 0], [0, 1, 1]])
    cells = [
        math.log(sigmoid(1)),
        math.log(1 - sigmoid(0)),
        math.log(1 - sigmoid(1)),
        math.log(1 - sigmoid(0)),
        math.log(sigmoid(2)),
        math.log(sigmoid(2)),
    ]
    loss = ClassificationLoss()(A, targets, centroids=C)
    assert loss.item() == pytest.approx(-sum(cells) / 6, rel=1e-6)


def test_classification_cosine_with_scale() -> None:
    # cosine logits * 10: a0 -> [10, 0, 10/sqrt2], a1 -> [0, 10, 10/sqrt2]
    r = 10 / math.sqrt(2)
    expected = (-log_softmax_at([10, 0, r], 0) - log_softmax_at([0, 10, r], 2)) / 2
    loss = ClassificationLoss(mode="multiclass", normalize=True, scale=10.0)
    assert loss(A, torch.tensor([0, 2]), centroids=C).item() == pytest.approx(expected, rel=1e-5)


def test_classification_learnable_centroids_sgd_step() -> None:
    torch.manual_seed(5)
    loss = ClassificationLoss(num_classes=3, dim=2)
    assert loss.centroids is not None and loss.centroids.shape == (3, 2)
    targets = t([[1, 0, 0], [0, 1, 1]])
    one_sgd_step_decreases(lambda: loss(A, targets), [loss.centroids], lr=0.5)


def test_classification_validates() -> None:
    with pytest.raises(ParameterError, match="no centroids"):
        ClassificationLoss()(A, t([[1, 0, 0], [0, 1, 1]]))
    with pytest.raises(ParameterError, match=r"multilabel targets must have shape \(2, 3\)"):
        ClassificationLoss()(A, t([[1, 0], [0, 1]]), centroids=C)
    with pytest.raises(ParameterError, match="class indices"):
        ClassificationLoss(mode="multiclass")(A, t([[1, 0, 0], [0, 1, 1]]), centroids=C)
    with pytest.raises(ParameterError, match=r"in \[0, 3\)"):
        ClassificationLoss(mode="multiclass")(A, torch.tensor([0, 3]), centroids=C)
    with pytest.raises(ParameterError, match="dimension 3 but audio has 2"):
        ClassificationLoss()(A, t([[1, 0, 0], [0, 1, 1]]), centroids=torch.zeros(3, 3))
