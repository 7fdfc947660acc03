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


def test_http_lists_held_text_sets_and_describe_ranks_one(tagged, tmp_path) -> None:
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from melodex.library.text_sets import _key, held_text_sets
    from melodex.serve import ServeConfig, create_app

    lib, paths = tagged
    manifest = _manifest(tmp_path)
    lib.describe(paths["kyrie"], k=1, texts=manifest)  # the CLI's describe --texts keeps it
    key = _key(manifest.resolve(), lib.model)
    client = TestClient(
        create_app(ServeConfig(db=lib.path, model=lib.model)), base_url="http://localhost"
    )
    listed = {s["id"]: s for s in client.get("/api/text-sets").json()}
    assert listed[key] == {"id": key, "name": "texts.jsonl", "texts": 5,
                           "kinds": ["caption", "review", "tag"]}  # fmt: skip
    assert str(tmp_path) not in str(listed)  # file names only, never folders

    def describe(**params: object) -> dict:
        with open(paths["kyrie"], "rb") as f:
            files = {"file": ("kyrie.flac", f, "audio/flac")}
            r = client.post("/api/describe", params={"k": 3, **params}, files=files)
        assert r.status_code == 200, r.text
        return r.json()

    assert "matches" not in describe() or describe()["matches"] is None
    matches = describe(texts=key)["matches"]
    texts, items, kinds = read_texts(manifest)
    source = {t: (i, k) for t, i, k in zip(texts, items, kinds, strict=True)}
    assert len(matches) == 3 and [m["score"] for m in matches] == sorted(
        (m["score"] for m in matches), reverse=True
    )
    assert all(source[m["text"]] == (m["item"], m["kind"]) for m in matches)
    expected = lib.describe(paths["kyrie"], k=3, texts=manifest).matches
    assert [m["text"] for m in matches] == [m["text"] for m in expected]
    reviews = describe(texts=key, kind="review")["matches"]
    assert len(reviews) == 2 and {m["kind"] for m in reviews} == {"review"}

    for bad in ("0" * 20, "../../etc/passwd", str(manifest)[:40]):
        r = client.post("/api/describe", params={"texts": bad},
                        files={"file": ("x.flac", b"fLaC", "audio/flac")})  # fmt: skip
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_text_set"
        assert str(lib.path) not in r.text
    # an edited manifest is embedded again: the set it replaced is no longer offered
    manifest.write_text(manifest.read_text("utf-8") + json.dumps(
        {"id": "c", "audio": "c.flac", "tags": [], "split": "test",
         "texts": [{"kind": "tag", "text": "folk"}]}
    ) + "\n", "utf-8")  # fmt: skip
    assert key not in {s["id"] for s in held_text_sets(Path(lib.path), lib.model)}
    stale = client.post("/api/describe", params={"texts": key},
                        files={"file": ("x.flac", b"fLaC", "audio/flac")})  # fmt: skip
    assert stale.status_code == 404
    lib.describe(paths["kyrie"], k=1, texts=manifest)
    new = {s["id"]: s for s in client.get("/api/text-sets").json()}[_key(manifest, lib.model)]
    assert new["texts"] == 6
    manifest.unlink()  # a set whose file is gone stays offered: it was embedded with this model
    assert new["id"] in {s["id"] for s in client.get("/api/text-sets").json()}
