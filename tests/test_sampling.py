"""Samplers: determinism by seed, the label invariants, and the frequencies each one promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from melodex.errors import ParameterError
from melodex.lab.sampling import (
    NeighbourhoodBatchSampler,
    UniqueBatchSampler,
    distance_weights,
    positive_mask,
    sample_negative_tags,
    sample_triplets,
)

TAG_COUNTS = [150, 60, 20, 8, 3]  # a skewed vocabulary: 241 annotations on 200 items
CHI2_4DOF_999 = 18.47  # 99.9% quantile of chi-square with 4 degrees of freedom


def skewed_matrix() -> np.ndarray:
    """200 items x 5 tags; tag k is carried by TAG_COUNTS[k] items scattered by a fixed seed."""
    rng = np.random.default_rng(0)
    matrix = np.zeros((200, len(TAG_COUNTS)), dtype=bool)
    for tag, count in enumerate(TAG_COUNTS):
        matrix[rng.choice(200, size=count, replace=False), tag] = True
    return matrix


def chi_square(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(((observed - expected) ** 2 / expected).sum())


def random_embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --------------------------------------------------------------------------- triplets


@pytest.mark.parametrize("strategy", ["random", "balanced", "balanced_weighted"])
def test_triplets_deterministic_and_labels_respected(strategy: str) -> None:
    matrix = skewed_matrix()
    emb = {
        "item_embeddings": random_embeddings(200, 8, 1),
        "tag_embeddings": random_embeddings(5, 8, 2),
    }

    def draw(seed: int):
        return sample_triplets(
            matrix, n_triplets=2000, rng=np.random.default_rng(seed), strategy=strategy, **emb
        )

    first, again, other = draw(7), draw(7), draw(8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.negatives, other.negatives)
    assert first.tags.shape == first.positives.shape == first.negatives.shape == (2000,)
    assert matrix[first.positives, first.tags].all()  # positives always carry the tag
    assert not matrix[first.negatives, first.tags].any()  # negatives never do


def test_balanced_sampling_gives_uniform_tag_frequencies() -> None:
    triplets = sample_triplets(
        skewed_matrix(), n_triplets=20000, rng=np.random.default_rng(0), strategy="balanced"
    )
    observed = np.bincount(triplets.tags, minlength=5)
    assert chi_square(observed, np.full(5, 4000.0)) < CHI2_4DOF_999
    # and far from the annotation frequencies that random sampling follows
    expected_random = 20000 * np.array(TAG_COUNTS) / sum(TAG_COUNTS)
    assert chi_square(observed, expected_random) > 1000


def test_random_sampling_follows_pair_frequencies() -> None:
    triplets = sample_triplets(
        skewed_matrix(), n_triplets=20000, rng=np.random.default_rng(0), strategy="random"
    )
    observed = np.bincount(triplets.tags, minlength=5)
    expected = 20000 * np.array(TAG_COUNTS) / sum(TAG_COUNTS)  # 12448, 4979, 1660, 664, 249
    assert chi_square(observed, expected) < CHI2_4DOF_999


def test_balanced_positives_uniform_within_tag() -> None:
    matrix = skewed_matrix()
    triplets = sample_triplets(
        matrix, n_triplets=6000, rng=np.random.default_rng(3), strategy="balanced"
    )
    rare = triplets.positives[triplets.tags == 4]  # tag 4 has 3 items
    counts = np.bincount(rare, minlength=200)[np.flatnonzero(matrix[:, 4])]
    assert chi_square(counts, np.full(3, rare.size / 3)) < 13.8  # 99.9%, 2 dof


def test_distance_weights_hand_computed() -> None:
    # dim 4: 1/q(d) = d^-2 * (1 - d^2/4)^-1/2; 0.2 is clipped to 0.5, 1.5 is past 1.4
    def inv_q(d: float) -> float:
        return d**-2 * (1 - d * d / 4) ** -0.5

    raw = [inv_q(0.5), inv_q(0.5), inv_q(1.0), inv_q(1.2), 0.0]
    expected = np.array(raw) / max(raw)
    got = distance_weights(np.array([0.2, 0.5, 1.0, 1.2, 1.5]), dim=4)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert inv_q(0.5) / inv_q(1.0) == pytest.approx(4 * math.sqrt(0.75 / (1 - 0.0625)))


def test_weighted_sampling_flattens_the_distance_distribution() -> None:
    # In 3 dims q(d) ∝ d: random unit vectors are mostly far from the anchor. 1/q weighting
    # should make sampled distances uniform on [cutoff, nonzero_loss_cutoff] = [0.5, 1.4].
    n_items = 4000
    items = random_embeddings(n_items, 3, 11)
    matrix = np.zeros((n_items, 1), dtype=bool)
    matrix[:10, 0] = True
    anchor = np.array([[0.0, 0.0, 1.0]])

    def sampled_distances(strategy: str) -> np.ndarray:
        triplets = sample_triplets(
            matrix,
            n_triplets=30000,
            rng=np.random.default_rng(5),
            strategy=strategy,
            item_embeddings=items,
            tag_embeddings=anchor,
        )
        return np.linalg.norm(items[triplets.negatives] - anchor, axis=1)

    edges = [0.5, 0.8, 1.1, 1.4]
    weighted = sampled_distances("balanced_weighted")
    plain = sampled_distances("balanced")
    assert weighted.max() < 1.4  # beyond nonzero_loss_cutoff: never
    w_bins = np.histogram(weighted, bins=edges)[0]
    p_bins = np.histogram(plain, bins=edges)[0]
    # weighted: flat within 15%; plain: grows like d (bin centres .65, .95, 1.25)
    assert w_bins.max() / w_bins.min() < 1.15
    assert p_bins[2] / p_bins[0] == pytest.approx(1.25 / 0.65, rel=0.15)
    assert np.median(weighted) < np.median(plain)  # harder negatives on average


def test_triplets_validate() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ParameterError, match="needs item_embeddings"):
        sample_triplets(skewed_matrix(), n_triplets=1, rng=rng, strategy="balanced_weighted")
    with pytest.raises(ParameterError, match="strategy"):
        sample_triplets(skewed_matrix(), n_triplets=1, rng=rng, strategy="hard")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="no tag has both"):
        sample_triplets(np.ones((3, 2)), n_triplets=1, rng=rng, strategy="random")
    with pytest.raises(ParameterError, match="0/1"):
        sample_triplets(np.full((3, 2), 2), n_triplets=1, rng=rng, strategy="random")
    with pytest.raises(ParameterError, match="numpy.random.Generator"):
        sample_triplets(skewed_matrix(), n_triplets=1, rng=0, strategy="random")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"tag_embeddings must have shape \(5, D\)"):
        sample_triplets(
            skewed_matrix(),
            n_triplets=1,
            rng=rng,
            strategy="balanced_weighted",
            item_embeddings=np.zeros((200, 4)),
            tag_embeddings=np.zeros((4, 4)),
        )


def test_negative_tags_never_carried() -> None:
    matrix = np.array([[1, 0, 0, 1], [0, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    items = np.array([0, 1, 2, 0, 1, 2] * 50)
    tags = sample_negative_tags(matrix, items, rng=np.random.default_rng(0))
    assert not matrix[items, tags].any()
    assert set(tags[items == 1].tolist()) == {0}
    assert set(tags[items == 2].tolist()) == {0, 1, 2, 3}
    again = sample_negative_tags(matrix, items, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(tags, again)
    with pytest.raises(ParameterError, match="item 0 carries every tag"):
        sample_negative_tags(np.ones((1, 2)), np.array([0]), rng=np.random.default_rng(0))


# --------------------------------------------------------------------------- batch samplers


def neighbourhood_labels() -> np.ndarray:
    # 70 items over 25 labels, several with one item only
    return np.random.default_rng(2).integers(0, 25, size=70)


def test_neighbourhood_batches_hold_a_neighbour_for_every_item() -> None:
    labels = neighbourhood_labels()
    sampler = NeighbourhoodBatchSampler(labels, batch_size=8, rng=np.random.default_rng(0))
    n_batches = len(sampler)
    batches = list(sampler)
    assert len(batches) == n_batches
    for batch in batches:
        assert 1 <= len(batch) <= 8
        batch_labels = labels[batch].tolist()
        assert all(batch_labels.count(label) >= 2 for label in batch_labels)
    for batch in batches[:-1]:
        assert len(batch) >= 8 - 2 * 2 + 2  # groups are packed whole
    values, counts = np.unique(labels, return_counts=True)
    eligible = np.flatnonzero(np.isin(labels, values[counts >= 2]))
    seen = sorted(i for batch in batches for i in batch)
    assert seen == eligible.tolist()  # each eligible item once per epoch, singletons left out


def test_neighbourhood_sampler_deterministic_and_reshuffles() -> None:
    labels = neighbourhood_labels()

    def epochs(seed: int) -> list[list[list[int]]]:
        sampler = NeighbourhoodBatchSampler(labels, batch_size=8, rng=np.random.default_rng(seed))
        return [list(sampler), list(sampler)]

    first = epochs(1)
    assert first == epochs(1)
    assert first[0] != first[1]  # a new shuffle each epoch
    assert first != epochs(2)


def test_neighbourhood_sampler_with_dataloader() -> None:
    labels = neighbourhood_labels()
    sampler = NeighbourhoodBatchSampler(
        labels, batch_size=6, rng=np.random.default_rng(0), group_size=3
    )
    loader = DataLoader(TensorDataset(torch.arange(70)), batch_sampler=sampler)
    n = len(loader)
    batches = [b[0].tolist() for b in loader]
    assert len(batches) == n
    for batch in batches:
        assert all(labels[batch].tolist().count(label) >= 3 for label in labels[batch].tolist())
    with pytest.raises(ParameterError, match="no label has 2 or more items"):
        NeighbourhoodBatchSampler([0, 1, 2], batch_size=4, rng=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="too small"):
        NeighbourhoodBatchSampler(labels, batch_size=2, rng=np.random.default_rng(0))


def test_unique_batches_have_no_duplicate_track_or_caption() -> None:
    tracks = [i // 3 for i in range(30)]  # each track has three captions
    captions = ["calm piano" if i % 7 == 0 else f"caption {i}" for i in range(30)]
    sampler = UniqueBatchSampler(
        tracks, text_keys=captions, batch_size=4, rng=np.random.default_rng(0)
    )
    n = len(sampler)
    batches = list(sampler)
    assert len(batches) == n
    assert sorted(i for b in batches for i in b) == list(range(30))
    for batch in batches:
        assert len({tracks[i] for i in batch}) == len(batch)
        assert len({captions[i] for i in batch}) == len(batch)
        assert bool(
            (
                positive_mask([tracks[i] for i in batch]) == torch.eye(len(batch), dtype=torch.bool)
            ).all()
        )
    full = [b for b in batches if len(b) == 4]
    assert len(full) >= 6
    dropped = UniqueBatchSampler(tracks, batch_size=4, rng=np.random.default_rng(0), drop_last=True)
    assert all(len(b) == 4 for b in dropped)
    again = UniqueBatchSampler(
        tracks, text_keys=captions, batch_size=4, rng=np.random.default_rng(0)
    )
    assert list(again) == batches
    loader = DataLoader(TensorDataset(torch.arange(30)), batch_sampler=again)
    assert sum(len(b[0]) for b in loader) == 30


def test_positive_mask_hand_checked() -> None:
    # pairs: (track a, "x"), (track a, "y"), (track b, "y"), (track c, "z")
    mask = positive_mask(["a", "a", "b", "c"], ["x", "y", "y", "z"])
    expected = torch.tensor(
        [
            [1, 1, 0, 0],  # pair 0 shares the track with pair 1
            [1, 1, 1, 0],  # pair 1: track with 0, caption with 2
            [0, 1, 1, 0],
            [0, 0, 0, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)
    assert torch.equal(positive_mask(["a", "b"]), torch.eye(2, dtype=torch.bool))
    with pytest.raises(ParameterError, match="text_keys has 1 entries but item_keys has 2"):
        positive_mask(["a", "b"], ["x"])
