"""Reading a score from the music21 corpus and arranging it for General MIDI instruments."""

from __future__ import annotations

import contextlib
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melodex.data.demo.catalogue import (
    _KEYBOARD,
    _MELODY,
    _MELODY_DUOS,
    _SATB,
    _SONG,
    _SONG_DUOS,
    _TEMPO_WEIGHTS,
    COLLECTIONS,
    INSTRUMENTS,
    TEMPO_BPM,
    Candidate,
    _abc_tunes,
    corpus_root,
)
from melodex.data.render import Part
from melodex.errors import MelodexError

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
