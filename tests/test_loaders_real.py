"""Every loader on real release files, or on reconstructions that state their evidence.

The fixtures are in ``tests/fixtures/<dataset>/`` with a README each (source repository, path,
commit, licence, how the excerpt was cut or what was reconstructed). Audio is never committed:
each test writes real 0.5 s files where the release would have them.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from melodex.data.acousticbrainz import (
    DESCRIPTOR_DIM,
    FEATURE_SET,
    descriptor_matrix,
    descriptor_vector,
)
from melodex.data.loaders import DatasetFormatError, load_dataset, write_loaded
from melodex.data.loaders.dimsim import read_triplets
from melodex.data.loaders.olga import read_olga_graph, read_sparse_npz
from melodex.data.manifest import read_manifest
from melodex.data.plain_pickle import load_plain_pickle
from melodex.data.tag_lists import read_tag_list
from tests.loader_fixtures import write_audio

FIXTURES = Path(__file__).parent / "fixtures"


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def by_id(result) -> dict[str, dict]:  # noqa: ANN001
    return {it["id"]: it for it in result.items}


# --------------------------------------------------------------------------- MusicCaps (real)


def test_musiccaps_real_excerpt(tmp_path):
    root = copy("musiccaps", tmp_path)
    write_audio(root / "audio" / "[-0Gj8-vB1q4]-[30-40].wav", 1)
    write_audio(root / "audio" / "3OUNEL8XaR0.wav", 2)  # a whole-video file (multi-line caption)
    result = load_dataset("musiccaps", root)
    assert len(result.every_item) == 43 and len(result.missing_audio) == 41
    items = by_id(result)
    first = items["musiccaps:-0Gj8-vB1q4"]
    assert first["split"] == "test" and (first["start"], first["end"]) == (0.0, 10.0)
    assert first["tags"][:2] == ["low quality", "sustained strings melody"]
    multi = items["musiccaps:3OUNEL8XaR0"]["texts"][0]["text"]
    assert "\n" in multi  # the real file's caption with an embedded CRLF survives
    meta = {it["id"]: it for it in result.every_item}
    assert all(it["split"] == "test" for it in meta.values() if it["extra"]["is_balanced_subset"])
    assert sum(it["split"] == "train" for it in meta.values()) == 18


# --------------------------------------------------------------------------- GTZAN (real)


def test_gtzan_real_fault_filtered_lists(tmp_path):
    root = copy("gtzan", tmp_path)
    listed = (root / "test_filtered.txt").read_text().split()
    assert listed[0].endswith(".wav") and len(listed) == 290
    for entry in ("blues/blues.00000.wav", "blues/blues.00001.wav", listed[0]):
        write_audio(root / "genres" / entry, 0)
    write_audio(root / "genres" / "country" / "country.00008.wav", 0)  # in no list (faulty)
    result = load_dataset("gtzan", root)
    assert len(result.every_item) == 443 + 197 + 290
    splits = {it["id"]: it["split"] for it in result.items}
    assert splits[f"gtzan:{Path(listed[0]).stem}"] == "test"
    assert "gtzan:country.00008" not in splits
    assert any("outside the fault-filtered split" in w for w in result.warnings)


# --------------------------------------------------------------------------- MagnaTagATune


def test_magnatagatune_pub_lists_and_top50_on_real_files(tmp_path):
    root = copy("magnatagatune", tmp_path)
    assert len(load_plain_pickle(root / "valid_list_pub.cP")) == 1529  # the real file, whole
    rows = (root / "annotations_final.csv").read_text().splitlines()
    for row in rows[1:]:
        mp3 = row.split("\t")[-1].strip('"')
        if "broken" in mp3:
            (root / "mp3" / mp3).parent.mkdir(parents=True, exist_ok=True)
            (root / "mp3" / mp3).write_bytes(b"")  # the release's zero-byte clip
        else:
            write_audio(root / "mp3" / mp3, 0)
    result = load_dataset("mtt", root, split_lists=root, tag_list="mtt-top50")
    items = by_id(result)
    assert len(items) == 20 + 4  # 20 real valid clips, 2 train, 2 test; 35644 is zero bytes
    assert result.missing_audio == ["mtt:35644"]
    assert "mtt:300005" not in items  # in no pub list
    assert any("1509 listed clip(s) are not in" in w for w in result.warnings)
    assert items["mtt:200000"]["tags"] == ["guitar", "rock", "metal"]  # y_valid_pub row 0
    assert items["mtt:200000"]["split"] == "valid"
    assert {it["split"] for it in items.values()} == {"train", "valid", "test"}
    top50 = set(read_tag_list("mtt-top50"))
    assert all(set(it["tags"]) <= top50 for it in items.values())
    # the folder split agrees with the pub lists on every listed clip
    plain = by_id(load_dataset("mtt", root))
    assert all(plain[i]["split"] == items[i]["split"] for i in items)


def test_magnatagatune_tag_list_must_name_real_columns(tmp_path):
    root = copy("magnatagatune", tmp_path)
    (tmp_path / "tags.txt").write_text("guitar\nnot a magnatagatune tag\n")
    with pytest.raises(DatasetFormatError, match="not a magnatagatune tag"):
        load_dataset("mtt", root, tag_list=tmp_path / "tags.txt")


# --------------------------------------------------------------------------- MSD-eCALS


def test_msd_ecals_release_layout_pickles_and_mp3(tmp_path):
    root = copy("msd_ecals", tmp_path)
    write_audio(root / "songs" / "8/9/8947470.clip.mp3", 0)
    write_audio(root / "songs" / "3/4/3401791.clip.mp3", 1)
    result = load_dataset("msd-ecals", root)
    items = by_id(result)
    assert set(items) == {"msd:TRSAGNY128F425391E", "msd:TRAAAAW128F429D538"}
    real = items["msd:TRSAGNY128F425391E"]  # the README's real record
    assert (real["title"], real["artist"], real["album"]) == (
        "What Are You Fighting For?", "Youth Brigade", "Sink With Kalifornija")  # fmt: skip
    assert real["extra"]["year"] == 1984 and real["split"] == "test"
    assert real["extra"]["7digital_path"] == "8/9/8947470.clip.mp3"
    assert "year" not in items["msd:TRAAAAW128F429D538"]["extra"]  # 0 = unknown
    every = {it["id"]: it for it in result.every_item}
    assert every["msd:TRAAADZ128F9348C2E"]["split"] == "train"  # extra_track joins train
    assert "year" not in every["msd:TRAAADZ128F9348C2E"]["extra"]  # bare NaN in the JSON
    assert any("1 track(s) have no 7digital path" in w for w in result.warnings)
    assert any("7digital pickles" in n for n in result.notes)
    multi = load_dataset("msd-ecals", root, subset="multiquery")
    assert [it["id"] for it in multi.items] == ["msd:TRSAGNY128F425391E"]


@pytest.mark.parametrize(("encoding", "sr"), [("ttmr", 16000), ("ttmr-pp", 22050)])
def test_msd_ecals_npy_waveforms_decode_as_the_papers_store_them(tmp_path, encoding, sr):
    from melodex.data.waveforms import load_item_audio

    root = copy("msd_ecals", tmp_path)
    t = np.arange(sr) / sr
    signal = (0.25 * np.sin(2 * np.pi * 220 * t) + 0.05).astype(np.float32)
    if encoding == "ttmr":
        stored = signal
    else:  # TTMR++ float32_to_int16: min-max scaled to [-1, 1], times 32767, truncated
        scaled = (signal - signal.min()) / (signal.max() - signal.min()) * 2 - 1
        stored = (scaled * 32767.0).astype(np.int16)
    path = root / "npy" / "8/9/8947470.clip.npy"
    path.parent.mkdir(parents=True)
    np.save(path, stored)
    result = load_dataset("msd-ecals", root, npy=encoding)
    (item,) = result.items
    assert item["audio"].endswith("8947470.clip.npy")
    assert item["extra"]["waveform"] == {"encoding": encoding, "sample_rate": sr}
    y = load_item_audio(item["audio"], sr=sr, waveform=item["extra"]["waveform"])
    expected = signal if encoding == "ttmr" else stored / 32767.0
    np.testing.assert_allclose(y, expected, atol=1e-6)
    y8 = load_item_audio(item["audio"], sr=8000, offset=0.25, duration=0.5,
                         waveform=item["extra"]["waveform"])  # fmt: skip
    assert len(y8) == 4000
    from melodex.errors import AudioDecodeError

    other = "ttmr-pp" if encoding == "ttmr" else "ttmr"
    with pytest.raises(AudioDecodeError, match="does not match"):
        load_item_audio(item["audio"], sr=sr, waveform={"encoding": other})
    with pytest.raises(AudioDecodeError, match="needs extra.waveform"):
        load_item_audio(item["audio"], sr=sr)


def test_npy_items_are_embedded_through_their_waveform_spec(tmp_path, toy_model):
    from melodex.evaluate.embed import embed_items

    np.save(tmp_path / "a.npy", (0.1 * np.sin(np.arange(16000 * 2) / 9)).astype(np.float32))
    items = [{"id": "a", "audio": "a.npy", "start": None, "end": None,
              "extra": {"waveform": {"encoding": "ttmr", "sample_rate": 16000}}},
             {"id": "b", "audio": "a.npy", "start": None, "end": None, "extra": {}}]  # fmt: skip
    emb = embed_items(toy_model, items, root=tmp_path)
    assert emb.ids == ["a"] and "needs extra.waveform" in emb.failures[0][1]


def test_plain_pickle_refuses_globals(tmp_path):
    import collections

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    with pytest.raises(DatasetFormatError, match=r"refers to collections\.OrderedDict"):
        load_plain_pickle(tmp_path / "evil.pkl")
    (tmp_path / "os.pkl").write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(DatasetFormatError, match=r"refers to os\.system"):
        load_plain_pickle(tmp_path / "os.pkl")
    (tmp_path / "cut.pkl").write_bytes(b"(dp1\nS'a'\n")
    with pytest.raises(DatasetFormatError, match="not a plain-data pickle"):
        load_plain_pickle(tmp_path / "cut.pkl")


# --------------------------------------------------------------------------- Song Describer


def test_song_describer_release_layout(tmp_path):
    root = copy("song_describer", tmp_path)
    write_audio(root / "audio" / "audio" / "26" / "226.2min.mp3", 0)
    write_audio(root / "audio" / "audio" / "80" / "4880.2min.mp3", 0)
    result = load_dataset("song-describer", root)
    items = by_id(result)
    assert set(items) == {"song-describer:226", "song-describer:4880"}
    assert result.missing_audio == ["song-describer:3112"]
    e = items["song-describer:226"]["extra"]
    assert (e["artist_id"], e["album_id"], e["caption_ids"], e["familiarity"]) == (
        14,
        31,
        [101, 102],
        [2, 0],
    )
    assert e["track_duration"] == 222.8 and 0.4 < e["duration"] < 0.7
    assert e["path"] == "26/226.mp3"
    valid = load_dataset("song-describer", root, valid_subset_only=True)
    assert [len(it["texts"]) for it in valid.items] == [1, 1]


# --------------------------------------------------------------------------- WikiMuTe


def test_wikimute_urls_and_variants(tmp_path):
    root = copy("wikimute", tmp_path)
    write_audio(root / "audio" / "A-ha-Take on Me.ogg", 0)  # verbatim name, spaces kept
    write_audio(root / "audio" / "Erik Satie - Gymnopedie No.1.ogg", 1)
    result = load_dataset("wikimute", root)
    items = by_id(result)
    take = items["wikimute:A-ha-Take on Me.ogg"]["extra"]
    assert take["urls"] == [
        "https://en.wikipedia.org/wiki/Take_On_Me",
        "https://en.wikipedia.org/wiki/A-ha",
    ]
    assert take["audio_url"].endswith("A-ha-Take_on_Me.ogg")
    assert take["pages"] == ["1134813", "25437"]
    assert len(items["wikimute:A-ha-Take on Me.ogg"]["texts"]) == 3  # 2 sentences + tag text
    assert result.missing_audio == ["wikimute:Missing Recording.ogg"]
    mc = load_dataset("wikimute", root, variant="filtered_mc")
    assert [it["id"] for it in mc.items] == ["wikimute:Erik Satie - Gymnopedie No.1.ogg"]


# --------------------------------------------------------------------------- MARD


def test_mard_descriptors_as_audio_and_categories(tmp_path):
    root = copy("mard", tmp_path)
    result = load_dataset("mard", root, audio_source="descriptors", category_tags=True)
    items = by_id(result)
    assert list(items) == ["mard:B000002UAL"]  # the only album with a descriptor
    assert result.missing_audio == ["mard:B000003TA4"]
    item = items["mard:B000002UAL"]
    assert item["extra"]["audio_features"] == FEATURE_SET
    assert item["extra"]["mbid"] == "0dad432b-16cc-4bf0-8961-fd31d124b01b"
    assert item["extra"]["categories"] == [
        "CDs & Vinyl > Rock > Alternative Rock",
        "CDs & Vinyl > Pop",
    ]
    assert item["tags"] == ["rock", "alternative rock", "pop"]
    assert [t["source"] for t in item["texts"]].count("mard:review") == 2
    assert any("1 review(s) of albums absent" in w for w in result.warnings)
    manifest = write_loaded(result, tmp_path / "out" / "mard.jsonl")
    x, ids = descriptor_matrix(read_manifest(manifest), root=manifest.parent)
    assert x.shape == (1, DESCRIPTOR_DIM) == (1, 369) and ids == ["mard:B000002UAL"]
    doc = json.loads(next((root / "acousticbrainz_descriptors").iterdir()).read_text())
    low = doc["lowlevel"]
    assert x[0, 0] == np.float32(low["mfcc"]["mean"][0])
    assert x[0, 13 + 14] == np.float32(low["mfcc"]["cov"][1][1])
    assert x[0, -1] == np.float32(low["spectral_rolloff"]["var"])
    audio = load_dataset("mard", root)  # default: audio you fetched yourself
    assert audio.items == [] and len(audio.missing_audio) == 2


def test_descriptor_vector_names_the_missing_field(tmp_path):
    doc = json.loads(next((FIXTURES / "mard" / "acousticbrainz_descriptors").iterdir()).read_text())
    del doc["lowlevel"]["zerocrossingrate"]["dvar2"]
    (tmp_path / "d.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetFormatError, match=r"d\.json: lowlevel\.zerocrossingrate lacks"):
        descriptor_vector(tmp_path / "d.json")


# --------------------------------------------------------------------------- FMA


def test_fma_reconstruction_three_row_header(tmp_path):
    root = copy("fma", tmp_path)
    for tid in (2, 5, 10):
        write_audio(root / "fma_small" / "000" / f"{tid:06d}.mp3", tid)
    result = load_dataset("fma", root)
    items = by_id(result)
    assert {i: it["split"] for i, it in items.items()} == {
        "fma:2": "train",
        "fma:5": "test",
        "fma:10": "valid",
    }
    assert items["fma:2"]["tags"] == ["hip-hop"] and items["fma:2"]["title"] == "Food"
    assert any("outside the 'small' subset" in w for w in result.warnings)


# --------------------------------------------------------------------------- OLGA, DIM-SIM


def test_olga_graph_and_manifest(tmp_path):
    scipy = pytest.importorskip("scipy.sparse")
    root = copy("olga", tmp_path)
    graph = read_olga_graph(root)
    assert graph.partitions == ["train", "train", "valid", "test", "test", "test"]
    dense = scipy.load_npz(root / "olga-msd/filip2021/artist_connections.npz").toarray()
    expected = dense + dense.T  # TTMR++: A + A.T, an edge stored both ways has grade 2
    np.testing.assert_array_equal(graph.grades(np.arange(6), np.arange(6)), expected)
    assert expected[0, 3] == 2
    rows, cols, _ = read_sparse_npz(root / "olga-msd/filip2021/artist_connections.npz", 6)
    assert len(rows) == len(cols) == 6
    meta = json.loads((root / "olga-msd/track_meta.json").read_text())
    write_audio(root / "msd" / "songs" / meta["TRAAAAA128F0000001"]["path"], 0)
    result = load_dataset("olga", root)
    (item,) = result.items
    assert item["id"] == "msd:TRAAAAA128F0000001" and item["artist"] == "Artist A"
    assert item["split"] == "train" and len(result.missing_audio) == 6


def test_dimsim_clips_and_triplets(tmp_path):
    root = copy("dimsim", tmp_path)
    for k in range(1, 7):
        write_audio(root / "dim-sim" / "audio" / f"TRDIMAA128F000000{k}.mp3", k)
    result = load_dataset("dim-sim", root)
    items = by_id(result)
    assert len(items) == 6  # distinct (track, start) clips
    clip = items["dimsim:TRDIMAA128F0000002@12.5"]
    assert (clip["start"], clip["end"], clip["title"], clip["artist"], clip["album"]) == (
        12.5, 15.5, "Red Song", "Another Band", "Second Album")  # fmt: skip
    assert "title" not in items["dimsim:TRDIMAA128F0000006@10"]
    trips = read_triplets(root)
    assert [t.song1_vote for t in trips] == [1, 0, 1, 0]
    assert trips[0].anchor == "dimsim:TRDIMAA128F0000001@30"


# --------------------------------------------------------------------------- bad bytes


@pytest.mark.parametrize(
    ("dataset", "file", "line"),
    [
        ("musiccaps", "musiccaps-public.csv", 3),
        ("song_describer", "song_describer.csv", 2),
        ("gtzan", "train_filtered.txt", 5),
        ("magnatagatune", "annotations_final.csv", 4),
        ("mard", "mard_reviews.json", 2),
        ("msd_ecals", "ecals_annotation/ecals_track_split.json", 1),
        ("wikimute", "data/all.csv", 3),
        ("fma", "fma_metadata/tracks.csv", 5),
        ("olga", "olga-msd/olga.csv", 3),
        ("dimsim", "dim-sim/clean-dim-sim.csv", 2),
    ],
)
def test_a_non_utf8_byte_names_the_file_and_line(tmp_path, dataset, file, line):
    root = copy(dataset, tmp_path)
    path = root / file
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1][:5] + b"\xe9" + lines[line - 1][5:]  # Latin-1 'e acute'
    path.write_bytes(b"\n".join(lines))
    name = {"song_describer": "song-describer", "msd_ecals": "msd-ecals", "dimsim": "dim-sim"}
    with pytest.raises(
        DatasetFormatError, match=rf"{Path(file).name}:{line}: not UTF-8 text \(byte 0xe9"
    ):
        load_dataset(name.get(dataset, dataset), root)


def test_tag_lists(tmp_path):
    import numpy as np

    np.save(tmp_path / "tags.npy", np.array(["Rock", "jazz"]))
    assert read_tag_list(tmp_path / "tags.npy") == ["rock", "jazz"]
    (tmp_path / "tags.json").write_text('["a", "b", "a"]')
    with pytest.raises(DatasetFormatError, match="repeats"):
        read_tag_list(tmp_path / "tags.json")
    assert len(read_tag_list("ttmr-50")) == 50 and read_tag_list("ttmr-50")[5] == "hip hop"
    assert len(read_tag_list("ttmr-1054")) == 1054
    assert set(read_tag_list("ttmr-50")) <= set(read_tag_list("ttmr-1054"))
    header = (FIXTURES / "magnatagatune/annotations_final.header_order.txt").read_text().split("\n")
    assert set(read_tag_list("mtt-top50")) <= set(header)
    with pytest.raises(DatasetFormatError, match="neither a named list"):
        read_tag_list("ttmr-51")
