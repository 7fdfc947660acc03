"""Validate melodex.descriptors (tempo and key) against the demo corpus's true values.

    .venv/bin/python scripts/validate_descriptors.py --corpus demo-data/corpus400
    .venv/bin/python scripts/validate_descriptors.py --limit 80 --key-profile temperley

Each track is decoded with ``load_audio`` at ``--sr`` (16 kHz, the rate indexing decodes at) and
described with ``describe_signal``. Printed as Markdown (docs/descriptors.md):

Tempo
    Acc1: estimate within 4 % of the truth. Acc2: within 4 % of the truth times 1, 2, 1/2, 3 or
    1/3. The truth is the manifest's ``bpm``, the beat of the metre (a dotted quarter in 6/8, a
    half note in 2/2 and 4/2), because the captions and tags say "at about N beats per minute"
    with that number; ``quarter_bpm`` (quarter notes per minute) is scored too, since a listener
    or an onset-based estimator often hears the quarter note in 2/2 and 4/2.

Key
    Only the tonal collections, where the captions name a key: ``notated`` (the ABC ``K:`` field
    of fiddle tunes and Essen folk songs, transposed with the track) and ``estimated`` (music21's
    Krumhansl analysis of the sounding score notes of Bach chorales and classical movements) are
    reported apart; church-mode keys (dorian, mixolydian) are left out. MIREX scores: 1.0 exact,
    0.5 a fifth above (same mode), 0.3 relative major/minor, 0.2 parallel, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.audio import load_audio
from melodex.data.manifest import read_manifest
from melodex.descriptors import describe_signal, pitch_class

ROOT = Path(__file__).resolve().parents[1]
TONAL = ("bach-chorales", "classical", "ryans-mammoth", "oneills-1850", "essen-german")
OCTAVE_FACTORS = (1.0, 2.0, 0.5, 3.0, 1 / 3)
MIREX_WEIGHTS = {"exact": 1.0, "fifth": 0.5, "relative": 0.3, "parallel": 0.2, "other": 0.0}


# --------------------------------------------------------------------------- metrics


def tempo_hits(est: float | None, ref: float, *, tol: float = 0.04) -> tuple[bool, bool]:
    """(Acc1, Acc2) for one track: within ``tol`` of ``ref``; of ``ref`` times 1, 2, 1/2, 3, 1/3."""
    if ref <= 0:
        raise ValueError(f"reference tempo must be > 0, got {ref!r}")
    if est is None:
        return False, False
    acc1 = abs(est - ref) <= tol * ref
    acc2 = any(abs(est - ref * f) <= tol * ref * f for f in OCTAVE_FACTORS)
    return acc1, acc2


def key_relation(est_key: str | None, est_mode: str | None, ref_key: str, ref_mode: str) -> str:
    """How an estimated key relates to the reference: exact, fifth, relative, parallel or other.

    As mir_eval.key: "fifth" is the same mode a perfect fifth above the reference; "relative" the
    relative minor of a major reference or the relative major of a minor one.
    """
    if ref_mode not in ("major", "minor"):
        raise ValueError(f"reference mode must be major or minor, got {ref_mode!r}")
    if est_key is None or est_mode is None:
        return "other"
    e, r = pitch_class(est_key) % 12, pitch_class(ref_key) % 12
    if est_mode == ref_mode:
        return "exact" if e == r else "fifth" if (e - r) % 12 == 7 else "other"
    if e == r:
        return "parallel"
    if ref_mode == "major" and (e - r) % 12 == 9 or ref_mode == "minor" and (e - r) % 12 == 3:
        return "relative"
    return "other"


def summarise_keys(relations: Sequence[str]) -> dict[str, float]:
    """Fractions of each relation and the MIREX weighted score."""
    n = len(relations)
    out: dict[str, float] = {"n": float(n)}
    for name in MIREX_WEIGHTS:
        out[name] = sum(r == name for r in relations) / n if n else float("nan")
    out["mirex"] = sum(MIREX_WEIGHTS[r] for r in relations) / n if n else float("nan")
    return out


# --------------------------------------------------------------------------- running


def describe_corpus(
    corpus: Path, *, sr: int, limit: int | None, key_profile: str, start_bpm: float
) -> list[dict[str, Any]]:
    records = read_manifest(corpus / "manifest.jsonl")
    if limit is not None:
        records = records[:limit]
    rows = []
    for i, rec in enumerate(records, 1):
        extra, audio = rec["extra"], rec["audio"]
        t0 = time.perf_counter()
        y = load_audio(corpus / audio, sr=sr)
        t1 = time.perf_counter()
        d = describe_signal(y, sr=sr, key_profile=key_profile, start_bpm=start_bpm)
        t2 = time.perf_counter()
        ref_key, ref_mode = extra["key"].split()[0], extra["mode"]
        row = {
            "collection": extra["collection"],
            "metre": extra["metre"],
            "bpm": extra["bpm"],
            "quarter_bpm": extra["quarter_bpm"],
            "key_source": extra["key_source"],
            "ref_key": ref_key,
            "ref_mode": ref_mode,
            "est_bpm": d.bpm,
            "est_key": d.key,
            "est_mode": d.mode,
            "bpm_confidence": d.bpm_confidence,
            "key_confidence": d.key_confidence,
            "lufs": d.loudness_lufs,
            "decode_s": t1 - t0,
            "describe_s": t2 - t1,
        }
        row["acc1"], row["acc2"] = tempo_hits(d.bpm, extra["bpm"])
        row["acc1_q"], row["acc2_q"] = tempo_hits(d.bpm, extra["quarter_bpm"])
        if ref_mode in ("major", "minor"):
            row["relation"] = key_relation(d.key, d.mode, ref_key, ref_mode)
        rows.append(row)
        if i % 50 == 0:
            print(f"  {i}/{len(records)} tracks", file=sys.stderr)
    return rows


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}"


def tempo_table(rows: list[dict[str, Any]], by: str) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r[by]].append(r)
    groups["all"] = rows
    lines = [
        f"| {by} | n | Acc1 (bpm) | Acc2 (bpm) | Acc1 (quarter) | Acc2 (quarter) | either Acc1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, g in sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        m = {k: float(np.mean([r[k] for r in g])) for k in ("acc1", "acc2", "acc1_q", "acc2_q")}
        either = float(np.mean([r["acc1"] or r["acc1_q"] for r in g]))
        lines.append(
            f"| {name} | {len(g)} | {_pct(m['acc1'])} | {_pct(m['acc2'])} | "
            f"{_pct(m['acc1_q'])} | {_pct(m['acc2_q'])} | {_pct(either)} |"
        )
    return "\n".join(lines)


def key_table(rows: list[dict[str, Any]]) -> str:
    scored = [r for r in rows if "relation" in r]
    groups: dict[str, list[str]] = defaultdict(list)
    for r in scored:
        tonal = r["collection"] in TONAL
        source = r["key_source"] if tonal else "untagged (modal/early music)"
        groups[f"{source}: all"].append(r["relation"])
        groups[f"{source}: {r['collection']}"].append(r["relation"])
    order = ["notated", "estimated", "untagged (modal/early music)"]
    lines = [
        "| key source: collection | n | exact | fifth | relative | parallel | other | MIREX |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = sorted(groups, key=lambda k: (order.index(k.split(":")[0]), not k.endswith(": all"), k))
    for name in names:
        s = summarise_keys(groups[name])
        bold = "**" if name.endswith(": all") else ""
        lines.append(
            f"| {bold}{name}{bold} | {int(s['n'])} | {_pct(s['exact'])} | {_pct(s['fifth'])} | "
            f"{_pct(s['relative'])} | {_pct(s['parallel'])} | {_pct(s['other'])} | "
            f"{s['mirex']:.3f} |"
        )
    return "\n".join(lines)


def long_track_report(corpus: Path, *, sr: int, key_profile: str) -> str:
    """Cost per long track (decode, describe under the 60 s rule, describe on the whole track)
    and how often the two analyses agree (tempo within 4 %, same key and mode)."""
    records = read_manifest(corpus / "manifest.jsonl")
    describe_signal(np.zeros(sr, np.float32) + 0.1, sr=sr)  # import librosa outside the timing
    rows = []
    for rec in records:
        t0 = time.perf_counter()
        y = load_audio(corpus / rec["audio"], sr=sr)
        t1, c1 = time.perf_counter(), time.process_time()
        rule = describe_signal(y, sr=sr, key_profile=key_profile)
        t2, c2 = time.perf_counter(), time.process_time()
        whole = describe_signal(y, sr=sr, key_profile=key_profile, max_seconds=float("inf"))
        t3, c3 = time.perf_counter(), time.process_time()
        same_bpm = tempo_hits(rule.bpm, whole.bpm)[0] if whole.bpm else rule.bpm is None
        extra = rec["extra"]
        rows.append(
            {
                "seconds": y.shape[0] / sr,
                "decode": t1 - t0,
                "rule": t2 - t1,
                "rule_cpu": c2 - c1,
                "whole": t3 - t2,
                "whole_cpu": c3 - c2,
                "same_bpm": same_bpm,
                "same_key": (rule.key, rule.mode) == (whole.key, whole.mode),
                "acc1_rule": tempo_hits(rule.bpm, extra["bpm"])[0],
                "acc1_whole": tempo_hits(whole.bpm, extra["bpm"])[0],
            }
        )
    m = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return "\n".join(
        [
            f"{len(rows)} tracks of {m['seconds']:.0f} s from {corpus.name}, decoded at {sr} Hz "
            "(mean per track, wall clock; CPU time of this process in brackets):",
            "",
            "| step | seconds per track |",
            "|---|---:|",
            f"| decode (load_audio) | {m['decode']:.3f} |",
            f"| describe, 60 s rule (default) | {m['rule']:.3f} ({m['rule_cpu']:.3f} CPU) |",
            f"| describe, whole track | {m['whole']:.3f} ({m['whole_cpu']:.3f} CPU) |",
            "",
            f"The 60 s rule agrees with the whole-track analysis on tempo (within 4 %) for "
            f"{_pct(m['same_bpm'])} % of tracks and on key and mode for {_pct(m['same_key'])} %; "
            f"tempo Acc1 {_pct(m['acc1_rule'])} % (rule) against {_pct(m['acc1_whole'])} % (whole).",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=ROOT / "demo-data" / "corpus400")
    p.add_argument("--limit", type=int, default=None, help="only the first N tracks")
    p.add_argument("--sr", type=int, default=16000, help="decode rate (default: indexing's)")
    p.add_argument("--key-profile", default="temperley")
    p.add_argument("--start-bpm", type=float, default=120.0)
    p.add_argument("--json", type=Path, default=None, help="write per-track rows here")
    p.add_argument(
        "--long-corpus",
        type=Path,
        default=None,
        help="a demo corpus of long tracks: time decode and describe per track and compare the "
        "60 s excerpt rule with whole-track analysis (instead of the accuracy report)",
    )
    args = p.parse_args(argv)
    if args.long_corpus is not None:
        print(long_track_report(args.long_corpus, sr=args.sr, key_profile=args.key_profile))
        return 0
    rows = describe_corpus(
        args.corpus,
        sr=args.sr,
        limit=args.limit,
        key_profile=args.key_profile,
        start_bpm=args.start_bpm,
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), "utf-8")
    dec = np.array([r["decode_s"] for r in rows])
    des = np.array([r["describe_s"] for r in rows])
    print(f"## {len(rows)} tracks of {args.corpus.name}, decoded at {args.sr} Hz, "
          f"key profile {args.key_profile}, tempo prior {args.start_bpm:g} BPM\n")  # fmt: skip
    print(f"Per track: decode {1000 * dec.mean():.0f} ms, describe {1000 * des.mean():.0f} ms "
          f"(median {1000 * np.median(des):.0f} ms)\n")  # fmt: skip
    print("### Tempo by collection\n")
    print(tempo_table(rows, "collection") + "\n")
    print("### Tempo by metre\n")
    print(tempo_table(rows, "metre") + "\n")
    print("### Key\n")
    print(key_table(rows) + "\n")
    modal = sum("relation" not in r for r in rows)
    print(f"({modal} tracks in a church mode left out of the key scores.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
