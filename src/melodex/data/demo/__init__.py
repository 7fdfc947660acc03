"""The demo corpus: real compositions from the music21 corpus, rendered to real audio.

`build_demo` picks pieces across eight collections (Bach chorales, Ryan's and O'Neill's fiddle
tunes, Essen German folk songs, Palestrina masses, Monteverdi madrigals, classical quartets and the
Trecento), gives each a General MIDI instrumentation, a tempo and a transposition, renders it with
fluidsynth and writes a JSONL manifest whose tags and captions are true of the audio by
construction: every descriptive word comes from a decision we made (instrument, bpm, transposition)
or from the score (form, metre, notated key, composer).

Deterministic given the seed; idempotent and resumable (finished tracks are kept); parallel.
"""

from melodex.data.demo.build import DEMO_QUERIES, MANIFEST_NAME, build_demo, demo_truth
from melodex.data.demo.captions import _TONAL, describe
from melodex.data.demo.catalogue import (
    COLLECTIONS,
    INSTRUMENTS,
    TEMPO_BPM,
    Candidate,
    Collection,
    corpus_root,
    list_candidates,
    plan_tracks,
    split_of,
    track_id,
)
from melodex.data.demo.pieces import Arrangement, Piece, arrange, load_piece

__all__ = [
    "COLLECTIONS",
    "DEMO_QUERIES",
    "INSTRUMENTS",
    "MANIFEST_NAME",
    "TEMPO_BPM",
    "Arrangement",
    "Candidate",
    "Collection",
    "Piece",
    "_TONAL",
    "arrange",
    "build_demo",
    "corpus_root",
    "demo_truth",
    "describe",
    "list_candidates",
    "load_piece",
    "plan_tracks",
    "split_of",
    "track_id",
]
