"""laion-clap against the ``laion-clap`` package's own inference (recorded in a side
environment by scripts/record_laion_clap_reference.py, as the package pins numpy 1.x).

The test rebuilds the recorded random-weight checkpoint from the fixture's key names and shapes
(HTSAT-tiny, a one-layer RoBERTa), saves it in the release format (``{'state_dict': ...}``,
``module.`` prefixes), loads it through ``laion-clap:<file>`` and compares embeddings to 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from melodex.errors import MelodexError, ModelLoadError  # noqa: E402
from melodex.models import load_model  # noqa: E402
from tests.script_modules import load_script, recorded_arrays  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "laion_clap_reference.npz"
ATOL = 1e-5


def recorder():  # noqa: ANN201
    return load_script("scripts/record_laion_clap_reference.py")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return recorded_arrays(FIXTURE)


@pytest.fixture(scope="module")
def checkpoint(ref, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = recorder()
    folder = tmp_path_factory.mktemp("laion")
    shapes = json.loads(str(ref["shapes"]))
    state = {
        "module." + k: torch.from_numpy(rec.fixture_tensor(k, tuple(s))) for k, s in shapes.items()
    }
    torch.save({"state_dict": state}, folder / "music_random.pt")
    rec.roberta_tokenizer(str(ref["vocab_json"]), str(ref["merges_txt"])).save_pretrained(
        str(folder / "roberta-base")
    )
    return folder / "music_random.pt"


@pytest.fixture(scope="module")
def model(checkpoint: Path):  # noqa: ANN201
    return load_model(f"laion-clap:{checkpoint}")


def test_text_embeddings_equal_the_package(ref, model) -> None:
    got = model.encode_text(recorder().TEXTS)
    np.testing.assert_allclose(got, ref["text_embed"], atol=ATOL)


def test_audio_embeddings_equal_the_package(ref, model, checkpoint: Path) -> None:
    assert model.sample_rate == 48000 and not model.config.options["fusion"]
    ten, four = recorder().make_audio()
    got = np.stack([model.embed_waveform(ten).vector, model.embed_waveform(four).vector])
    np.testing.assert_allclose(got, ref["audio_embed"], atol=ATOL)
    assert model.source == f"laion-clap:{checkpoint}" and "CC0" in str(model.licence)


def test_missing_checkpoint_or_tokenizer_says_what_to_get(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file.*lukewys/laion_clap"):
        load_model(f"laion-clap:{tmp_path / 'music_audioset_epoch_15_esc_90.14.pt'}")
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a tensor-only checkpoint"):
        load_model(f"laion-clap:{tmp_path / 'x.pt'}")


# -- fusion (recorded with ``--fusion``: torchaudio's mel, torchvision's shrink) ---------------
FUSION_FIXTURE = ROOT / "tests" / "fixtures" / "laion_clap_fusion_reference.npz"


@pytest.fixture(scope="module")
def fusion_ref() -> dict[str, np.ndarray]:
    with np.load(FUSION_FIXTURE) as data:
        return dict(data)


@pytest.fixture(scope="module")
def fusion_model(fusion_ref, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    rec = recorder()
    folder = tmp_path_factory.mktemp("laion_fusion")
    shapes = json.loads(str(fusion_ref["shapes"]))
    state = {
        "module." + k: torch.from_numpy(rec.fixture_tensor(k, tuple(s))) for k, s in shapes.items()
    }
    assert any(".fusion_model." in k for k in state)
    torch.save({"state_dict": state}, folder / "fusion_random.pt")
    tok = rec.roberta_tokenizer(str(fusion_ref["vocab_json"]), str(fusion_ref["merges_txt"]))
    tok.save_pretrained(str(folder / "roberta-base"))
    return load_model(f"laion-clap:{folder / 'fusion_random.pt'}")


def test_fusion_text_equals_the_package(fusion_ref, fusion_model) -> None:
    got = fusion_model.encode_text(recorder().TEXTS)
    np.testing.assert_allclose(got, fusion_ref["text_embed"], atol=ATOL)


def test_fusion_short_clip_and_window_equal_the_package(fusion_ref, fusion_model) -> None:
    """A 4 s clip: melodex's repeat-padded window (the track path) and the whole-clip path."""
    assert fusion_model.config.options["fusion"]
    short, _ = recorder().make_fusion_audio()
    want = fusion_ref["audio_embed"][0]
    np.testing.assert_allclose(fusion_model.embed_waveform(short).vector, want, atol=ATOL)
    np.testing.assert_allclose(fusion_model.embed_fused_clip(short), want, atol=ATOL)


def test_fusion_long_clip_with_the_package_crops(fusion_ref, fusion_model) -> None:
    """A 23 s clip: shrunk mel + the three crops the package drew (recorded starts)."""
    _, long = recorder().make_fusion_audio()
    starts = tuple(int(s) for s in fusion_ref["crop_starts"])
    assert starts == tuple(recorder().replay_crop_starts(len(long)))
    got = fusion_model.embed_fused_clip(long, starts)
    np.testing.assert_allclose(got, fusion_ref["audio_embed"][1], atol=ATOL)
    # melodex's own rule: the middle of each third (not drawn), and a start out of range says so
    mel_frames = len(long) // 480 + 1
    thirds = np.array_split(np.arange(mel_frames - 1001 + 1), 3)
    default = fusion_model.fused_clip_inputs(long)["input_features"]
    middle = fusion_model.fused_clip_inputs(long, tuple(int(t[len(t) // 2]) for t in thirds))
    assert torch.equal(default, middle["input_features"])
    assert not torch.equal(default, fusion_model.fused_clip_inputs(long, starts)["input_features"])
    with pytest.raises(MelodexError, match="crop start 99999 is outside"):
        fusion_model.embed_fused_clip(long, (starts[0], starts[1], 99999))


def test_fusion_long_track_is_windowed_deterministically(fusion_model) -> None:
    """melodex's whole-track rule: 10 s windows (each as the package embeds a <= 10 s clip)."""
    _, long = recorder().make_fusion_audio()
    track = fusion_model.embed_waveform(long)
    assert list(track.window_starts) == [0.0, 10.0]  # the 3 s tail (< 5 s) is dropped
    first = fusion_model.embed_fused_clip(long[: 10 * 48000])
    np.testing.assert_allclose(track.window_vectors[0], first, atol=ATOL)
