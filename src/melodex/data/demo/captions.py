"""Tags and captions of a demo track, true of the audio by construction."""

from __future__ import annotations

import random
from typing import Any

from melodex.data.demo.catalogue import COLLECTIONS, INSTRUMENTS, Candidate
from melodex.data.demo.pieces import Arrangement, Piece, _key_name, _key_words, _metre_class

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
