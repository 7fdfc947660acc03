"""ms-clap against the ``msclap`` package's own inference (recorded in a side environment by
scripts/record_ms_clap_reference.py, as the package pins numpy<2 and transformers<5).

The test rebuilds the recorded random-weight 2023 checkpoint (HTSAT-tiny, a one-layer GPT-2)
from the fixture's key names and shapes, with the package's mel bank, saves it in the release
format (``{'model': state_dict}``), loads it through ``ms-clap:<file>`` and compares embeddings
to 1e-5. The 2022 network (Cnn14 + a one-layer BERT) is checked the same way, marked heavy:
Cnn14's size is fixed at ~80M parameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from melodex.errors import ModelLoadError  # noqa: E402
from melodex.models import load_model  # noqa: E402
from melodex.models.base import l2_normalize  # noqa: E402
from tests.script_modules import load_script, recorded_arrays  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "ms_clap" / "reference.npz"
ATOL = 1e-5


def recorder():  # noqa: ANN201
    return load_script("scripts/record_ms_clap_reference.py")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return recorded_arrays(FIXTURE)


@pytest.fixture(scope="module")
def checkpoint(ref, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = recorder()
    folder = tmp_path_factory.mktemp("msclap")
    shapes = json.loads(str(ref["shapes"]))
    state = {k: torch.from_numpy(rec.fixture_tensor(k, tuple(s))) for k, s in shapes.items()}
    state[rec.MEL_KEY] = torch.from_numpy(ref["mel_bank"])
    torch.save({"model": state}, folder / "CLAP_weights_random.pth")
    rec.gpt2_tokenizer(str(ref["vocab_json"]), str(ref["merges_txt"]), folder / "gpt2")
    return folder / "CLAP_weights_random.pth"


@pytest.fixture(scope="module")
def model(checkpoint: Path):  # noqa: ANN201
    return load_model(f"ms-clap:{checkpoint}")


def test_text_embeddings_equal_the_package(ref, model) -> None:
    texts = recorder().TEXTS
    got = model.encode_text(texts, normalize=False)
    np.testing.assert_allclose(got, ref["text_embed"], atol=ATOL)
    # one at a time (another padding length) gives the same vectors
    alone = np.stack([model.encode_text(t, normalize=False) for t in texts])
    np.testing.assert_allclose(alone, ref["text_embed"], atol=ATOL)


def test_audio_embeddings_equal_the_package(ref, model, checkpoint: Path) -> None:
    assert model.sample_rate == 44100 and model.window_samples == 7 * 44100
    seven, three = recorder().make_audio()
    windows = np.stack([model.select(y, "config")[0][0] for y in (seven, three)])
    np.testing.assert_allclose(model.project_windows(windows), ref["audio_embed"], atol=ATOL)
    got = np.stack([model.embed_waveform(seven).vector, model.embed_waveform(three).vector])
    np.testing.assert_allclose(got, l2_normalize(ref["audio_embed"]), atol=ATOL)
    assert model.source == f"ms-clap:{checkpoint}" and "MIT" in str(model.licence)


def test_mel_bank_built_without_the_checkpoint_equals_the_package(ref) -> None:
    from melodex.models.laion_clap import LogMel

    built = LogMel(32000, hop=320, fmin=50.0, fmax=14000.0).mel.numpy()
    np.testing.assert_allclose(built, ref["mel_bank"], atol=1e-6)


def test_missing_or_wrong_checkpoint_says_what_to_get(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file.*microsoft/msclap"):
        load_model(f"ms-clap:{tmp_path / 'CLAP_weights_2023.pth'}")
    (tmp_path / "x.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a tensor-only checkpoint"):
        load_model(f"ms-clap:{tmp_path / 'x.pth'}")
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "other.pth")
    with pytest.raises(ModelLoadError, match="no HTSAT or Cnn14 audio tower"):
        load_model(f"ms-clap:{tmp_path / 'other.pth'}")


def test_a_release_name_offline_says_what_to_get(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-melodex-test-cache")
    with pytest.raises(ModelLoadError, match="CLAP_weights_2023.pth is not in the hub cache"):
        load_model("ms-clap:2023")


@pytest.mark.heavy  # Cnn14 is fixed at ~80M parameters: a 320 MB random checkpoint
def test_2022_cnn14_bert_equals_the_package(tmp_path: Path) -> None:
    rec = recorder()
    with np.load(rec.FIXTURE_2022) as data:
        ref = dict(data)
    shapes = json.loads(str(ref["shapes"]))
    state = {k: torch.from_numpy(rec.fixture_tensor(k, tuple(s))) for k, s in shapes.items()}
    state[rec.MEL_KEY_2022] = torch.from_numpy(ref["mel_bank"])
    torch.save({"model": state}, tmp_path / "CLAP_weights_2022_random.pth")
    del state
    rec.bert_tokenizer(str(ref["vocab_txt"]), tmp_path / "bert-base-uncased")
    model = load_model(f"ms-clap:{tmp_path / 'CLAP_weights_2022_random.pth'}")
    assert model.window_samples == 5 * 44100 and model.config.options["release"] == "2022"
    np.testing.assert_allclose(
        model.encode_text(rec.TEXTS, normalize=False), ref["text_embed"], atol=ATOL
    )
    windows = np.stack([model.select(y, "config")[0][0] for y in rec.make_audio(5.0)])
    np.testing.assert_allclose(model.project_windows(windows), ref["audio_embed"], atol=ATOL)
