"""describe against a named manifest's texts: ranked, with their sources, embedded once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melodex.errors import MelodexError
from melodex.library.text_sets import read_texts

ITEMS = [
    {"id": "a", "audio": "a.flac", "tags": [], "split": "test", "texts": [
        {"kind": "caption", "text": "a slow organ chorale"},
        {"kind": "review", "text": "the organ drones on and on"},
        {"kind": "tag", "text": "organ, baroque"}]},
    {"id": "b", "audio": "b.flac", "tags": [], "split": "test", "texts": [
        {"kind": "caption", "text": "clicks and crackles"},
        {"kind": "review", "text": "band 3 all the way"},
        {"kind": "caption", "text": "clicks and crackles"}]},
]  # fmt: skip


def _manifest(folder: Path) -> Path:
    path = folder / "texts.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in ITEMS), "utf-8")
    return path


def test_describe_ranks_a_manifests_texts_with_sources(tagged, toy_model, tmp_path) -> None:
    lib, paths = tagged
    manifest = _manifest(tmp_path)
    desc = lib.describe(paths["kyrie"], k=3, texts=manifest)
    texts, items, kinds = read_texts(manifest)
    assert len(texts) == 5  # the repeated caption once
    emb = lib.embed(paths["kyrie"])
    scores = toy_model.encode_text(texts) @ emb.vector
    best = np.argsort(-scores, kind="stable")[:3]
    assert [m["text"] for m in desc.matches] == [texts[i] for i in best]
    assert [(m["item"], m["kind"]) for m in desc.matches] == [(items[i], kinds[i]) for i in best]
    np.testing.assert_allclose([m["score"] for m in desc.matches], scores[best], atol=1e-5)
    assert desc.to_json()["matches"] == desc.matches
    reviews = lib.describe(paths["kyrie"], k=5, texts=manifest, kinds={"review"})
    assert {m["kind"] for m in reviews.matches} == {"review"} and len(reviews.matches) == 2
    # embedded once, kept beside the library; a changed file is embedded again
    cached = sorted((Path(lib.path) / "text-sets").glob("*.npz"))
    assert len(cached) == 1
    again = lib.describe(paths["kyrie"], k=3, texts=manifest)
    assert again.matches == desc.matches
    assert sorted((Path(lib.path) / "text-sets").glob("*.npz")) == cached
    lines = tmp_path / "lines.txt"
    lines.write_text("organ music\n\nclicks\n", "utf-8")
    plain = lib.describe(paths["kyrie"], k=5, texts=lines)
    assert {(m["item"], m["kind"]) for m in plain.matches} == {
        ("line 1", "text"),
        ("line 3", "text"),
    }
    assert len(list((Path(lib.path) / "text-sets").glob("*.npz"))) == 2
    with pytest.raises(MelodexError, match="no such"):
        lib.describe(paths["kyrie"], texts=tmp_path / "missing.jsonl")


def test_cli_describe_texts(tagged, tmp_path) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    lib, paths = tagged
    res = CliRunner().invoke(
        app,
        ["describe", str(paths["reel"]), "--texts", str(_manifest(tmp_path)), "--kind", "caption",
         "-k", "2", "--db", str(lib.path), "--model", lib.model.source, "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    matches = json.loads(res.stdout)["matches"]
    assert len(matches) == 2 and all(m["kind"] == "caption" for m in matches)
    assert {m["item"] for m in matches} <= {"a", "b"}
