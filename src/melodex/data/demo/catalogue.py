"""What the demo corpus can hold: instruments, collections of the music21 corpus, and the
seeded plan of which pieces become tracks."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path

from melodex.errors import MelodexError

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
