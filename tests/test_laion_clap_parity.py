"""laion-clap against the ``laion-clap`` package's own inference (recorded in a side
environment by scripts/record_laion_clap_reference.py, as the package pins numpy 1.x).

The test rebuilds the recorded random-weight checkpoint from the fixture's key names and shapes
(HTSAT-tiny, a one-layer RoBERTa), saves it in the release format (``{'state_dict': ...}``,
``module.`` prefixes), loads it through ``laion-clap:<file>`` and compares embeddings to 1e-5.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from melodex.errors import ModelLoadError  # noqa: E402
from melodex.models import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "laion_clap_reference.npz"
ATOL = 1e-5


def recorder():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location(
        "record_laion_clap_reference", ROOT / "scripts" / "record_laion_clap_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


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
