"""The demo corpus: real pieces rendered to real audio, with a manifest that tells the truth."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("music21")
if shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file():
    pytest.skip("needs Debian fluidsynth and fluid-soundfont-gm", allow_module_level=True)

from melodex.data import demo, render  # noqa: E402
from melodex.data.manifest import read_manifest, write_manifest  # noqa: E402
from melodex.errors import MelodexError  # noqa: E402

pytestmark = pytest.mark.heavy  # fluidsynth renders

SECONDS = 8.0
ARGS = {"n_tracks": 4, "seconds": SECONDS, "seed": 3, "formats": ("flac", "mp3")}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    calls = []
    manifest = demo.build_demo(out, progress=lambda d, t, _note: calls.append((d, t)), **ARGS)
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    return manifest


@pytest.fixture(scope="module")
def items(built) -> list[dict]:
    return read_manifest(built)


def test_files_exist_decode_and_have_the_requested_length(built, items):
    assert len(items) == 4
    assert {Path(it["audio"]).suffix for it in items} == {".flac", ".mp3"}
    for it in items:
        audio, sr = sf.read(built.parent / it["audio"], always_2d=True)
        assert sr == 44100
        assert abs(audio.shape[0] / sr - SECONDS) < 0.5, it["id"]
        assert 0.05 < abs(audio).max() <= 1.0
        assert it["start"] is None and it["end"] is None


def test_file_tags_match_the_manifest(built, items):
    from mutagen import File

    for it in items:
        tags = File(built.parent / it["audio"], easy=True)
        assert tags["title"] == [it["title"]]
        assert tags["artist"] == [it["artist"]]
        assert tags["album"] == [it["album"]]
        assert tags["genre"] == [it["extra"]["genre"]]


def test_tags_and_captions_agree_with_extra(items):
    for it in items:
        extra, tags = it["extra"], it["tags"]
        captions = [t["text"] for t in it["texts"] if t["kind"] == "caption"]
        assert 2 <= len(captions) <= 3
        assert all(t == t.lower() for t in tags)
        low, high = demo.TEMPO_BPM[extra["tempo"]]
        assert low <= extra["bpm"] <= high and extra["tempo"] in tags
        for name in extra["instruments"]:
            assert name in tags
            stem = name.rstrip("s")
            assert sum(stem in c.lower() for c in captions) >= len(captions) - 1, (name, captions)
        assert extra["form"] in tags and extra["era"] in tags and extra["ensemble"] in tags
        assert extra["metre"] in tags
        if extra["collection"] in demo._TONAL:
            assert extra["key"].lower() in tags and extra["mode"] in tags
        assert it["split"] in ("train", "valid", "test")
        assert {t["kind"] for t in it["texts"]} == {"caption", "tag", "metadata"}


def test_collections_are_balanced_and_folk_tunes_have_a_tune_type(items):
    collections = Counter(it["extra"]["collection"] for it in items)
    assert len(collections) == 4  # four slots, four different collections
    for it in items:
        if it["extra"]["collection"] in ("ryans-mammoth", "oneills-1850"):
            assert it["extra"]["form"] in {
                "reel",
                "jig",
                "hornpipe",
                "slip jig",
                "strathspey",
                "air",
            }


def test_splits_are_per_piece_and_about_80_10_10():
    pieces = [c for name in demo.COLLECTIONS for c in demo.list_candidates(name)]
    splits = defaultdict(set)
    for cand in pieces:
        splits[cand.key].add(demo.split_of(cand.key))
    assert all(len(s) == 1 for s in splits.values())
    share = Counter(demo.split_of(k) for k in splits)
    assert 0.75 < share["train"] / len(splits) < 0.85
    assert 0.07 < share["test"] / len(splits) < 0.13


def test_same_seed_gives_the_same_manifest_and_resume_renders_only_what_is_missing(built, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(built.parent, copy)
    victim = read_manifest(built)[1]
    (copy / victim["audio"]).unlink()
    others = {p.name: p.stat().st_mtime_ns for p in (copy / "audio").iterdir()}
    calls = []
    manifest = demo.build_demo(copy, progress=lambda d, t, _note: calls.append((d, t)), **ARGS)
    assert calls == [(3, 4), (4, 4)]
    assert manifest.read_bytes() == built.read_bytes()
    assert (copy / victim["audio"]).is_file()
    for p in (copy / "audio").iterdir():
        if p.name in others:
            assert p.stat().st_mtime_ns == others[p.name], f"{p.name} was rendered again"


def test_another_seed_changes_the_plan():
    first = [s[0].key for s in demo.plan_tracks(8, seed=0)]
    again = [s[0].key for s in demo.plan_tracks(8, seed=0)]
    other = [s[0].key for s in demo.plan_tracks(8, seed=1)]
    assert first == again and first != other
    assert len({demo.COLLECTIONS[s[0].collection].name for s in demo.plan_tracks(8)}) == 8


def test_grace_notes_render_within_the_timeout(tmp_path):
    # Acacia Reel has ABC grace notes ({d}); on a sustained organ a grace note written as a
    # zero-length note would never stop and fluidsynth would write forever.
    cand = demo.Candidate("ryans-mammoth", "ryansMammoth/AcaciaReel.abc", form="reel")
    piece = demo.load_piece(cand)
    assert all(d > 0 for part in piece.parts for _, d, _ in part)
    arr = demo.arrange(piece, cand, seed=0, seconds=6.0)
    parts = [
        render.Part(19, p.notes + [(1.0, 0.0, 74, 90)]) for p in arr.parts
    ]  # organ + a 0-length
    start = time.monotonic()
    out = tmp_path / "grace.flac"
    duration = render.render_parts(
        parts, out, seconds=6.0, soundfont=render.find_soundfont(), tags={"title": "t"},
        work_dir=tmp_path / "work",
    )  # fmt: skip
    assert time.monotonic() - start < 20
    assert 5.5 < duration <= 6.0 and out.is_file()


def test_bad_manifest_lines_are_all_reported_with_line_numbers(built, tmp_path):
    good = read_manifest(built)[0]
    (tmp_path / good["audio"]).parent.mkdir(parents=True)
    shutil.copy(built.parent / good["audio"], tmp_path / good["audio"])
    bad = [
        good,
        {k: v for k, v in good.items() if k != "split"},
        {**good, "id": "b", "split": "dev"},
        {**good, "id": "c", "texts": [{"kind": "caption", "text": "  "}]},
        {**good, "id": "d", "audio": "audio/missing.flac"},
    ]
    path = write_manifest(tmp_path / "m.jsonl", bad)
    with path.open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(MelodexError) as info:
        read_manifest(path)
    message = str(info.value)
    assert "m.jsonl:1:" not in message
    assert "m.jsonl:2: missing field 'split'" in message
    assert "m.jsonl:3: unknown split 'dev'" in message
    assert "m.jsonl:4: texts[0] has empty text" in message
    assert "m.jsonl:5: audio file missing" in message
    assert "m.jsonl:6: invalid JSON" in message
    assert json.loads(path.read_text().splitlines()[0])["id"] == good["id"]


def test_missing_tools_are_named(monkeypatch, tmp_path):
    with pytest.raises(MelodexError, match="fluid-soundfont-gm"):
        render.find_soundfont(tmp_path / "none.sf2")
    monkeypatch.setenv("MELODEX_SOUNDFONT", str(tmp_path / "env.sf2"))
    with pytest.raises(MelodexError, match="env.sf2"):
        demo.build_demo(tmp_path / "out", n_tracks=1, seconds=1)
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with pytest.raises(MelodexError, match="apt-get install fluidsynth"):
        demo.build_demo(tmp_path / "out", n_tracks=1, seconds=1)


@pytest.mark.slow
def test_default_build_every_format(tmp_path):
    start = time.monotonic()
    manifest = demo.build_demo(tmp_path, formats=("flac", "ogg", "mp3", "m4a"))
    items = read_manifest(manifest)
    assert len(items) == 48 and len({it["id"] for it in items}) == 48
    assert set(Counter(it["extra"]["collection"] for it in items).values()) == {6}
    assert time.monotonic() - start < 300


def test_parquet_manifest_round_trips_and_reports_bad_rows(tmp_path: Path) -> None:
    from melodex.data.manifest import read_manifest, write_manifest

    (tmp_path / "a.flac").write_bytes(b"x")
    items = [
        {
            "id": "a",
            "audio": "a.flac",
            "start": None,
            "end": None,
            "texts": [{"kind": "review", "text": "Lovely record."}],
            "tags": ["folk"],
            "split": "train",
            "extra": {"bpm": 90},
        }
    ]
    path = write_manifest(tmp_path / "m.parquet", items)
    assert read_manifest(path) == items
    bad = [dict(items[0], id="b", split="holdout", texts=[{"kind": "mined", "text": " "}])]
    write_manifest(tmp_path / "bad.parquet", items + bad)
    with pytest.raises(MelodexError, match=r"bad\.parquet:2: unknown split 'holdout'"):
        read_manifest(tmp_path / "bad.parquet")
