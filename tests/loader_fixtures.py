"""Tiny copies of each dataset in its distributed file format, with real 0.5 s audio files.

Each ``write_<dataset>(root)`` writes the files under ``root`` and returns what a correct loader
must find: ``{"splits": {item id: split}, "missing": [item ids whose audio is absent]}`` plus
dataset-specific facts. One or two audio files are deliberately not written in every dataset.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SR = 16000
_MP3: bytes | None = None


def _signal(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.5 * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def write_audio(path: Path, seed: int = 0) -> Path:
    """A real 0.5 s audio file; the format follows the extension (mp3 through ffmpeg, once)."""
    global _MP3
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp3":
        if _MP3 is None:
            wav = path.with_name(".tone.wav")
            sf.write(wav, _signal(0), SR)
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", str(path)],
                check=True,
            )
            wav.unlink()
            _MP3 = path.read_bytes()
        path.write_bytes(_MP3)
    else:
        sf.write(path, _signal(seed), SR)
    return path


def _write_tsv(path: Path, rows: list[list[Any]], *, delimiter: str = "\t") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
            rows
        )


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _write_jsonl(path: Path, objects: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")


# --- MagnaTagATune ------------------------------------------------------------------------------

MTT_TAGS = [
    "guitar",
    "guitars",
    "classical",
    "no vocals",
    "instrumental",
    "rock",
    "female",
    "piano",
]


def write_magnatagatune(root: Path) -> dict[str, Any]:
    clips = [  # clip_id, mp3_path, tags present, audio written
        (2, "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-0-29.mp3",
         ["classical", "no vocals", "female"], True),
        (6, "0/jacob_heringman-black_cow-01-the_lord_zouches_maske-30-59.mp3",
         ["guitar", "classical", "instrumental"], True),
        (10, "b/rocket_band-alive-05-go-88-117.mp3", ["guitars", "rock"], True),
        (12, "c/jeff_wahl-guitarscapes-02-spanish_flyer-0-29.mp3", ["guitar", "piano"], True),
        (15, "d/some_artist-some_album-03-tune-146-175.mp3", ["rock", "guitar"], False),
        (20, "e/quiet_artist-album-01-nothing-0-29.mp3", [], True),
    ]  # fmt: skip
    header = ["clip_id", *MTT_TAGS, "mp3_path"]
    rows = [header] + [
        [cid, *("1" if t in tags else "0" for t in MTT_TAGS), path] for cid, path, tags, _ in clips
    ]
    _write_tsv(root / "annotations_final.csv", rows)
    info = [["clip_id", "track_number", "title", "artist", "album", "url", "segmentStart",
             "segmentEnd", "original_url", "mp3_path"]]  # fmt: skip
    for cid, path, _, _ in clips:
        artist, album = path.split("/")[1].split("-")[:2]
        info.append([cid, 1, f"Title {cid}", artist, album, "http://x", 0, 29, "http://y", path])
    _write_tsv(root / "clip_info_final.csv", info)
    for cid, path, _, present in clips:
        if present:
            write_audio(root / path, cid)
    return {
        "splits": {"mtt:2": "test", "mtt:6": "train", "mtt:10": "train", "mtt:12": "valid"},
        "missing": ["mtt:15"],
        "untagged": ["mtt:20"],
    }


# --- MSD-eCALS ----------------------------------------------------------------------------------


def write_msd_ecals(root: Path) -> dict[str, Any]:
    folder = root / "ecals_annotation"
    folder.mkdir(parents=True)
    annotation = {
        "TRAAAAW128F429D538": {"track_id": "TRAAAAW128F429D538", "tag": ["Hip Hop", "rap"],
                               "title": "I Didn't Mean To", "artist_name": "Casual",
                               "release": "Fear Itself", "year": 1994},
        "TRAAABD128F429CF47": {"track_id": "TRAAABD128F429CF47", "tag": ["soul", "sweet"],
                               "title": "Soul Deep", "artist_name": "The Box Tops",
                               "release": "Dimensions", "year": 1969},
        "TRAAADZ128F9348C2E": {"track_id": "TRAAADZ128F9348C2E", "tag": ["latin"]},
        "TRAAAEF128F4273421": {"track_id": "TRAAAEF128F4273421", "tag": ["pop", "80s"]},
        "TRAAAFD128F92F423A": {"track_id": "TRAAAFD128F92F423A", "tag": ["punk"]},
        "TRAAAMO128F1481E7F": {"track_id": "TRAAAMO128F1481E7F", "tag": ["jazz"]},
    }  # fmt: skip
    (folder / "annotation.json").write_text(json.dumps(annotation), encoding="utf-8")
    split = {
        "train_track": ["TRAAAAW128F429D538"],
        "extra_track": ["TRAAABD128F429CF47"],
        "valid_track": ["TRAAADZ128F9348C2E"],
        "test_track": ["TRAAAEF128F4273421", "TRAAAFD128F92F423A"],
    }  # TRAAAMO128F1481E7F is in no split
    (folder / "ecals_track_split.json").write_text(json.dumps(split), encoding="utf-8")
    for i, tid in enumerate(["TRAAAAW128F429D538", "TRAAADZ128F9348C2E", "TRAAAEF128F4273421",
                             "TRAAAMO128F1481E7F"]):  # fmt: skip
        write_audio(root / "audio" / tid[2] / tid[3] / tid[4] / f"{tid}.mp3", i)
    write_audio(root / "audio" / "TRAAABD128F429CF47.wav", 9)  # flat layout works too
    return {
        "splits": {
            "msd:TRAAAAW128F429D538": "train",
            "msd:TRAAABD128F429CF47": "train",
            "msd:TRAAADZ128F9348C2E": "valid",
            "msd:TRAAAEF128F4273421": "test",
        },
        "missing": ["msd:TRAAAFD128F92F423A"],
    }


# --- MusicCaps ----------------------------------------------------------------------------------

MUSICCAPS_HEADER = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list",
                    "caption", "author_id", "is_balanced_subset", "is_audioset_eval"]  # fmt: skip


def write_musiccaps(root: Path) -> dict[str, Any]:
    rows = [
        ["-0Gj8-vB1q4", 30, 40, "/m/0140xf,/m/02cjck", "['low quality', 'sustained strings melody', 'soft female vocal']",
         "The low quality recording features a ballad song that contains sustained strings.", 4, "False", "True"],
        ["-0SdAVK79lg", 30, 40, "/m/0155w", "['Guitar song', 'piano backing']",
         "This song features an electric guitar as the main instrument.", 0, "False", "False"],
        ["-0vPFx-wRRI", 30, 40, "/m/025_jnm", "['amateur recording', 'finger snipping']",
         "a male voice is singing a melody with changing tempos.", 6, "True", "True"],
        ["-0xzrMun0Rs", 30, 40, "/m/01g90h", "['lo-fi', 'hip hop beat']",
         "A lo-fi hip hop beat with a mellow piano.", 6, "False", "False"],
        ["-1LrH01Ei1w", 30, 40, "/m/02p0sh1", "['rock', 'energetic']",
         "An energetic rock song with distorted guitars.", 2, "False", "False"],
    ]  # fmt: skip
    _write_csv(root / "musiccaps-public.csv", [MUSICCAPS_HEADER, *rows])
    write_audio(root / "audio" / "[-0Gj8-vB1q4]-[30-40].wav", 1)
    write_audio(root / "audio" / "-0SdAVK79lg.wav", 2)
    write_audio(root / "audio" / "[-0vPFx-wRRI]-[30-40].flac", 3)
    write_audio(root / "audio" / "-0xzrMun0Rs.wav", 4)
    return {
        "splits": {
            "musiccaps:-0Gj8-vB1q4": "test",
            "musiccaps:-0SdAVK79lg": "train",
            "musiccaps:-0vPFx-wRRI": "test",
            "musiccaps:-0xzrMun0Rs": "train",
        },
        "missing": ["musiccaps:-1LrH01Ei1w"],
    }


# --- Song Describer -----------------------------------------------------------------------------

SDD_HEADER = ["caption_id", "track_id", "caption", "is_valid_subset", "familiarity", "artist_id",
              "album_id", "path", "duration"]  # fmt: skip


def write_song_describer(root: Path) -> dict[str, Any]:
    """The release's layout (mulab-mir/song-describer-dataset ``create_dataset.py``): the csv's
    ``path`` is MTG-Jamendo's ``NN/<id>.mp3`` (NN = last two digits of the id), the audio file is
    ``audio/audio/NN/<id>.2min.mp3``; ``is_valid_subset`` may be empty (no vote)."""
    rows = [
        [1, 1004500, "A calm piano piece with soft strings.", "True", 2, 4551, 11052, "00/1004500.mp3", 202.5],
        [2, 1004500, "Slow and sad piano, like a film score.", "False", 0, 4551, 11052, "00/1004500.mp3", 202.5],
        [3, 1013801, "Upbeat electronic dance track with a heavy bass.", "True", 1, 3421, 9120, "01/1013801.mp3", 341.0],
        [4, 1031402, "An acoustic folk song with a female singer.", "True", 2, 77, 305, "02/1031402.mp3", 214.8],
        [5, 1031402, "Female vocals over acoustic guitar, warm and intimate.", "", 1, 77, 305, "02/1031402.mp3", 214.8],
        [6, 1040033, "Aggressive metal with screamed vocals.", "False", 0, 901, 1200, "33/1040033.mp3", 180.0],
    ]  # fmt: skip
    _write_csv(root / "song_describer.csv", [SDD_HEADER, *rows])
    for i, path in enumerate(["00/1004500", "01/1013801", "02/1031402"]):
        write_audio(root / "audio" / "audio" / f"{path}.2min.mp3", i)
    return {
        "splits": {f"song-describer:{t}": "test" for t in (1004500, 1013801, 1031402)},
        "missing": ["song-describer:1040033"],
        "captions": {"song-describer:1004500": 2, "song-describer:1031402": 2},
    }


# --- WikiMuTe -----------------------------------------------------------------------------------


def write_wikimute(root: Path) -> dict[str, Any]:
    rows = [
        ["filename", "page_title", "aspects", "sentences", "split"],
        ["File:Bach Toccata.ogg", "Toccata and Fugue in D minor",
         "['organ', 'Baroque', 'fugue']", "['The piece opens with a famous organ flourish, then a fugue.']", "train"],
        ["Moonlight_Sonata.ogg", "Piano Sonata No. 14",
         "['piano', 'slow']", "['The first movement is slow and quiet.', 'It is in C-sharp minor.']", "train"],
        ["Moonlight_Sonata.ogg", "Beethoven", "['sonata']", "['A sonata for solo piano.']", "train"],
        ["Take_Five.ogg", "Take Five", "['jazz', 'saxophone', '5/4']", "['A cool jazz piece in 5/4 time.']", "valid"],
        ["Maple_Leaf_Rag.ogg", "Maple Leaf Rag", "['ragtime', 'piano']", "['A syncopated ragtime piece.']", "test"],
        ["Lost_Recording.ogg", "Lost", "['blues']", "['A blues song.']", "test"],
    ]  # fmt: skip
    _write_csv(root / "wikimute.csv", rows)
    for i, name in enumerate(["Bach_Toccata.ogg", "Moonlight_Sonata.ogg", "Take_Five.ogg",
                              "Maple_Leaf_Rag.ogg"]):  # fmt: skip
        write_audio(root / "audio" / name, i)
    return {
        "splits": {
            "wikimute:Bach Toccata.ogg": "train",
            "wikimute:Moonlight_Sonata.ogg": "train",
            "wikimute:Take_Five.ogg": "valid",
            "wikimute:Maple_Leaf_Rag.ogg": "test",
        },
        "missing": ["wikimute:Lost_Recording.ogg"],
    }


# --- MARD ---------------------------------------------------------------------------------------


def write_mard(root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    albums = [
        {"amazon-id": "B000002UAL", "artist": "Nirvana", "title": "Nevermind", "label": "DGC",
         "root-genre": "Rock", "songs": [{"title": "Breed"}]},
        {"amazon-id": "B00000DCI7", "artist": "Nirvana", "title": "Nevermind",
         "root-genre": "Rock"},  # another edition of the same album
        {"amazon-id": "B000024V4G", "artist": "Miles Davis", "title": "Kind of Blue",
         "root-genre": "Jazz"},
        {"amazon-id": "B00004T9UF", "artist": "Radiohead", "title": "Kid A",
         "root-genre": "Alternative Rock"},
        {"amazon-id": "B0000AGWEC", "artist": "Nobody", "title": "No Reviews"},
    ]  # fmt: skip
    _write_jsonl(root / "mard_metadata.json", albums)
    reviews = [
        {"amazon-id": "B000002UAL", "reviewerID": "A1", "overall": 5.0, "summary": "Classic",
         "reviewText": "Loud guitars and a raw voice; grunge at its best."},
        {"amazon-id": "B000002UAL", "reviewerID": "A2", "overall": 4.0, "summary": "Good",
         "reviewText": "Catchy hooks under heavy distortion."},
        {"amazon-id": "B00000DCI7", "reviewerID": "A3", "overall": 5.0,
         "reviewText": "The remaster sounds great."},
        {"amazon-id": "B000024V4G", "reviewerID": "A4", "overall": 5.0,
         "reviewText": "Cool modal jazz with muted trumpet."},
        {"amazon-id": "B00004T9UF", "reviewerID": "A5", "overall": 3.0,
         "reviewText": "Cold electronic textures, barely any guitar."},
        {"amazon-id": "B0UNKNOWN1", "reviewerID": "A6", "overall": 1.0, "reviewText": "Orphan."},
    ]  # fmt: skip
    _write_jsonl(root / "mard_reviews.json", reviews)
    write_audio(root / "audio" / "B000002UAL" / "01-smells.flac", 1)
    write_audio(root / "audio" / "B000002UAL" / "02-in-bloom.flac", 2)
    write_audio(root / "audio" / "B00000DCI7" / "01-smells.flac", 3)
    write_audio(root / "audio" / "B000024V4G.mp3", 4)
    return {
        "albums": ["mard:B000002UAL", "mard:B00000DCI7", "mard:B000024V4G"],
        "missing": ["mard:B00004T9UF"],
        "same_album": ["mard:B000002UAL", "mard:B00000DCI7"],
    }


# --- GTZAN --------------------------------------------------------------------------------------


def write_gtzan(root: Path, *, split_files: bool) -> dict[str, Any]:
    names = ["blues.00000", "blues.00001", "jazz.00054", "metal.00003", "hiphop.00010"]
    for i, name in enumerate(names):
        write_audio(root / "genres" / name.split(".")[0] / f"{name}.wav", i)
    if not split_files:
        return {"ids": [f"gtzan:{n}" for n in names], "missing": []}
    lists = {
        "train_filtered.txt": ["blues/blues.00000.au", "metal/metal.00003.au"],
        "valid_filtered.txt": ["hiphop/hiphop.00010.au"],
        "test_filtered.txt": ["blues/blues.00001.au", "rock/rock.00042.au"],
    }  # jazz.00054 is a faulty excerpt; rock.00042 is listed but not on disk
    for name, lines in lists.items():
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "splits": {
            "gtzan:blues.00000": "train",
            "gtzan:metal.00003": "train",
            "gtzan:hiphop.00010": "valid",
            "gtzan:blues.00001": "test",
        },
        "missing": ["gtzan:rock.00042"],
    }


# --- FMA ----------------------------------------------------------------------------------------

FMA_COLUMNS = [  # (group, field) after the track_id column, in tracks.csv's order
    ("album", "id"), ("album", "title"), ("artist", "id"), ("artist", "name"),
    ("set", "split"), ("set", "subset"), ("track", "duration"), ("track", "genre_top"),
    ("track", "genres"), ("track", "genres_all"), ("track", "tags"), ("track", "title"),
]  # fmt: skip


def write_fma(root: Path) -> dict[str, Any]:
    meta = root / "fma_metadata"
    header = [
        ["", *(g for g, _ in FMA_COLUMNS)],
        ["", *(f for _, f in FMA_COLUMNS)],
        ["track_id", *([""] * len(FMA_COLUMNS))],
    ]
    tracks = [  # tid, album, artist, split, subset, duration, top, genres, genres_all, title
        (2, "AWOL - A Way Of Life", "AWOL", "training", "small", 168, "Hip-Hop", "[21]", "[21]", "Food"),
        (5, "AWOL - A Way Of Life", "AWOL", "training", "small", 206, "Hip-Hop", "[21]", "[21]", "This World"),
        (10, "Constant Hitmaker", "Kurt Vile", "validation", "small", 161, "Pop", "[10]", "[10]", "Freeway"),
        (140, "Ohio", "Alec K. Redfearn", "test", "small", 253, "Folk", "[17]", "[17]", "Queen Of The Wires"),
        (141, "Ohio", "Alec K. Redfearn", "test", "small", 182, "Folk", "[17]", "[17]", "Ohio"),
        (148, "Mutant", "Blue Dot Sessions", "training", "medium", 300, "", "[76, 21]", "[21, 76]", "Untitled"),
        (1482, "Indie", "Some Band", "training", "small", 120, "Rock", "[25]", "[12, 25]", "Punker"),
    ]  # fmt: skip
    rows = [
        [tid, 1, album, 1, artist, split, subset, dur, top, genres, all_, "[]", title]
        for tid, album, artist, split, subset, dur, top, genres, all_, title in tracks
    ]
    _write_csv(meta / "tracks.csv", [*header, *rows])
    _write_csv(
        meta / "genres.csv",
        [
            ["genre_id", "#tracks", "parent", "title", "top_level"],
            [10, 13845, 0, "Pop", 10],
            [12, 32923, 0, "Rock", 12],
            [17, 12706, 0, "Folk", 17],
            [21, 8389, 0, "Hip-Hop", 21],
            [25, 9261, 12, "Punk", 12],
            [76, 100, 21, "Experimental Hip-Hop", 21],
        ],
    )
    for tid in (2, 5, 10, 140, 148):
        digits = f"{tid:06d}"
        write_audio(root / "fma_small" / digits[:3] / f"{digits}.mp3")
    return {
        "splits": {"fma:2": "train", "fma:5": "train", "fma:10": "valid", "fma:140": "test"},
        "missing": ["fma:141", "fma:1482"],
        "outside_small": ["fma:148"],
    }
