"""The built-in model: folder loading with clear errors, the encode API, and zero-shot sense."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from melodex.data.render import Part, find_soundfont, render_parts
from melodex.errors import ModelLoadError
from melodex.models import load_model
from melodex.models.folder import builtin_models, model_folder


def test_builtin_model_is_listed_and_identity_is_stable(base_model) -> None:
    assert "melodex-base" in builtin_models()
    assert base_model.identity == load_model("melodex-base").identity
    assert base_model.identity.startswith("melodex-base@")


def test_encode_text_shapes_and_norms(base_model) -> None:
    one = base_model.encode_text("banjo")
    many = base_model.encode_text(["banjo", "chill", "banjo"])
    assert one.shape == (base_model.dim,) and many.shape == (3, base_model.dim)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(many[0], one, atol=1e-5)  # batch padding moves the last digits
    assert float(many[0] @ many[1]) < 0.99
    assert base_model.encode_text([]).shape == (0, base_model.dim)


def test_encode_audio_from_waveforms(base_model) -> None:
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(16000 * 7)).astype(np.float32)
    short = (0.1 * rng.standard_normal(16000)).astype(np.float32)  # < 1 window: padded to one
    vectors = base_model.encode_audio([noise, short])
    assert vectors.shape == (2, base_model.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(base_model.encode_audio(noise), vectors[0])  # deterministic


def _copy_base(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(model_folder("melodex-base"), folder)
    return folder


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a folder, and not a built-in model"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_model(tmp_path / "empty")

    folder = _copy_base(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architecture": "nope"}))
    with pytest.raises(ModelLoadError, match="unknown architecture 'nope'"):
        load_model(folder)
    (folder / "config.json").write_text(json.dumps({**config, "colour": "blue"}))
    with pytest.raises(ModelLoadError, match="unknown config keys"):
        load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable config"):
        load_model(folder)


def test_shape_mismatch_is_refused(tmp_path: Path, base_model) -> None:
    from safetensors.numpy import load_file, save_file

    folder = _copy_base(tmp_path)
    weights = load_file(str(folder / "model.safetensors"))
    weights["tag_embeddings"] = weights["tag_embeddings"][:-1]
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="tag_embeddings"):
        load_model(folder)
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="unreadable weights"):
        load_model(folder)


def test_saved_model_round_trips(tmp_path: Path, base_model) -> None:
    out = base_model.save(tmp_path / "copy")
    again = load_model(out)
    assert again.identity.split("@")[1] == base_model.identity.split("@")[1]


def _melody(program: int, *, step: float, chords: bool) -> list[Part]:
    rng = np.random.default_rng(program)
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = []
    for onset in np.arange(0.0, 12.0, step):
        pitch = int(rng.choice(scale))
        for offset in (-12, 0, 4) if chords else (0,):
            notes.append((float(onset), step * 0.95, pitch + offset, 90))
    return [Part(program, notes)]


def test_zero_shot_search_finds_the_instrument(tmp_path: Path, base_model) -> None:
    """Real soundfont renderings: each instrument's name must retrieve its own clip first."""
    clips = {
        "piano": _melody(0, step=0.25, chords=False),
        "choir": _melody(52, step=1.0, chords=True),
        "violin": _melody(40, step=0.5, chords=False),
    }
    paths = []
    for name, parts in clips.items():
        path = tmp_path / f"{name}.flac"
        render_parts(
            parts, path, seconds=10, soundfont=find_soundfont(), tags={}, work_dir=tmp_path / "w"
        )
        paths.append(path)
    audio = base_model.encode_audio(paths)
    text = base_model.encode_text(list(clips))
    assert list((text @ audio.T).argmax(axis=1)) == [0, 1, 2]
    top = [name for name, _ in base_model.tag(paths[1], k=3)]
    assert "choir" in top


def test_fast_query_path_equals_sentence_transformers(base_model) -> None:
    from melodex.encoders.text import TextEncoder

    enc = TextEncoder(cache_size=0)
    texts = ["banjo", "a slow sad melody on a cello", "fusion jazz with synth, bass and saxophone"]
    assert enc._fast_path_ok
    fast = np.stack([enc.encode(t) for t in texts])  # one at a time: the direct path
    reference = enc._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(fast, reference, atol=1e-5)
    batch = enc.encode(texts * 4)  # 12 texts: the sentence-transformers path
    np.testing.assert_allclose(batch[:3], reference, atol=1e-5)
