"""The models layer: registry, folders, the windowed base class, typed options, the toy model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from melodex.errors import ModelLoadError, ParameterError
from melodex.models import listing, load_model
from melodex.models.base import WindowedJointModel
from melodex.models.config import ModelConfig
from melodex.models.registry import ARCHITECTURES, FAMILIES, Family, missing_weights
from melodex.models.toy import build_toy_model

SR = 16000


def _signal(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 200 + 100 * seed
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def test_toy_model_is_a_full_joint_model(tmp_path: Path) -> None:
    model = build_toy_model(dim=16)
    assert isinstance(model, WindowedJointModel)
    emb = model.embed_waveform(_signal(0, 5.5))
    assert emb.window_vectors.shape == (6, 16)  # 5 full 1-s windows + a half-filled one
    np.testing.assert_allclose(emb.window_starts, [0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(np.linalg.norm(emb.vector), 1.0, atol=1e-6)
    assert emb.tag_scores.shape == (8,) and abs(float(emb.tag_scores.sum()) - 1) < 1e-5
    text = model.encode_text(["bright high band", "low rumble"])
    assert text.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-6)
    # deterministic to the bit, and a saved folder gives the same model
    again = load_model(model.save(tmp_path / "toy"))
    assert again.identity == model.identity
    np.testing.assert_array_equal(again.embed_waveform(_signal(0, 5.5)).vector, emb.vector)
    np.testing.assert_array_equal(again.encode_text("low rumble"), text[1])
    assert again.source == str((tmp_path / "toy").resolve())


def test_toy_model_tells_different_audio_apart() -> None:
    model = build_toy_model()
    a, b = model.encode_audio([_signal(0, 3), _signal(5, 3)])
    a2 = model.encode_audio(_signal(0, 3) * 0.5)  # quieter, same spectrum shape
    assert float(a @ a2) > float(a @ b)


def test_encode_audio_honours_batch_size_and_matches_embed_file(tmp_path: Path) -> None:
    import soundfile as sf

    model = build_toy_model()
    signals = [_signal(i, 2.0 + i) for i in range(5)]
    paths = []
    for i, y in enumerate(signals):
        paths.append(tmp_path / f"s{i}.wav")
        sf.write(paths[-1], y, SR, subtype="FLOAT")
    calls: list[int] = []
    original = model.window_outputs

    def counting(windows: np.ndarray):  # noqa: ANN202
        calls.append(len(windows))
        return original(windows)

    model.window_outputs = counting  # type: ignore[method-assign]
    batched = model.encode_audio(paths, batch_size=2)
    assert len(calls) == 3 and sum(calls) == sum(2 + i for i in range(5))  # 2+2+1 files
    one_by_one = np.stack([model.embed_file(p).vector for p in paths])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
    assert model.encode_audio(signals[0]).shape == (16,)
    with pytest.raises(ParameterError, match="batch_size must be a positive integer"):
        model.encode_audio(paths, batch_size=0)
    with pytest.raises(ParameterError, match="max_windows"):
        model.embed_waveform(signals[0], max_windows=0)


def test_typed_options_reject_unknown_missing_and_bad_values(tmp_path: Path) -> None:
    model = build_toy_model()
    folder = model.save(tmp_path / "toy")
    config = json.loads((folder / "config.json").read_text())
    for options, message in (
        ({**config["options"], "colour": "red"}, r"unknown ToyOptions option\(s\) \['colour'\]"),
        ({**config["options"], "bands": 1}, "options.bands must be 2..64"),
    ):
        (folder / "config.json").write_text(json.dumps({**config, "options": options}))
        with pytest.raises(ModelLoadError, match=message):
            load_model(folder)


def test_options_built_directly_refuse_bad_values_as_parameter_errors() -> None:
    from melodex.models.linear import LinearOptions
    from melodex.models.toy import ToyOptions
    from melodex.models.zero_shot import ZeroShotOptions

    for build, message in (
        (lambda: ToyOptions(bands=1), "options.bands must be 2..64, not 1"),
        (
            lambda: ZeroShotOptions(["MTT_musicnn"], ["rock"], space="audio"),
            "options.space must be 'text' or 'tag'",
        ),
        (lambda: LinearOptions("pca", ["MTT_musicnn"], 50, 384), "options.kind must be one of"),
    ):
        with pytest.raises(ParameterError, match=message):
            build()


def test_registry_lists_architectures_and_loads_lazily() -> None:
    found = listing()
    names = {a["name"] for a in found["architectures"]}
    assert {"zero-shot-tags", "dual-encoder", "linear-projection", "toy-hash"} <= names
    assert found["default"] == "melodex-base" and "melodex-base" in found["builtin"]
    for arch in ARCHITECTURES.values():
        module, _, func = arch.loader.partition(":")
        assert module.startswith("melodex.models.") and func


def test_unknown_architecture_and_bad_family_spec_are_clear(tmp_path: Path) -> None:
    folder = build_toy_model().save(tmp_path / "toy")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architecture": "nope"}))
    with pytest.raises(ModelLoadError, match="unknown architecture 'nope'"):
        load_model(folder)
    FAMILIES["fake-family"] = Family(
        "fake-family", "melodex.models.toy:build_toy_model", "test", "NAME", "MIT", "here"
    )
    try:
        with pytest.raises(ModelLoadError, match="say which model after the colon"):
            load_model("fake-family:")
    finally:
        del FAMILIES["fake-family"]
    with pytest.raises(ModelLoadError, match="not a folder, and not a built-in model"):
        load_model("no-such-family:thing")


def test_licence_is_metadata_not_part_of_the_identity() -> None:
    model = build_toy_model()
    relicensed = type(model)(
        ModelConfig(**{**model.config.__dict__, "licence": "CC-BY-NC-4.0"}), model._weights
    )
    assert relicensed.identity == model.identity and relicensed.licence == "CC-BY-NC-4.0"
    assert load_model("melodex-base").licence  # the built-in model states its licence


def test_cli_models_json_lists_architectures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "melodex", "models", "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert "dual-encoder" in {a["name"] for a in found["architectures"]}
    families = {f["prefix"]: f for f in found["families"]}
    assert {"clap-hf", "laion-clap", "ms-clap", "muq-mulan", "ttmr", "ttmr-pp"} <= set(families)
    for f in families.values():
        assert f["licence"] and f["weights"] and f["dim"] and f["sample_rate"] and f["window"]
    assert "NC" in families["muq-mulan"]["licence"]  # non-commercial weights say so
    text = subprocess.run(
        [sys.executable, "-m", "melodex", "models"], capture_output=True, text=True
    ).stdout
    assert "licence: CC-BY-NC-4.0" in " ".join(text.split())  # not eaten as rich markup


def test_listing_families_imports_no_adapter_code() -> None:
    code = (
        "import sys; from melodex.models import listing; listing(); "
        "print([m for m in sys.modules if m.startswith('melodex.models.') and "
        "m.rsplit('.', 1)[1] in ('clap_hf', 'laion_clap', 'ms_clap', 'ttmr', 'ttmr_pp', "
        "'muq_mulan')] + [m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_family_without_its_adapter_or_weights_says_what_to_do() -> None:
    FAMILIES["fake-family"] = Family(
        "fake-family", "melodex.models.no_such_adapter:load", "test", "FILE", "MIT", "it here"
    )
    try:
        with pytest.raises(ModelLoadError, match="no adapter module melodex.models.no_such"):
            load_model("fake-family:x")
    finally:
        del FAMILIES["fake-family"]
    err = missing_weights("laion-clap", "/nowhere/x.pt", "no such file")
    assert "lukewys/laion_clap" in str(err) and "/nowhere/x.pt" in str(err)
