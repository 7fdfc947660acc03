"""The demo corpus: real compositions from the music21 corpus, rendered to real audio.

`build_demo` picks pieces across eight collections (Bach chorales, Ryan's and O'Neill's fiddle
tunes, Essen German folk songs, Palestrina masses, Monteverdi madrigals, classical quartets and the
Trecento), gives each a General MIDI instrumentation, a tempo and a transposition, renders it with
fluidsynth and writes a JSONL manifest whose tags and captions are true of the audio by
construction: every descriptive word comes from a decision we made (instrument, bpm, transposition)
or from the score (form, metre, notated key, composer).

Deterministic given the seed; idempotent and resumable (finished tracks are kept); parallel.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from melodex.data.manifest import write_manifest
from melodex.data.render import Part, find_soundfont, render_parts, require_tools
from melodex.errors import MelodexError
from melodex.progress import ProgressFn

MANIFEST_NAME = "manifest.jsonl"
_VERSION = 1  # bump when a change alters the audio or the record of an existing plan

# name: (General MIDI program, lowest, highest MIDI pitch, kind). kind: "poly" = one player can
# play several parts; "mono" = one player per part; "section" = a group (orchestra strings, choir).
INSTRUMENTS: dict[str, tuple[int, int, int, str]] = {
    "piano": (0, 21, 108, "poly"),
    "harpsichord": (6, 29, 89, "poly"),
    "organ": (19, 24, 96, "poly"),
    "accordion": (21, 53, 93, "mono"),
    "nylon guitar": (24, 40, 83, "mono"),
    "acoustic guitar": (25, 40, 86, "mono"),
    "violin": (40, 55, 100, "mono"),
    "viola": (41, 48, 88, "mono"),
    "cello": (42, 36, 76, "mono"),
    "harp": (46, 24, 103, "poly"),
    "strings": (48, 28, 100, "section"),
    "choir": (52, 40, 81, "section"),
    "trumpet": (56, 54, 84, "mono"),
    "trombone": (57, 40, 72, "mono"),
    "french horn": (60, 41, 77, "mono"),
    "oboe": (68, 58, 91, "mono"),
    "bassoon": (70, 34, 75, "mono"),
    "clarinet": (71, 50, 91, "mono"),
    "flute": (73, 60, 96, "mono"),
    "recorder": (74, 60, 91, "mono"),
    "tin whistle": (78, 74, 98, "mono"),
    "banjo": (105, 48, 84, "mono"),
    "fiddle": (110, 55, 100, "mono"),
}

# An arrangement maps voice roles (S, A, T, B: the top part is S, the bottom part B) to instruments.
_KEYBOARD = [{"*": "organ"}, {"*": "piano"}, {"*": "harpsichord"}]
_SATB = {
    "string quartet": {"S": "violin", "A": "violin", "T": "viola", "B": "cello"},
    "brass": {"S": "trumpet", "A": "french horn", "T": "trombone", "B": "trombone"},
    "woodwinds": {"S": "flute", "A": "oboe", "T": "clarinet", "B": "bassoon"},
    "consort": {"S": "recorder", "A": "viola", "T": "viola", "B": "cello"},
    "strings": {"*": "strings"},
    "choir": {"*": "choir"},
}
_MELODY = ["fiddle", "flute", "tin whistle", "accordion", "banjo", "harp"]
_MELODY_DUOS = [
    ("fiddle", "accordion"),
    ("fiddle", "flute"),
    ("flute", "accordion"),
    ("tin whistle", "fiddle"),
    ("banjo", "fiddle"),
    ("fiddle", "harp"),
]
_SONG = ["flute", "recorder", "clarinet", "oboe", "violin", "accordion", "piano", "harp"]
_SONG += ["nylon guitar", "acoustic guitar", "choir", "trumpet"]
_SONG_DUOS = [("flute", "nylon guitar"), ("violin", "piano"), ("clarinet", "harp")]
_SONG_DUOS += [("recorder", "acoustic guitar"), ("oboe", "harp")]

# tempo class -> beat-per-minute range (the beat of the metre: a dotted quarter in 6/8, a half
# note in 2/2). The gaps keep the classes apart.
TEMPO_BPM = {"slow": (54, 72), "moderate": (84, 108), "fast": (120, 144)}
_TEMPO_WEIGHTS = {  # form -> weights of (slow, moderate, fast)
    "chorale": (1, 1, 0),
    "reel": (0, 1, 4),
    "jig": (0, 1, 3),
    "slip jig": (0, 1, 2),
    "hornpipe": (0, 3, 2),
    "strathspey": (1, 3, 0),
    "air": (3, 1, 0),
    "folk song": (1, 3, 1),
    "mass": (3, 2, 0),
    "madrigal": (2, 3, 0),
    "motet": (2, 3, 0),
    "medieval song": (1, 3, 1),
    "string quartet": (1, 2, 2),
    "piano sonata": (0, 2, 2),
}
_TUNE_TYPES = {
    "reel": "reel",
    "jig": "jig",
    "double jig": "jig",
    "slip jig": "slip jig",
    "slipjig": "slip jig",
    "hornpipe": "hornpipe",
    "strathspey": "strathspey",
    "air": "air",
}


@dataclass(frozen=True)
class Collection:
    name: str
    album: str
    era: str
    genre: str  # file tag; "{form}" is filled in
    composer: str = "Traditional"


COLLECTIONS = {
    c.name: c
    for c in [
        Collection("bach-chorales", "J. S. Bach: Chorales", "baroque", "Baroque chorale",
                   "Johann Sebastian Bach"),
        Collection("ryans-mammoth", "Ryan's Mammoth Collection", "traditional",
                   "Traditional {form}"),
        Collection("oneills-1850", "O'Neill's Music of Ireland", "traditional", "Irish {form}"),
        Collection("essen-german", "Essen Folksong Collection", "traditional",
                   "German folk song"),
        Collection("palestrina", "Palestrina: Masses", "renaissance", "Renaissance mass",
                   "Giovanni Pierluigi da Palestrina"),
        Collection("monteverdi", "Monteverdi: Madrigals", "renaissance", "Renaissance madrigal",
                   "Claudio Monteverdi"),
        Collection("classical", "Classical Quartets and Sonatas", "classical", "Classical {form}"),
        Collection("trecento", "Trecento: Music of the Fourteenth Century", "medieval",
                   "Medieval {form}", "Anonymous"),
    ]
}  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """A piece that can be rendered: a corpus file (and tune number inside a multi-tune ABC)."""

    collection: str
    source: str  # path relative to the music21 corpus folder
    number: int | None = None  # X: number in a multi-tune ABC file
    form: str = ""
    title: str = ""

    @property
    def key(self) -> str:
        return self.source if self.number is None else f"{self.source}#{self.number}"


def corpus_root() -> Path:
    """The music21 corpus folder (raises `MelodexError` when music21 is not installed)."""
    try:
        from music21 import common
    except ImportError as exc:
        raise MelodexError("the demo corpus needs music21: pip install 'melodex[demo]'") from exc
    return Path(common.getCorpusFilePath())


# ---------------------------------------------------------------------------- candidates


def _abc_tunes(path: Path) -> list[tuple[int, dict[str, str], str]]:
    """Split an ABC file into ``(X number, header fields, text)`` without parsing the music."""
    text = path.read_text(encoding="utf-8", errors="replace")
    tunes = []
    for chunk in re.split(r"(?m)^(?=X:)", text):
        if not chunk.startswith("X:"):
            continue
        fields: dict[str, str] = {}
        for line in chunk.splitlines():
            m = re.match(r"^([A-Z]):\s*(.*?)\s*$", line)
            if m and m.group(1) not in fields:
                fields[m.group(1)] = m.group(2).rstrip("]").strip()
        try:
            number = int(fields.get("X", "").split()[0])
        except (ValueError, IndexError):
            continue
        tunes.append((number, fields, chunk))
    return tunes


def _tune_type(fields: dict[str, str]) -> str | None:
    rhythm = fields.get("R", "").lower().strip()
    if rhythm in _TUNE_TYPES:
        return _TUNE_TYPES[rhythm]
    title = fields.get("T", "").lower()
    for word in ("slip jig", "hornpipe", "strathspey", "reel", "jig"):
        if title.endswith(word):
            return _TUNE_TYPES[word]
    return None


def _tune_title(title: str) -> str:
    """'Acacia -- Reel' -> 'Acacia Reel'; trailing ', The' moved to the front."""
    title = re.sub(r"\s*--\s*", " ", title).strip()
    title = re.sub(r"(?<=\w):(?=\w)", "", title)
    if title.isupper():
        title = title.title().replace("'S ", "'s ")
    m = re.match(r"^(.*),\s*(The|A)$", title)
    return f"{m.group(2)} {m.group(1)}" if m else title


def list_candidates(collection: str) -> list[Candidate]:
    """All renderable pieces of one collection, sorted (cheap: reads only file names and ABC
    headers)."""
    root = corpus_root()
    out: list[Candidate] = []
    if collection == "bach-chorales":
        for p in sorted((root / "bach").glob("bwv*.mxl")):
            if re.fullmatch(r"bwv\d+(\.\d+)?\.mxl", p.name):
                out.append(Candidate(collection, f"bach/{p.name}", form="chorale"))
    elif collection == "ryans-mammoth":
        for p in sorted((root / "ryansMammoth").glob("*.abc")):
            for _number, fields, _ in _abc_tunes(p)[:1]:
                form = _tune_type(fields)
                if form and form != "air":
                    title = _tune_title(fields.get("T", p.stem))
                    out.append(Candidate(collection, f"ryansMammoth/{p.name}", None, form, title))
    elif collection == "oneills-1850":
        for p in sorted((root / "oneills1850").glob("*.abc")):
            for number, fields, _ in _abc_tunes(p):
                form = _tune_type(fields)
                if form:
                    title = _tune_title(fields.get("T", f"Tune {number}"))
                    out.append(Candidate(collection, f"oneills1850/{p.name}", number, form, title))
    elif collection == "essen-german":
        for p in sorted((root / "essenFolksong").glob("*.abc")):
            for number, fields, _ in _abc_tunes(p):
                origin = fields.get("O", "")
                if "Deutschland" in origin and not re.search(r"[/;]", origin):
                    title = _tune_title(fields.get("T", f"Lied {number}"))
                    out.append(
                        Candidate(collection, f"essenFolksong/{p.name}", number, "folk song", title)
                    )
    elif collection == "palestrina":
        for p in sorted((root / "palestrina").glob("*_*.krn")):
            out.append(Candidate(collection, f"palestrina/{p.name}", form="mass"))
    elif collection == "monteverdi":
        for p in sorted((root / "monteverdi").glob("madrigal.*.mxl")):
            out.append(Candidate(collection, f"monteverdi/{p.name}", form="madrigal"))
    elif collection == "classical":
        for folder in ("mozart/k80", "mozart/k155", "mozart/k156", "mozart/k458",
                       "haydn/opus1no1", "haydn/opus74no1", "beethoven/opus18no1"):  # fmt: skip
            for p in sorted((root / folder).glob("movement*.mxl")):
                out.append(Candidate(collection, f"{folder}/{p.name}", form="string quartet"))
        sonata = "mozart/k545/movement1_exposition.mxl"
        if (root / sonata).is_file():
            out.append(Candidate(collection, sonata, form="piano sonata"))
    elif collection == "trecento":
        for p in sorted((root / "trecento").glob("*.xml")):
            if p.name.startswith(("PMFC_01", "Fava")):
                form = "motet"
            elif re.search(r"gloria|credo|kyrie|sanctus|agnus|benedicamus", p.name, re.I):
                form = "mass"
            else:
                form = "medieval song"
            out.append(Candidate(collection, f"trecento/{p.name}", form=form))
    else:
        raise MelodexError(f"unknown demo collection {collection!r}; known: {list(COLLECTIONS)}")
    return out


def plan_tracks(n_tracks: int, *, seed: int = 0, spares: int = 2) -> list[list[Candidate]]:
    """Per track slot, the candidates to try in order (the first one that renders is used).

    Collections take turns in a fixed order, so any prefix of the plan is balanced; within a
    collection the order is a seeded shuffle of the sorted candidates. Each slot owns ``spares``
    fall-backs of its own collection, disjoint from every other slot's, so the outcome does not
    depend on which worker finishes first.
    """
    rng = random.Random(f"melodex-demo:{seed}")
    queues = {}
    for name in COLLECTIONS:
        cands = list_candidates(name)
        rng.shuffle(cands)
        # dance-tune collections: reels, jigs, hornpipes, ... take turns
        queues[name] = _alternate_forms(cands) if name in _TUNE_COLLECTIONS else cands
    order: list[tuple[str, int]] = []  # (collection, index within the collection)
    used = dict.fromkeys(queues, 0)
    while len(order) < n_tracks:
        progressed = False
        for name, cands in queues.items():
            if len(order) < n_tracks and used[name] < len(cands):
                order.append((name, used[name]))
                used[name] += 1
                progressed = True
        if not progressed:
            raise MelodexError(f"the corpus holds fewer than {n_tracks} renderable pieces")
    slots = []
    for name, k in order:
        cands = queues[name]
        start = used[name] + k * spares
        slots.append([cands[k]] + cands[start : start + spares])
    return slots


_TUNE_COLLECTIONS = ("ryans-mammoth", "oneills-1850")


def _alternate_forms(cands: list[Candidate]) -> list[Candidate]:
    """Reorder so forms take turns (reel, jig, hornpipe, ...), keeping each form's order."""
    by_form: dict[str, list[Candidate]] = {}
    for cand in cands:
        by_form.setdefault(cand.form, []).append(cand)
    lists = [by_form[f] for f in sorted(by_form)]
    out = []
    for i in range(max(len(x) for x in lists) if lists else 0):
        out += [x[i] for x in lists if i < len(x)]
    return out


def split_of(piece_key: str) -> str:
    """Deterministic ~80/10/10 split from the piece itself, so a piece never crosses splits."""
    bucket = int(hashlib.sha1(piece_key.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def track_id(cand: Candidate) -> str:
    stem = re.sub(r"\.(abc|mxl|xml|krn)$", "", cand.source.split("/", 1)[1])
    if cand.number is not None:
        stem = f"{stem}-{cand.number}"
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return f"{cand.collection}-{slug}"


# ---------------------------------------------------------------------------- loading


@dataclass
class Piece:
    """A parsed piece reduced to what rendering and describing need."""

    parts: list[list[tuple[float, float, int]]]  # per part: (onset, duration, pitch) in quarters
    metre: str  # e.g. "6/8"
    beat_ql: float  # length of the metre's beat in quarter notes
    notated_key: Any  # music21 key.Key from an ABC K: field, else None
    title: str
    composer: str
    length_ql: float


def _notes(part) -> list[tuple[float, float, int]]:
    """Sounding notes of a part: grace and zero-length notes dropped, tied notes merged."""
    out: list[tuple[float, float, int]] = []
    last: dict[int, int] = {}
    for n in part.flatten().notes:
        dur = float(n.quarterLength)
        if n.duration.isGrace or dur <= 0:
            continue
        onset = float(n.offset)
        tie = n.tie.type if n.tie is not None else None
        for p in n.pitches:
            m = int(p.midi)
            i = last.get(m)
            tied = tie in ("stop", "continue") and i is not None
            if tied and abs(out[i][0] + out[i][1] - onset) < 1e-3:
                out[i] = (out[i][0], onset + dur - out[i][0], m)
                continue
            last[m] = len(out)
            out.append((onset, dur, m))
    out.sort()
    return out


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def _clean_composer(text: str | None) -> str:
    """'Johannes Ciconia (opus dubium)' -> 'Johannes Ciconia'; 'Anonymous D-Bs 2' -> 'Anonymous'."""
    words = []
    for word in re.sub(r"\(.*?\)", " ", _first_line(text)).split():
        if re.search(r"\d|^[A-Z]{1,3}-", word):
            break
        words.append(word)
    return " ".join(words)


def _title_and_composer(cand: Candidate, score, path: Path) -> tuple[str, str]:
    coll = COLLECTIONS[cand.collection]
    md = score.metadata
    if cand.title:
        return cand.title, coll.composer
    if cand.collection == "bach-chorales":
        m = re.fullmatch(r"bwv(\d+)(?:\.(\d+))?\.mxl", Path(cand.source).name)
        bwv = f"{m.group(1)}.{m.group(2)}" if m and m.group(2) else (m.group(1) if m else "?")
        try:
            from music21.corpus.chorales import ChoraleList

            title = ChoraleList().byBWV.get(int(bwv), {}).get("title", "") if "." not in bwv else ""
        except (ImportError, ValueError):
            title = ""
        return (f"{title} (BWV {bwv})" if title else f"Chorale, BWV {bwv}"), coll.composer
    if cand.collection == "palestrina":
        header = dict(
            re.findall(r"(?m)^!!!(\w+):\s*(.*?)\s*$", path.read_text(errors="replace")[:4000])
        )
        mass, part = header.get("OPR", ""), header.get("OTL", Path(cand.source).stem)
        return (f"{mass}: {part}" if mass else part), coll.composer
    if cand.collection == "monteverdi":
        m = re.fullmatch(r"madrigal\.(\d+)\.(\d+)\.mxl", Path(cand.source).name)
        fields = [_first_line(v) for v in (md.movementName, md.composer, md.title)] if md else []
        named = [f for f in fields if re.fullmatch(r"\d+\.\s*[A-Z' ,]+", f)]
        name = re.sub(r"^\d+\.\s*", "", named[0]).capitalize() if named else "Madrigal"
        where = f" (Book {m.group(1)}, no. {m.group(2)})" if m else ""
        return name + where, coll.composer
    if cand.collection == "classical":
        folder, mov = cand.source.rsplit("/", 1)
        num = re.search(r"\d+", mov).group(0)
        who, work = folder.split("/")
        composer = {"mozart": "Wolfgang Amadeus Mozart", "haydn": "Joseph Haydn",
                    "beethoven": "Ludwig van Beethoven"}[who]  # fmt: skip
        if work.startswith("k"):
            label = f"K. {work[1:]}"
        else:
            op = re.fullmatch(r"opus(\d+)no(\d+)", work)
            label = f"Op. {op.group(1)} No. {op.group(2)}" if op else work
        if cand.form == "piano sonata":
            return f"Piano Sonata {label}, movement {num} (exposition)", composer
        return f"String Quartet {label}, movement {num}", composer
    if cand.collection == "trecento":
        title = re.sub(r"^[\d\s().a-z]*\.\s*", "", _first_line(md.title if md else ""))
        if not title:
            title = re.sub(r"^PMFC_[\d_a-z]*-?", "", Path(cand.source).stem).replace("_", " ")
        title = re.sub(r"\s*PMFC\s*[\d.]+\w*", "", title)
        return title.strip() or Path(cand.source).stem, _clean_composer(
            md.composer
        ) or coll.composer
    return Path(cand.source).stem, coll.composer


def load_piece(cand: Candidate) -> Piece:
    """Parse a candidate with music21 and reduce it to note lists (slow part: the parse)."""
    from music21 import converter, key

    path = corpus_root() / cand.source
    if path.suffix == ".abc":
        tunes = _abc_tunes(path)
        chosen = [t for t in tunes if cand.number is None or t[0] == cand.number][:1]
        if not chosen:
            raise MelodexError(f"{path}: no tune X:{cand.number}")
        score = converter.parse(chosen[0][2], format="abc")
        with contextlib.suppress(Exception):  # music21 raises many kinds on odd repeat marks
            score = score.expandRepeats()
    else:
        score = converter.parse(path)
    parts = list(score.parts) or [score]
    if cand.collection == "bach-chorales":
        voices = [
            p for p in parts if (p.partName or "").lower() in {"soprano", "alto", "tenor", "bass"}
        ]
        parts = voices if len(voices) == 4 else parts
    notes = [n for n in (_notes(p) for p in parts) if n]
    if not notes:
        raise MelodexError(f"{path}: no notes")
    ts = score.recurse().getElementsByClass("TimeSignature").first()
    metre = ts.ratioString if ts is not None else "4/4"
    beat_ql = float(ts.beatDuration.quarterLength) if ts is not None else 1.0
    found = [k for k in score.recurse().getElementsByClass(key.Key)]
    notated = found[0] if found and path.suffix == ".abc" else None
    title, composer = _title_and_composer(cand, score, path)
    length = max(on + d for part in notes for on, d, _ in part)
    return Piece(notes, metre, beat_ql, notated, title, composer, length)


# ---------------------------------------------------------------------------- arranging


def _roles(parts: list[list[tuple[float, float, int]]]) -> list[str]:
    """Voice role of each part by register rank: the highest S, the lowest B, the upper half of
    the middle parts A and the lower half T."""
    if len(parts) == 1:
        return ["S"]
    medians = [sorted(m for _, _, m in p)[len(p) // 2] for p in parts]
    order = sorted(range(len(parts)), key=lambda i: (-medians[i], i))
    roles = [""] * len(parts)
    for rank, i in enumerate(order):
        if rank == 0:
            roles[i] = "S"
        elif rank == len(parts) - 1:
            roles[i] = "B"
        else:
            roles[i] = "A" if rank <= (len(parts) - 2) / 2 else "T"
    return roles


def _families(cand: Candidate, n_parts: int) -> list[tuple[str, dict[str, str], int]]:
    """(name, role -> instrument, weight) choices plausible for this piece."""
    satb = _SATB
    kb = {f"solo {f['*']}": f for f in _KEYBOARD}
    if cand.collection == "bach-chorales":
        fams = {**kb, **satb}
        return [
            (n, f, 2 if n in ("solo organ", "choir", "string quartet") else 1)
            for n, f in fams.items()
        ]
    if cand.collection in ("palestrina", "monteverdi"):
        pick = ["choir", "solo organ", "consort", "brass", "strings", "string quartet"]
        fams = {**kb, **satb}
        return [(n, fams[n], 3 if n == "choir" else 1) for n in pick]
    if cand.collection == "trecento":
        return [
            ("choir", satb["choir"], 2),
            ("solo organ", kb["solo organ"], 1),
            ("consort", satb["consort"], 1),
            ("recorder and harp", {"S": "recorder", "*": "harp"}, 1),
            ("violin and lute", {"S": "violin", "*": "nylon guitar"}, 1),
        ]
    if cand.form == "piano sonata":
        return [
            ("solo piano", kb["solo piano"], 3),
            ("solo harpsichord", kb["solo harpsichord"], 1),
        ]
    if cand.collection == "classical":
        return [("string quartet", satb["string quartet"], 4), ("strings", satb["strings"], 1),
                ("solo piano", kb["solo piano"], 1)]  # fmt: skip
    # single melodies: a solo instrument, or two doubling the tune
    if cand.collection == "essen-german":
        solos, duos = _SONG, _SONG_DUOS
    elif cand.form == "air":
        solos, duos = ["harp", "flute", "fiddle", "tin whistle"], [("flute", "harp")]
    else:
        solos, duos = _MELODY, _MELODY_DUOS
    out = [(f"solo {s}", {"S": s}, 2) for s in solos]
    out += [(f"{a} and {b}", {"S": a, "S2": b}, 2) for a, b in duos]
    return out


def _fit_octave(notes: list[tuple[float, float, int]], instrument: str, transpose: int) -> int:
    """Octave shift (semitones) that puts most of a part inside the instrument's range."""
    _, low, high, _ = INSTRUMENTS[instrument]
    pitches = [m + transpose for _, _, m in notes]

    def cost(shift: int) -> tuple[int, int]:
        return (sum(not low <= p + shift <= high for p in pitches), abs(shift))

    return min((-24, -12, 0, 12, 24), key=cost)


def _metre_class(metre: str) -> str:
    try:
        num, den = (int(x) for x in metre.split("/"))
    except ValueError:
        return "irregular"
    if den >= 8 and num in (6, 9, 12):
        return "compound " + {6: "duple", 9: "triple", 12: "quadruple"}[num]
    return {2: "simple duple", 3: "simple triple", 4: "simple quadruple"}.get(num, "irregular")


_MAJOR_TONICS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_TONICS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]


def _key_name(k) -> str:
    """Conventional spelling: 'G# major' -> 'Ab major'; church modes keep music21's spelling."""
    if k.mode in ("major", "minor"):
        tonics = _MAJOR_TONICS if k.mode == "major" else _MINOR_TONICS
        return f"{tonics[k.tonic.pitchClass]} {k.mode}"
    return f"{k.tonic.name.replace('-', 'b')} {k.mode}"


def _key_words(k) -> str:
    """'Eb major' -> 'E-flat major'."""
    tonic, mode = _key_name(k).split()
    if len(tonic) > 1:
        tonic = tonic[0] + ("-flat" if tonic[1] == "b" else "-sharp")
    return f"{tonic} {mode}"


@dataclass
class Arrangement:
    family: str
    instruments: list[str]  # per rendered part, top part first
    parts: list[Part]
    tempo: str
    bpm: int
    quarter_bpm: float
    transposition: int
    key: Any
    key_source: str
    duration: float


def arrange(piece: Piece, cand: Candidate, *, seed: int, seconds: float) -> Arrangement:
    """Choose instruments, tempo and transposition (seeded per piece) and lay out the notes in
    seconds, looping a short piece until it fills ``seconds``."""
    from music21 import interval, note, stream

    rng = random.Random(f"{seed}:{cand.key}")
    fams = _families(cand, len(piece.parts))
    family, mapping, _ = rng.choices(fams, weights=[w for *_, w in fams])[0]
    tempo = rng.choices(list(TEMPO_BPM), weights=_TEMPO_WEIGHTS[cand.form])[0]
    bpm = rng.randint(*TEMPO_BPM[tempo])
    transposition = rng.choice([-3, -2, -1, 0, 0, 1, 2, 3])
    quarter_bpm = bpm * piece.beat_ql
    spq = 60.0 / quarter_bpm
    src_parts = piece.parts
    roles = _roles(src_parts)
    if "S2" in mapping:  # a second instrument doubles the melody
        src_parts, roles = src_parts + src_parts[:1], roles + ["S2"]
    reps = max(1, min(8, int(-(-seconds // (piece.length_ql * spq)))))
    parts, names, sounding = [], [], []
    for notes, role in zip(src_parts, roles, strict=True):
        name = mapping.get(role) or mapping.get("*") or mapping["S"]
        shift = transposition + _fit_octave(notes, name, transposition)
        program, *_ = INSTRUMENTS[name]
        base_vel = 92 if role in ("S", "S2") else 76
        if role == "S2":
            base_vel = 80
        events = []
        for r in range(reps):
            for onset, dur, m in notes:
                t = (onset + r * piece.length_ql) * spq
                if t >= seconds:
                    break
                accent = (
                    8 if abs(onset / piece.beat_ql - round(onset / piece.beat_ql)) < 1e-6 else 0
                )
                events.append(
                    (t, min(dur * spq * 0.97, seconds + 1.0 - t), m + shift, base_vel + accent)
                )
                if r == 0 or len(sounding) < 4000:
                    sounding.append((onset + r * piece.length_ql, dur, m + transposition))
        parts.append(Part(program, events))
        names.append(name)
    if piece.notated_key is not None:
        k = (
            piece.notated_key.transpose(interval.Interval(transposition))
            if transposition
            else piece.notated_key
        )
        key_source = "notated"
    else:
        s = stream.Stream()
        for onset, dur, m in sounding:
            if onset * spq < seconds:
                s.insert(onset, note.Note(m, quarterLength=dur))
        k = s.analyze("key")
        key_source = "estimated"
    duration = min(seconds, reps * piece.length_ql * spq)
    return Arrangement(family, names, parts, tempo, bpm, quarter_bpm, transposition, k,
                       key_source, duration)  # fmt: skip


# ---------------------------------------------------------------------------- describing

_PLURAL = {"strings": "strings", "choir": "choirs"}
_NUMBER = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_FORM_NOUN = {"mass": "mass movement", "string quartet": "string quartet movement",
              "piano sonata": "piano sonata movement"}  # fmt: skip
_TONAL = {"bach-chorales", "classical", "ryans-mammoth", "oneills-1850", "essen-german"}


def _instrument_phrase(names: list[str]) -> str:
    """['violin', 'violin', 'viola', 'cello'] -> 'two violins, viola and cello'."""
    counts: dict[str, int] = {}
    for name in names:
        kind = INSTRUMENTS[name][3]
        counts[name] = counts.get(name, 0) + 1 if kind == "mono" else 1
    words = []
    for name, n in counts.items():
        if name == "strings":
            words.append("string orchestra")
        elif n > 1:
            words.append(f"{_NUMBER.get(n, str(n))} {_PLURAL.get(name, name + 's')}")
        else:
            words.append(name)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _ensemble_size(names: list[str]) -> str:
    kinds = {INSTRUMENTS[n][3] for n in names}
    if "section" in kinds:
        return "ensemble"
    players = len({n for n in names if INSTRUMENTS[n][3] == "poly"})
    players += sum(1 for n in names if INSTRUMENTS[n][3] == "mono")
    return "solo" if players == 1 else "duet" if players == 2 else "ensemble"


def _genre_phrase(cand: Candidate) -> str:
    form = _FORM_NOUN.get(cand.form, cand.form)
    return {
        "bach-chorales": "baroque chorale",
        "ryans-mammoth": f"traditional {form}",
        "oneills-1850": f"Irish {form}",
        "essen-german": "German folk song",
        "palestrina": "renaissance mass movement",
        "monteverdi": "renaissance madrigal",
        "classical": f"classical {form}",
        "trecento": form if form.startswith("medieval") else f"medieval {form}",
    }[cand.collection]


def _a(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def describe(cand: Candidate, piece: Piece, arr: Arrangement, *, seed: int) -> dict[str, Any]:
    """Tags, captions and metadata of a rendered track, all derived from true facts."""
    coll = COLLECTIONS[cand.collection]
    rng = random.Random(f"captions:{seed}:{cand.key}")
    instruments = list(dict.fromkeys(arr.instruments))
    size = _ensemble_size(arr.instruments)
    metre_class = _metre_class(piece.metre)
    genre_phrase = _genre_phrase(cand)
    genre = genre_phrase[0].upper() + genre_phrase[1:]
    form_noun = _FORM_NOUN.get(cand.form, cand.form)
    key_name, mode = _key_name(arr.key), str(arr.key.mode)
    tonal = cand.collection in _TONAL
    inst = _instrument_phrase(arr.instruments)
    if instruments == ["choir"]:
        played, subject, verb = "sung by a choir", "A choir", "sings"
    elif instruments == ["strings"]:
        played, subject, verb = "played by a string orchestra", "A string orchestra", "plays"
    else:
        plural = len(arr.instruments) > 1 and size != "solo"
        played, subject, verb = (
            f"played on {inst}",
            inst[0].upper() + inst[1:],
            "play" if plural else "plays",
        )
    in_key = f" in {_key_words(arr.key)}" if tonal else ""
    if not tonal:
        mode_clause = ""
    elif mode in ("major", "minor"):
        mode_clause = f" in a {mode} key"
    else:
        mode_clause = f" in the {mode} mode"
    by = "" if piece.composer in ("Traditional", "Anonymous") else f" by {piece.composer}"
    trad = "traditional " if piece.composer == "Traditional" else ""
    templates = [
        f"{_a(arr.tempo).capitalize()} {genre_phrase} {played}{in_key}.",
        f"{arr.tempo.capitalize()} {genre_phrase} for {inst}{mode_clause}.",
        f"{subject} {verb} {_a(trad + form_noun)}{by} in {piece.metre} time, "
        f"at about {arr.bpm} beats per minute.",
        f"{size.capitalize()} performance of {_a(genre_phrase)} in {metre_class} metre"
        f"{in_key and ','}{in_key}, "
        f"{arr.tempo} tempo ({arr.bpm} bpm), scored for {inst}.",
        f'"{piece.title}", {_a(genre_phrase)}{by}, {played} at a {arr.tempo} tempo.',
    ]
    captions = rng.sample(templates, k=rng.choice([2, 3]))
    tags = [coll.era, cand.form, arr.tempo, *instruments, size, piece.metre, *metre_class.split()]
    tags += ["vocal" if "choir" in instruments else "instrumental"]
    if tonal:
        tags += [mode, key_name.lower()]
    if cand.collection in ("ryans-mammoth", "oneills-1850"):
        tags += ["folk", "fiddle tune"] + (["irish"] if cand.collection == "oneills-1850" else [])
    if cand.collection == "essen-german":
        tags += ["folk", "german"]
    if cand.collection == "trecento":
        tags += ["trecento"]
    if by:
        tags += [piece.composer.split()[-1].lower()]
    tags = list(dict.fromkeys(t.lower() for t in tags))
    texts = [{"kind": "caption", "text": c} for c in captions]
    texts.append({"kind": "tag", "text": ", ".join(tags)})
    texts.append(
        {"kind": "metadata", "text": f"{piece.title} - {piece.composer} - {coll.album} ({genre})"}
    )
    return {
        "title": piece.title,
        "artist": piece.composer,
        "album": coll.album,
        "genre": genre,
        "texts": texts,
        "tags": tags,
        "extra": {
            "bpm": arr.bpm,
            "quarter_bpm": round(arr.quarter_bpm, 2),
            "tempo": arr.tempo,
            "key": key_name,
            "mode": mode,
            "key_source": arr.key_source,
            "metre": piece.metre,
            "metre_class": metre_class,
            "instruments": instruments,
            "programs": [INSTRUMENTS[n][0] for n in arr.instruments],
            "arrangement": arr.family,
            "ensemble": size,
            "form": cand.form,
            "era": coll.era,
            "composer": piece.composer,
            "genre": genre,
            "collection": cand.collection,
            "transposition": arr.transposition,
            "source": cand.source,
            "tune_number": cand.number,
            "piece": cand.key,
            "duration": round(arr.duration, 3),
        },
    }


# ---------------------------------------------------------------------------- building


def _plan_key(slot: list[Candidate], *, seed: int, seconds: float, fmt: str) -> str:
    blob = json.dumps([[c.key for c in slot], seed, seconds, fmt, _VERSION])
    return hashlib.sha1(blob.encode()).hexdigest()


def _render_slot(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: render the first candidate of a slot that works; write audio then its record."""
    out_dir, seed, seconds, fmt = Path(job["out_dir"]), job["seed"], job["seconds"], job["fmt"]
    reasons = []
    for fields in job["slot"]:
        cand = Candidate(**fields)
        try:
            piece = load_piece(cand)
            arr = arrange(piece, cand, seed=seed, seconds=seconds)
            info = describe(cand, piece, arr, seed=seed)
            tid = track_id(cand)
            rel = f"audio/{tid}.{fmt}"
            tags = {k: info[k] for k in ("title", "artist", "album", "genre")}
            duration = render_parts(
                arr.parts, out_dir / rel, seconds=seconds, soundfont=Path(job["soundfont"]),
                tags=tags, work_dir=out_dir / ".work",
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - odd corpus files fail in many ways; try the next
            reasons.append(f"{cand.key}: {type(exc).__name__}: {exc}")
            continue
        info["extra"]["duration"] = round(duration, 3)
        info["extra"]["seed"] = seed
        record = {"id": tid, "audio": rel, "start": None, "end": None}
        record.update({k: info[k] for k in ("texts", "tags", "title", "artist", "album")})
        record.update(split=split_of(cand.key), extra=info["extra"])
        sidecar = Path(job["sidecar"])
        tmp = sidecar.with_name(f".{sidecar.name}.part")
        tmp.write_text(json.dumps({"plan_key": job["plan_key"], "record": record}), "utf-8")
        os.replace(tmp, sidecar)
        return record
    raise MelodexError("could not render any candidate of a demo slot:\n" + "\n".join(reasons))


def _finished(sidecar: Path, plan_key: str, out_dir: Path) -> dict[str, Any] | None:
    try:
        saved = json.loads(sidecar.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    record = saved.get("record") or {}
    audio = out_dir / record.get("audio", "\0")
    if saved.get("plan_key") != plan_key or not audio.is_file() or audio.stat().st_size == 0:
        return None
    return record


def build_demo(
    out_dir: str | Path,
    *,
    n_tracks: int = 48,
    seconds: float = 30.0,
    seed: int = 0,
    formats: Sequence[str] = ("flac",),
    progress: ProgressFn | None = None,
    soundfont: str | Path | None = None,
    workers: int | None = None,
) -> Path:
    """Build the demo corpus in ``out_dir`` and return the path of its manifest.

    Parameters
    ----------
    out_dir : folder to create; audio goes to ``out_dir/audio``, the manifest to
        ``out_dir/manifest.jsonl``.
    n_tracks : number of tracks, balanced across the collections.
    seconds : length of each track (pieces are cut, short ones looped).
    seed : the same seed gives the same pieces, arrangements, captions and manifest.
    formats : audio formats (flac, ogg, mp3, m4a), assigned to tracks in turn.
    progress : called as ``progress(done, total, note)`` after each track (skipped ones included).
    soundfont : .sf2 file; default ``$MELODEX_SOUNDFONT`` or the Debian FluidR3 GM soundfont.
    workers : processes rendering in parallel (default: up to 2, one per core).

    Re-running with the same arguments keeps finished tracks (each is written to a temporary name
    and renamed once complete, with a record beside it), so an interrupted build resumes.
    """
    if n_tracks < 1 or seconds <= 0:
        raise MelodexError(f"n_tracks must be >= 1 and seconds > 0, got {n_tracks}, {seconds}")
    formats = [f.lower().lstrip(".") for f in formats] or ["flac"]
    require_tools(formats)
    sf2 = find_soundfont(soundfont)
    out_dir = Path(out_dir)
    for sub in ("audio", ".records", ".work"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    slots = plan_tracks(n_tracks, seed=seed)
    records: list[dict[str, Any] | None] = [None] * len(slots)
    pending = []
    for i, slot in enumerate(slots):
        fmt = formats[i % len(formats)]
        plan_key = _plan_key(slot, seed=seed, seconds=seconds, fmt=fmt)
        sidecar = out_dir / ".records" / f"{track_id(slot[0])}.json"
        records[i] = _finished(sidecar, plan_key, out_dir)
        if records[i] is None:
            job = {"slot": [asdict(c) for c in slot], "seed": seed, "seconds": float(seconds),
                   "fmt": fmt, "out_dir": str(out_dir), "soundfont": str(sf2),
                   "sidecar": str(sidecar), "plan_key": plan_key}  # fmt: skip
            pending.append((i, job))
    total, done = len(slots), len(slots) - len(pending)
    if progress:
        progress(done, total, "")
    n_workers = min(workers or min(2, os.cpu_count() or 1), len(pending))
    if n_workers <= 1:
        for i, job in pending:
            records[i] = _render_slot(job)
            done += 1
            if progress:
                progress(done, total, "rendered")
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
            futures = {pool.submit(_render_slot, job): i for i, job in pending}
            try:
                for fut in cf.as_completed(futures):
                    records[futures[fut]] = fut.result()
                    done += 1
                    if progress:
                        progress(done, total, "rendered")
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    with contextlib.suppress(OSError):
        (out_dir / ".work").rmdir()  # only when empty
    return write_manifest(out_dir / MANIFEST_NAME, [r for r in records if r is not None])


#: The searches `melodex demo` runs on the demo library (README: "What `make demo` prints").
DEMO_QUERIES = (
    "a choir singing",
    "string quartet",
    "church organ",
    "a lively irish fiddle tune",
    "slow flute melody",
    "music for meditation in a forest",
)


def demo_truth(manifest: Path) -> dict[str, str]:
    """What each demo track really is, by resolved audio path: "instruments, form, tempo",
    so a search's hits can be judged against the manifest."""
    from melodex.data.manifest import read_manifest

    truth = {}
    for item in read_manifest(manifest):
        extra = item.get("extra", {})
        parts = [*extra.get("instruments", []), extra.get("form", ""), extra.get("tempo", "")]
        path = str((manifest.parent / item["audio"]).resolve())
        truth[path] = ", ".join(p for p in parts if p)
    return truth
