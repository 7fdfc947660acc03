"""Baselines: closed-form CCA, WSABIE/WARP, random projections, and their joint-model wrapper."""

from __future__ import annotations

import json

import numpy as np
import pytest

import melodex.evaluate.baselines as bl
from melodex.errors import ModelLoadError
from melodex.models import ModelConfig, load_model
from melodex.models.folder import write_model_folder


def two_views(n, rho, fa, ft, seed):
    """Two views of one latent: per-view noise gives canonical correlations ``rho`` exactly.

    Latent dim j is seen in each view as ``z_j + s_j e`` with ``s_j^2 = 1/rho_j - 1``, so the
    population correlation of the two noisy copies is ``1 / (1 + s_j^2) = rho_j``; extra
    independent noise dims fill each view, then an invertible random map mixes everything.
    """
    rng = np.random.default_rng(seed)
    k = len(rho)
    s = np.sqrt(1.0 / np.asarray(rho) - 1.0)
    z = rng.standard_normal((n, k))
    la = np.hstack([z + s * rng.standard_normal((n, k)), rng.standard_normal((n, fa - k))])
    lt = np.hstack([z + s * rng.standard_normal((n, k)), rng.standard_normal((n, ft - k))])
    ma, mt = rng.standard_normal((fa, fa)), rng.standard_normal((ft, ft))
    return la @ ma + 3.0, lt @ mt - 1.0


def r_at(za, zt, k):
    """Text -> audio R@k with pair i as the only relevant item of query i."""
    order = np.argsort(-(zt @ za.T), axis=1, kind="stable")[:, :k]
    return float((order == np.arange(len(zt))[:, None]).any(axis=1).mean())


def mean_rank(za, zt):
    s = zt @ za.T
    return float(((s > np.diag(s)[:, None]).sum(axis=1) + 1).mean())


# ------------------------------------------------------------------------------ CCA


def test_cca_recovers_the_generating_correlations():
    A, T = two_views(6000, [0.95, 0.8, 0.6], fa=10, ft=8, seed=0)
    cca = bl.fit_cca(A, T, dim=5, reg=0.0)
    np.testing.assert_allclose(cca.correlations[:3], [0.95, 0.8, 0.6], atol=0.03)
    assert cca.correlations[3:].max() < 0.1
    assert np.all(np.diff(cca.correlations) <= 0)


def test_cca_cross_view_retrieval_is_near_perfect_on_held_out_pairs():
    A, T = two_views(1200, [0.99] * 16, fa=24, ft=20, seed=1)
    cca = bl.fit_cca(A[:1000], T[:1000], dim=16, reg=1e-4)
    za, zt = cca.project_audio(A[1000:]), cca.project_text(T[1000:])
    np.testing.assert_allclose(np.linalg.norm(za, axis=1), 1.0, rtol=1e-5)
    assert r_at(za, zt, 1) >= 0.95
    assert r_at(zt, za, 1) >= 0.95


def test_cca_variates_are_white_and_correlated_by_s():
    """With corr_power=0 the defining property: W_a^T C_aa W_a = I, W_a^T C_at W_t = diag(S)."""
    A, T = two_views(800, [0.9, 0.7], fa=6, ft=5, seed=2)
    cca = bl.fit_cca(A, T, dim=4, reg=0.0, corr_power=0.0)
    za = cca.project_audio(A, normalize=False).astype(np.float64)
    zt = cca.project_text(T, normalize=False).astype(np.float64)
    n = len(A) - 1
    np.testing.assert_allclose(za.T @ za / n, np.eye(4), atol=1e-4)
    np.testing.assert_allclose(zt.T @ zt / n, np.eye(4), atol=1e-4)
    np.testing.assert_allclose(za.T @ zt / n, np.diag(cca.correlations), atol=1e-4)
    np.testing.assert_allclose(za.mean(axis=0), 0.0, atol=1e-4)


def test_cca_single_text_feature_matches_the_closed_form():
    """One text feature: the audio direction is the OLS vector C_aa^-1 c_at, rho = multiple R."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((500, 2)) * [1.0, 3.0] + [5.0, -2.0]
    t = (A @ [2.0, -0.5] + rng.standard_normal(500))[:, None]
    cca = bl.fit_cca(A, t, dim=1, reg=0.0)
    Ac, tc = A - A.mean(0), t - t.mean()
    beta = np.linalg.solve(Ac.T @ Ac, Ac.T @ tc)[:, 0]
    w = cca.audio_proj[:, 0]
    assert abs(w @ beta) / np.linalg.norm(w) / np.linalg.norm(beta) == pytest.approx(1.0, abs=1e-9)
    multiple_r = np.corrcoef(Ac @ beta, tc[:, 0])[0, 1]
    assert cca.correlations[0] == pytest.approx(multiple_r, abs=1e-9)


def test_cca_matches_sklearn_direction_up_to_sign():
    from sklearn.cross_decomposition import CCA

    A, T = two_views(2000, [0.95], fa=4, ft=3, seed=4)
    ours = bl.fit_cca(A, T, dim=1, reg=0.0)
    ref = CCA(n_components=1, scale=False, max_iter=5000, tol=1e-12).fit(A, T)
    for mine, theirs in ((ours.audio_proj, ref.x_rotations_), (ours.text_proj, ref.y_rotations_)):
        a, b = mine[:, 0], theirs[:, 0]
        assert abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b) > 0.9999


def test_cca_pairs_equal_expanded_rows_and_regularisation_is_scale_free():
    A, T = two_views(300, [0.9, 0.5], fa=5, ft=4, seed=5)
    rng = np.random.default_rng(5)
    pairs = np.stack([rng.integers(0, 300, 500), rng.integers(0, 300, 500)], axis=1)
    pairs[:, 1] = pairs[:, 0]  # text row i describes item i, items drawn with repetition
    a = bl.fit_cca(A, T, dim=3, reg=0.1, pairs=pairs)
    b = bl.fit_cca(A[pairs[:, 0]], T[pairs[:, 1]], dim=3, reg=0.1)
    np.testing.assert_allclose(a.audio_proj, b.audio_proj, atol=1e-10)
    np.testing.assert_allclose(a.text_mean, b.text_mean, atol=1e-12)
    c = bl.fit_cca(A * 1000.0, T, dim=3, reg=0.1)
    d = bl.fit_cca(A, T, dim=3, reg=0.1)
    np.testing.assert_allclose(c.correlations, d.correlations, rtol=1e-8)
    assert d.correlations[0] < bl.fit_cca(A, T, dim=3, reg=0.0).correlations[0]


def test_cca_rejects_bad_inputs():
    A, T = two_views(50, [0.9], fa=4, ft=3, seed=6)
    with pytest.raises(bl.BaselineError, match=r"dim must be an integer in \[1, 3\]"):
        bl.fit_cca(A, T, dim=4)
    with pytest.raises(bl.BaselineError, match="50 rows and text_features 49"):
        bl.fit_cca(A, T[:49], dim=2)
    with pytest.raises(bl.BaselineError, match="pairs index outside"):
        bl.fit_cca(A, T, dim=2, pairs=np.array([[0, 50]]))
    with pytest.raises(bl.BaselineError, match="NaN"):
        bl.fit_cca(np.full((50, 4), np.nan), T, dim=2)


# ------------------------------------------------------------------------------ WSABIE


def test_warp_rank_weight_hand_values():
    assert bl.warp_rank_weight(0) == 0.0
    assert bl.warp_rank_weight(1) == 1.0
    assert bl.warp_rank_weight(3) == pytest.approx(1 + 1 / 2 + 1 / 3)
    np.testing.assert_allclose(bl.warp_rank_weight(np.array([2, 4])), [1.5, 25 / 12])
    with pytest.raises(bl.BaselineError, match=">= 0"):
        bl.warp_rank_weight(-1)


@pytest.fixture(scope="module")
def paired():
    return two_views(600, [0.9] * 8, fa=24, ft=20, seed=7)


@pytest.mark.heavy  # trains, runs a real model, or decodes hours: not in the fast tier
def test_wsabie_learns_retrieval_well_above_chance(paired):
    A, T = paired
    w = bl.fit_wsabie(A[:500], T[:500], dim=8, epochs=10, lr=0.01, seed=0)
    assert w.losses[-1] < 0.6 * w.losses[0]
    za, zt = w.project_audio(A[500:]), w.project_text(T[500:])
    assert r_at(za, zt, 1) >= 0.08  # chance: 0.01
    assert r_at(za, zt, 10) >= 0.4  # chance: 0.10
    assert mean_rank(za, zt) < 20  # chance: 50.5


def test_wsabie_is_seeded_and_deterministic(paired):
    A, T = paired
    kw = {"dim": 4, "epochs": 2, "batch_size": 100, "seed": 3}
    a = bl.fit_wsabie(A[:200], T[:200], **kw)
    b = bl.fit_wsabie(A[:200], T[:200], **kw)
    c = bl.fit_wsabie(A[:200], T[:200], **{**kw, "seed": 4})
    np.testing.assert_array_equal(a.audio_proj, b.audio_proj)
    np.testing.assert_array_equal(a.text_proj, b.text_proj)
    assert a.losses == b.losses
    assert not np.allclose(a.audio_proj, c.audio_proj)


def test_wsabie_with_several_texts_per_item_and_both_directions(paired):
    A, T = paired
    items = np.arange(200)
    texts = np.concatenate(
        [T[:200], T[:200] + 0.3 * np.random.default_rng(8).standard_normal((200, 20))]
    )
    pairs = np.stack([np.tile(items, 2), np.arange(400)], axis=1)
    w = bl.fit_wsabie(A[:200], texts, pairs=pairs, dim=8, epochs=12, bidirectional=True, seed=1)
    assert w.losses[-1] < w.losses[0]
    za, zt = w.project_audio(A[500:]), w.project_text(T[500:])
    assert r_at(za, zt, 10) >= 0.3


def test_wsabie_rejects_bad_options(paired):
    A, T = paired
    with pytest.raises(bl.BaselineError, match="cosine units"):
        bl.fit_wsabie(A, T, dim=4, margin=2.5)
    with pytest.raises(bl.BaselineError, match="epochs >= 1"):
        bl.fit_wsabie(A, T, dim=4, epochs=0)


# ------------------------------------------------------------------------------ random


def test_random_baseline_is_at_chance(paired):
    A, T = paired
    ranks, hits = [], []
    for seed in range(5):
        r = bl.fit_random(A[:500], T[:500], dim=8, seed=seed)
        za, zt = r.project_audio(A[500:]), r.project_text(T[500:])
        ranks.append(mean_rank(za, zt))
        hits.append(r_at(za, zt, 1))
    assert np.mean(ranks) == pytest.approx(50.5, abs=6)  # 500 ranks, sd of the mean ~1.3
    assert np.mean(hits) < 0.04
    a, b = bl.fit_random(A, T, dim=8, seed=1), bl.fit_random(A, T, dim=8, seed=1)
    np.testing.assert_array_equal(a.text_proj, b.text_proj)


# ------------------------------------------------------------------------------ joint model

FA, FT = 100, 384  # the default extractors' feature sizes: 2 x 50 musicnn tags, MiniLM


@pytest.fixture(scope="module")
def features():
    """Real frozen extractors, loaded lazily and shared by this module's tests."""
    return bl.BaselineFeatures()


def synthetic_features(n=300, seed=9):
    A, T = two_views(n, [0.9] * 10, fa=FA, ft=FT, seed=seed)
    return A, T


@pytest.mark.parametrize("kind", bl.KINDS)
def test_model_saves_and_reloads_with_identical_vectors(tmp_path, kind):
    A, T = synthetic_features()
    opts = {"epochs": 1} if kind == "wsabie" else {}
    model = bl.fit_baseline(kind, A, T, name=f"{kind}-test", dim=8, **opts)
    folder = model.save(tmp_path / kind)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "linear-projection"
    assert config["options"]["kind"] == kind
    assert config["options"]["taggers"] == ["MTT_musicnn", "MSD_musicnn"]
    assert config["text_encoder"] == "all-MiniLM-L6-v2"
    if kind == "cca":
        assert len(config["options"]["correlations"]) == 8
    again = load_model(folder)
    assert isinstance(again, bl.LinearProjectionModel)
    assert again.identity == model.identity and again.dim == 8 and again.kind == kind
    np.testing.assert_array_equal(
        again.encode_text_features(T[:5]), model.encode_text_features(T[:5])
    )
    np.testing.assert_array_equal(
        again.encode_audio_features(A[:5]), model.encode_audio_features(A[:5])
    )


@pytest.mark.heavy  # real musicnn
def test_model_with_real_extractors_encodes_and_reloads(tmp_path, features):
    A, T = synthetic_features()
    model = bl.fit_baseline("cca", A, T, name="cca-real", dim=8, features=features)
    q = model.encode_text(["calm piano", "loud distorted guitars", "a techno beat"])
    assert q.shape == (3, 8) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-5)
    assert model.encode_text("calm piano").shape == (8,)
    np.testing.assert_allclose(model.encode_text("calm piano"), q[0], atol=1e-6)

    t = np.arange(int(1.5 * 47872)) / 16000.0
    waves = [0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sign(np.sin(2 * np.pi * 2 * t)) * 0.5]
    emb = model.embed_waveform(waves[0].astype(np.float32))
    assert emb.window_vectors.shape == (2, 8) and np.allclose(emb.window_starts, [0.0, 2.992])
    assert emb.tag_scores.shape == (len(model.tag_names),)
    audio = model.encode_audio([w.astype(np.float32) for w in waves])
    assert audio.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(audio[0], emb.vector, atol=1e-6)
    # the pooled vector is the projection of the window-mean features (what the fit used)
    feats = features.audio(waves[0].astype(np.float32))
    np.testing.assert_allclose(model.encode_audio_features(feats[None])[0], audio[0], atol=1e-5)

    again = load_model(model.save(tmp_path / "m"))
    again._features = features  # share the loaded extractors (the folder names the same ones)
    np.testing.assert_array_equal(again.encode_text(["calm piano"]), q[:1])
    np.testing.assert_array_equal(again.encode_audio([w.astype(np.float32) for w in waves]), audio)


@pytest.mark.heavy  # the real sentence encoder
def test_extractor_size_mismatch_is_a_clear_error(features):
    A, T = two_views(100, [0.9], fa=6, ft=5, seed=10)
    model = bl.fit_baseline("random", A, T, name="small", dim=3, features=features)
    with pytest.raises(
        ModelLoadError, match="text extractor gives 384 features but the projection was fitted on 5"
    ):
        model.encode_text(["x"])


def test_load_rejects_wrong_shapes_and_bad_options(tmp_path):
    A, T = two_views(100, [0.9], fa=6, ft=5, seed=11)
    model = bl.fit_baseline("random", A, T, name="small", dim=3)
    weights = model.projection.weights()
    bad = {**weights, "audio_proj": np.zeros((6, 4), np.float32)}
    write_model_folder(tmp_path / "shape", model.config, bad)
    with pytest.raises(
        ModelLoadError, match=r"'audio_proj' has shape \(6, 4\), config implies \(6, 3\)"
    ):
        load_model(tmp_path / "shape")
    missing = {k: v for k, v in weights.items() if k != "text_mean"}
    write_model_folder(tmp_path / "missing", model.config, missing)
    with pytest.raises(ModelLoadError, match=r"missing \['text_mean'\]"):
        load_model(tmp_path / "missing")
    config = ModelConfig(
        **{**model.config.__dict__, "options": {**model.config.options, "kind": "pca"}}
    )
    write_model_folder(tmp_path / "kind", config, weights)
    with pytest.raises(ModelLoadError, match="options.kind must be one of"):
        load_model(tmp_path / "kind")
    opts = {k: v for k, v in model.config.options.items() if k != "taggers"}
    write_model_folder(
        tmp_path / "opts", ModelConfig(**{**model.config.__dict__, "options": opts}), weights
    )
    with pytest.raises(ModelLoadError, match="lack 'taggers'"):
        load_model(tmp_path / "opts")


def test_fit_baseline_rejects_unknown_kind():
    A, T = two_views(50, [0.9], fa=4, ft=3, seed=12)
    with pytest.raises(bl.BaselineError, match="unknown baseline kind 'pca'"):
        bl.fit_baseline("pca", A, T, name="x", dim=2)
