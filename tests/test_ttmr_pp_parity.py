"""TTMR++ through melodex equals the authors' code on the same random weights.

tests/fixtures/ttmr_pp/ is made by ``scripts/record_ttmr_references.py --family ttmr-pp``: the
authors' ``DualEncoderModel`` (small widths, random weights) saved in their checkpoint format
with its hparams yaml and a tiny RoBERTa config + tokenizer (``roberta-base/``), and the
outputs of their inference (``get_latent.py``) on the script's clips and texts
(PROVENANCE.json names the repository, commit and texts).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from melodex.errors import ModelLoadError
from melodex.models import ttmr_pp
from tests.script_modules import load_script  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "ttmr_pp"
CHECKPOINT = FIXTURE / "ttmrpp_tiny.pth"
ATOL = 1e-5
# The audio tower of this random-weight fixture turns float32 rounding into ~1e-4 on its unit
# outputs: the recording's clips and the same code differ by 1.2e-4 on an AVX-512 Intel Xeon and
# by 3.1e-4 with MKL_ENABLE_INSTRUCTIONS=AVX2 (MKL's FFT and GEMM change with the CPU), against
# 1e-5 on the AMD EPYC that recorded it. A wrong port moves them by 1e-2 or more (the tests below).
# Figures: bench/bench_parity_spread.py, under those MKL settings.
AUDIO_ATOL = 2e-3


def _script():  # noqa: ANN201
    return load_script("scripts/record_ttmr_references.py")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "reference.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def model() -> ttmr_pp.TtmrPPModel:
    return ttmr_pp.load(str(CHECKPOINT))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_text_equals_reference(model, ref) -> None:
    texts = json.loads((FIXTURE / "PROVENANCE.json").read_text())["texts"]
    raw = model.encode_text(texts, normalize=False)  # batched, padded: the reference ran one by one
    np.testing.assert_allclose(raw, ref["text_vectors"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(model.encode_text(texts), _unit(ref["text_vectors"]), atol=ATOL)
    assert model.encode_text(texts[1]).shape == (model.dim,)


def test_audio_equals_reference(model, ref) -> None:
    script = _script()
    clips = script.make_clips(22050, script.CLIP_SECONDS["ttmr-pp"])
    embs = [model.embed_waveform(c, max_windows=None) for c in clips]
    windows = np.concatenate([e.window_vectors for e in embs])
    np.testing.assert_allclose(windows, _unit(ref["window_outputs"]), atol=AUDIO_ATOL)
    vectors = np.stack([e.vector for e in embs])
    np.testing.assert_allclose(vectors, _unit(ref["audio_vectors"]), atol=AUDIO_ATOL)
    # encode_audio: the same per-track rule (the mel floor is never shared across tracks)
    np.testing.assert_allclose(
        model.encode_audio(clips[:1], max_windows=None)[0], vectors[0], atol=1e-6
    )


@pytest.mark.parametrize("change", ["one-sample shift", "no int16 rule"])
def test_audio_tolerance_still_sees_a_wrong_front_end(model, ref, change, monkeypatch) -> None:
    """The loose audio tolerance is still far below what a port's mistake costs."""
    from melodex.models.base import WindowedJointModel

    clips = _script().make_clips(22050, _script().CLIP_SECONDS["ttmr-pp"])
    if change == "one-sample shift":
        clips = [np.roll(c, 1) for c in clips]
    else:
        monkeypatch.setattr(ttmr_pp.TtmrPPModel, "select", WindowedJointModel.select)
    embs = [model.embed_waveform(c, max_windows=None) for c in clips]
    windows = np.concatenate([e.window_vectors for e in embs])
    assert np.abs(windows - _unit(ref["window_outputs"])).max() > 20 * AUDIO_ATOL


def test_identity_config_and_licence(model) -> None:
    assert model.dim == 16 and model.sample_rate == 22050 and model.window_samples == 44100
    assert model.identity.startswith("ttmr-pp@")
    assert "CC-BY-NC" in model.licence
    assert model.options.max_length == 24 and model.options.width == 4


def test_minmax_int16_matches_the_original_rule() -> None:
    y = np.array([-0.5, 0.0, 0.25, 1.0], np.float32)
    # min-max to [-1, 1], truncated to int16, / 32767
    expected = np.array([-32767, -10922, 0, 32767]) / 32767.0
    np.testing.assert_allclose(ttmr_pp.minmax_int16(y), expected, atol=1e-7)
    assert not ttmr_pp.minmax_int16(np.ones(10, np.float32)).any()


def test_saved_folder_reloads_offline(model, tmp_path) -> None:
    folder = model.save(tmp_path / "m")
    again = ttmr_pp.load_folder(*_read(folder), source=str(folder))
    assert again.identity == model.identity
    texts = ["jazz", "banjo and drums"]
    np.testing.assert_allclose(again.encode_text(texts), model.encode_text(texts), atol=1e-6)


def _read(folder: Path):
    from melodex.models.folder import read_model_folder

    return read_model_folder(folder)


def test_missing_and_wrong_checkpoints(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="huggingface.co/seungheondoh/ttmr-pp"):
        ttmr_pp.load(str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="weights-only"):
        ttmr_pp.load(str(bad))
    # a checkpoint whose tensors do not fit: named in the error
    state = torch.load(CHECKPOINT, weights_only=True)
    state["state_dict"].pop("audio_projector.1.weight")
    state["state_dict"]["text_projector.1.weight"] = torch.zeros(3, 3)
    shutil.copytree(FIXTURE / "roberta-base", tmp_path / "roberta-base")
    shutil.copy(FIXTURE / "ttmrpp_tiny.yaml", tmp_path / "broken.yaml")
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ModelLoadError, match="audio_projector"):
        ttmr_pp.load(str(tmp_path / "broken.pth"))


def test_text_tower_missing_says_where_to_put_it(tmp_path) -> None:
    shutil.copy(CHECKPOINT, tmp_path / "ttmrpp_tiny.pth")
    (tmp_path / "ttmrpp_tiny.yaml").write_text("text_arch: no-such-text-model-xyz\n")
    with pytest.raises(ModelLoadError, match="no-such-text-model-xyz"):
        ttmr_pp.load(str(tmp_path / "ttmrpp_tiny.pth"))


def test_loads_through_the_registry_by_spec(model) -> None:
    from melodex.models import load_model

    again = load_model(f"ttmr-pp:{CHECKPOINT}")
    assert again.source == f"ttmr-pp:{CHECKPOINT}" and again.identity == model.identity
