"""Dataset loaders: each parses a tiny copy of its dataset written in the real file format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import tests.loader_fixtures as fx
from melodex.data.loaders import (
    LOADERS,
    DatasetFormatError,
    LoadResult,
    hash_split,
    load_dataset,
    write_loaded,
)
from melodex.data.manifest import read_manifest
from melodex.errors import MelodexError

WRITERS = {
    "magnatagatune": fx.write_magnatagatune,
    "msd-ecals": fx.write_msd_ecals,
    "musiccaps": fx.write_musiccaps,
    "song-describer": fx.write_song_describer,
    "wikimute": fx.write_wikimute,
    "fma": fx.write_fma,
}


def by_id(result: LoadResult) -> dict[str, dict]:
    return {item["id"]: item for item in result.items}


def roundtrip(result: LoadResult, out: Path) -> list[dict]:
    """Write the manifest somewhere else than the dataset and read it back with audio checks."""
    path = write_loaded(result, out / "manifests" / f"{result.dataset}.jsonl")
    items = read_manifest(path, check_audio=True)
    assert [it["id"] for it in items] == [it["id"] for it in result.items]
    assert all(not Path(it["audio"]).is_absolute() for it in items)
    return items


def test_registry_covers_every_dataset():
    assert set(LOADERS) == {*WRITERS, "mard", "gtzan", "olga", "dim-sim"}
    for loader in LOADERS.values():
        assert loader.__module__.startswith("melodex.data.loaders.")
        assert "Split" in (sys.modules[loader.__module__].__doc__ or "")


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_loader_parses_fixture_splits_and_missing(name, tmp_path):
    expect = WRITERS[name](tmp_path / "data")
    result = load_dataset(name, tmp_path / "data")
    assert {it["id"]: it["split"] for it in result.items} == expect["splits"]
    assert sorted(result.missing_audio) == sorted(expect["missing"])
    assert any("missing audio" in w for w in result.warnings)
    items = roundtrip(result, tmp_path)
    for item in items:
        assert item["texts"], item["id"]
        assert all(t["source"].startswith(f"{name}:") for t in item["texts"])
        assert item["tags"] == [t.lower() for t in item["tags"]]


def test_magnatagatune_texts_metadata_and_options(tmp_path):
    expect = fx.write_magnatagatune(tmp_path)
    items = by_id(load_dataset("mtt", tmp_path))
    assert items["mtt:6"]["tags"] == ["guitar", "classical", "instrumental"]
    assert items["mtt:6"]["artist"] == "jacob_heringman"
    assert {t["kind"] for t in items["mtt:6"]["texts"]} == {"tag", "metadata"}
    assert expect["untagged"][0] not in items
    kept = by_id(load_dataset("mtt", tmp_path, drop_untagged=False))
    assert kept["mtt:20"]["tags"] == [] and kept["mtt:20"]["split"] == "test"

    merged = by_id(load_dataset("mtt", tmp_path, merge_synonyms=True))
    assert merged["mtt:10"]["tags"] == ["guitar", "rock"]  # guitars -> guitar
    assert merged["mtt:6"]["tags"] == ["guitar", "classical", "no vocal"]
    # counts after merging: guitar 4, classical 2, no vocal 2, rock 2 -> top 2 by count then name
    top = load_dataset("mtt", tmp_path, merge_synonyms=True, top_n=2)
    assert {t for it in top.items for t in it["tags"]} == {"guitar", "classical"}
    assert "mtt:2" in by_id(top)  # classical
    assert by_id(top)["mtt:10"]["tags"] == ["guitar"]


def test_magnatagatune_malformed_row_names_file_and_line(tmp_path):
    fx.write_magnatagatune(tmp_path)
    path = tmp_path / "annotations_final.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"0"', '"2"', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DatasetFormatError, match=r"annotations_final\.csv:4: tag .* must be 0 or 1"
    ):
        load_dataset("magnatagatune", tmp_path)


def test_msd_ecals_metadata_and_tolerant_csv(tmp_path):
    fx.write_msd_ecals(tmp_path)
    item = by_id(load_dataset("ecals", tmp_path))["msd:TRAAAAW128F429D538"]
    assert item["tags"] == ["hip hop", "rap"]
    assert (item["title"], item["artist"], item["album"]) == (
        "I Didn't Mean To",
        "Casual",
        "Fear Itself",
    )
    assert item["extra"]["year"] == 1994
    result = load_dataset("msd-ecals", tmp_path)
    assert any("in no split" in w for w in result.warnings)

    (tmp_path / "ecals_annotation" / "annotation.json").unlink()
    (tmp_path / "ecals_annotation" / "annotation.csv").write_text(
        "track_id,tags\nTRAAAAW128F429D538,soul|funk\nTRAAADZ128F9348C2E,\"['latin', 'salsa']\"\n"
    )
    items = by_id(load_dataset("msd-ecals", tmp_path))
    assert items["msd:TRAAAAW128F429D538"]["tags"] == ["soul", "funk"]
    assert items["msd:TRAAADZ128F9348C2E"]["tags"] == ["latin", "salsa"]


def test_msd_ecals_malformed_files(tmp_path):
    fx.write_msd_ecals(tmp_path)
    (tmp_path / "ecals_annotation" / "annotation.json").write_text(
        '{"TR1": {"tag": ["a"]},\n oops}'
    )
    with pytest.raises(DatasetFormatError, match=r"annotation\.json:2: invalid JSON"):
        load_dataset("msd-ecals", tmp_path)
    (tmp_path / "ecals_annotation" / "annotation.json").write_text('{"TR1": {"title": "x"}}')
    with pytest.raises(
        DatasetFormatError, match=r"annotation\.json: entry of 'TR1' has no tag list"
    ):
        load_dataset("msd-ecals", tmp_path)


def test_musiccaps_texts_tags_and_segments(tmp_path):
    fx.write_musiccaps(tmp_path)
    items = by_id(load_dataset("musiccaps", tmp_path))
    item = items["musiccaps:-0Gj8-vB1q4"]
    assert item["tags"] == ["low quality", "sustained strings melody", "soft female vocal"]
    assert [t["kind"] for t in item["texts"]] == ["caption", "tag"]
    assert item["texts"][0]["text"].startswith("The low quality recording")
    assert (item["start"], item["end"]) == (0.0, 10.0)
    assert item["extra"]["youtube_start"] == 30.0
    assert Path(item["audio"]).name == "[-0Gj8-vB1q4]-[30-40].wav"
    full = by_id(load_dataset("musiccaps", tmp_path, full_videos=True))
    assert (full["musiccaps:-0SdAVK79lg"]["start"], full["musiccaps:-0SdAVK79lg"]["end"]) == (
        30,
        40,
    )
    assert full["musiccaps:-0vPFx-wRRI"]["start"] == 0.0  # a [ytid]-[s-e] file is the segment


def test_musiccaps_malformed_aspect_list(tmp_path):
    fx.write_musiccaps(tmp_path)
    path = tmp_path / "musiccaps-public.csv"
    path.write_text(path.read_text().replace("['rock', 'energetic']", "['rock', 'energetic'"))
    with pytest.raises(DatasetFormatError, match=r"musiccaps-public\.csv:6: column 'aspect_list'"):
        load_dataset("musiccaps", tmp_path)


def test_song_describer_groups_captions_per_track(tmp_path):
    expect = fx.write_song_describer(tmp_path)
    items = by_id(load_dataset("song-describer", tmp_path))
    for item_id, n in expect["captions"].items():
        assert [t["kind"] for t in items[item_id]["texts"]] == ["caption"] * n
    extra = items["song-describer:1004500"]["extra"]
    assert extra["caption_ids"] == [1, 2] and extra["familiarity"] == [2, 0]
    assert (extra["artist_id"], extra["album_id"], extra["track_id"]) == (4551, 11052, 1004500)
    assert extra["track_duration"] == 202.5  # the full Jamendo track, from the csv
    assert extra["duration"] == pytest.approx(0.5, abs=0.06)  # the excerpt file itself
    assert extra["is_valid_subset"] == [True, False]
    assert items["song-describer:1004500"]["audio"].endswith("00/1004500.2min.mp3")
    assert items["song-describer:1004500"]["tags"] == []
    valid = by_id(load_dataset("song-describer", tmp_path, valid_subset_only=True))
    assert len(valid["song-describer:1004500"]["texts"]) == 1
    assert len(valid["song-describer:1031402"]["texts"]) == 1  # the empty vote is not valid


def test_song_describer_wrong_field_count(tmp_path):
    fx.write_song_describer(tmp_path)
    path = tmp_path / "song_describer.csv"
    path.write_text(path.read_text() + "7,1,too few fields\n")
    with pytest.raises(
        DatasetFormatError, match=r"song_describer\.csv:8: expected 9 fields, got 3"
    ):
        load_dataset("song-describer", tmp_path)


def test_wikimute_merges_rows_and_keeps_sentences(tmp_path):
    fx.write_wikimute(tmp_path)
    items = by_id(load_dataset("wikimute", tmp_path))
    moon = items["wikimute:Moonlight_Sonata.ogg"]
    captions = [t["text"] for t in moon["texts"] if t["kind"] != "tag"]
    assert captions == [
        "The first movement is slow and quiet.",
        "It is in C-sharp minor.",
        "A sonata for solo piano.",
    ]
    assert moon["tags"] == ["piano", "slow", "sonata"]
    assert moon["extra"]["pages"] == ["Piano Sonata No. 14", "Beethoven"]
    assert all(t["source"] == "wikimute:mined" for t in moon["texts"] if t["kind"] != "tag")
    assert Path(items["wikimute:Bach Toccata.ogg"]["audio"]).name == "Bach_Toccata.ogg"


def test_wikimute_without_split_column_hashes_and_warns(tmp_path):
    fx.write_wikimute(tmp_path)
    path = tmp_path / "wikimute.csv"
    lines = [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    result = load_dataset("wikimute", tmp_path, seed=3)
    assert any("seeded hash split" in w for w in result.warnings)
    for item in result.items:
        assert item["split"] == hash_split(item["extra"]["file"], seed=3)


def test_wikimute_release_variants(tmp_path):
    """The release's own layout: data/{all,filtered_sf,filtered_mc}.csv with pageid/audio_url."""
    header = ["file", "pageid", "aspects", "sentences", "audio_url", "url"]
    rows = {
        "all": [["Take_Five.ogg", "1", "['jazz']", "['A cool jazz piece.']", "u", "w"],
                ["Take_Five.ogg", "2", "['saxophone']", "['Saxophone solo.']", "u", "w"],
                ["Noise.ogg", "3", "['noise']", "['Not music.']", "u", "w"]],
        "filtered_sf": [["Take_Five.ogg", "1", "['jazz']", "['A cool jazz piece.']", "u", "w"]],
        "filtered_mc": [["Take_Five.ogg", "1", "['jazz']", "['A cool jazz piece.']", "u", "w"]],
    }  # fmt: skip
    for name, body in rows.items():
        fx._write_csv(tmp_path / "data" / f"{name}.csv", [header, *body])
    fx.write_audio(tmp_path / "audio" / "Take_Five.ogg", 0)
    fx.write_audio(tmp_path / "audio" / "Noise.ogg", 1)
    every = by_id(load_dataset("wikimute", tmp_path))
    assert sorted(every) == ["wikimute:Noise.ogg", "wikimute:Take_Five.ogg"]
    assert every["wikimute:Take_Five.ogg"]["tags"] == ["jazz", "saxophone"]
    filtered = by_id(load_dataset("wikimute", tmp_path, variant="filtered_sf"))
    assert sorted(filtered) == ["wikimute:Take_Five.ogg"]
    with pytest.raises(DatasetFormatError, match="unknown WikiMuTe variant"):
        load_dataset("wikimute", tmp_path, variant="best")


def test_wikimute_bad_split(tmp_path):
    fx.write_wikimute(tmp_path)
    path = tmp_path / "wikimute.csv"
    path.write_text(path.read_text().replace(",valid\n", ",dev\n"))
    with pytest.raises(DatasetFormatError, match=r"wikimute\.csv:5: unknown split 'dev'"):
        load_dataset("wikimute", tmp_path)


def test_mard_album_items_reviews_and_album_split(tmp_path):
    expect = fx.write_mard(tmp_path)
    result = load_dataset("mard", tmp_path, seed=1)
    items = by_id(result)
    assert sorted(items) == sorted(expect["albums"])
    assert result.missing_audio == expect["missing"]
    nevermind = items["mard:B000002UAL"]
    assert [t["source"] for t in nevermind["texts"]] == ["mard:review"] * 2 + [
        "mard:tags",
        "mard:metadata",
    ]
    assert nevermind["tags"] == ["rock"] and nevermind["album"] == "Nevermind"
    assert nevermind["extra"]["tracks"] == ["01-smells.flac", "02-in-bloom.flac"]
    assert nevermind["extra"]["ratings"] == [5.0, 4.0]
    assert any("fewer than 1 review" in w for w in result.warnings)
    assert any("absent from the metadata" in w for w in result.warnings)
    roundtrip(result, tmp_path)
    # the two editions of one album share a split, whatever the seed
    for seed in range(20):
        splits = by_id(load_dataset("mard", tmp_path, seed=seed))
        assert len({splits[i]["split"] for i in expect["same_album"]}) == 1

    tracks = load_dataset("mard", tmp_path, per_track=True, seed=1)
    ids = [it["id"] for it in tracks.items]
    assert ids == [
        "mard:B000002UAL/01-smells",
        "mard:B000002UAL/02-in-bloom",
        "mard:B00000DCI7/01-smells",
        "mard:B000024V4G/B000024V4G",
    ]
    assert {it["split"] for it in tracks.items[:3]} == {nevermind["split"]}
    roundtrip(tracks, tmp_path / "t")


def test_mard_invalid_json_line(tmp_path):
    fx.write_mard(tmp_path)
    path = tmp_path / "mard_reviews.json"
    path.write_text(path.read_text() + '{"amazon-id": "B000002UAL", "reviewText": \n')
    with pytest.raises(DatasetFormatError, match=r"mard_reviews\.json:7: invalid JSON"):
        load_dataset("mard", tmp_path)


def test_gtzan_fault_filtered_split(tmp_path):
    expect = fx.write_gtzan(tmp_path, split_files=True)
    result = load_dataset("gtzan", tmp_path)
    assert {it["id"]: it["split"] for it in result.items} == expect["splits"]
    assert result.missing_audio == expect["missing"]
    assert any("outside the fault-filtered split" in w for w in result.warnings)
    item = by_id(result)["gtzan:hiphop.00010"]
    assert item["tags"] == ["hiphop"]
    assert item["texts"] == [{"kind": "tag", "text": "hiphop", "source": "gtzan:tags"}]
    roundtrip(result, tmp_path)


def test_gtzan_seeded_split_without_split_files(tmp_path):
    expect = fx.write_gtzan(tmp_path, split_files=False)
    result = load_dataset("gtzan", tmp_path, seed=7)
    assert sorted(it["id"] for it in result.items) == sorted(expect["ids"])
    assert result.missing_audio == []
    assert any("seeded hash split" in w for w in result.warnings)
    for item in result.items:
        assert item["split"] == hash_split(item["id"].split(":")[1], seed=7)
    again = load_dataset("gtzan", tmp_path, seed=7)
    assert [i["split"] for i in again.items] == [i["split"] for i in result.items]


def test_gtzan_bad_split_file_line(tmp_path):
    fx.write_gtzan(tmp_path, split_files=True)
    (tmp_path / "valid_filtered.txt").write_text("hiphop/hiphop.00010.au\nnonsense\n")
    with pytest.raises(DatasetFormatError, match=r"valid_filtered\.txt:2: expected <genre>"):
        load_dataset("gtzan", tmp_path)


def test_fma_metadata_genres_and_subsets(tmp_path):
    expect = fx.write_fma(tmp_path)
    result = load_dataset("fma", tmp_path)  # subset "small" from the folder name
    items = by_id(result)
    assert expect["outside_small"][0] not in items
    assert any("outside the 'small' subset" in w for w in result.warnings)
    food = items["fma:2"]
    assert (food["title"], food["artist"], food["album"]) == (
        "Food",
        "AWOL",
        "AWOL - A Way Of Life",
    )
    assert food["tags"] == ["hip-hop"]
    assert Path(food["audio"]).parts[-3:] == ("fma_small", "000", "000002.mp3")
    medium = by_id(load_dataset("fma", tmp_path, subset="medium"))
    assert medium["fma:148"]["tags"] == ["hip-hop", "experimental hip-hop"]
    assert medium["fma:148"]["split"] == "train"


def test_fma_bad_split_value_and_header(tmp_path):
    fx.write_fma(tmp_path)
    path = tmp_path / "fma_metadata" / "tracks.csv"
    text = path.read_text()
    path.write_text(text.replace(",validation,", ",dev,"))
    with pytest.raises(DatasetFormatError, match=r"tracks\.csv:6: bad set/split 'dev'"):
        load_dataset("fma", tmp_path)
    path.write_text("\n".join(text.splitlines()[1:]) + "\n")  # lost the first header row
    with pytest.raises(DatasetFormatError, match=r"tracks\.csv:3: expected FMA's 3-row header"):
        load_dataset("fma", tmp_path)


def test_missing_dataset_file_and_unknown_names(tmp_path):
    with pytest.raises(
        DatasetFormatError, match=r"MusicCaps csv not found: .*musiccaps-public\.csv"
    ):
        load_dataset("musiccaps", tmp_path)
    with pytest.raises(MelodexError, match=r"unknown dataset 'nope'"):
        load_dataset("nope", tmp_path)
    with pytest.raises(MelodexError, match=r"musiccaps loader has no option\(s\) \['top_n'\]"):
        load_dataset("musiccaps", tmp_path, top_n=50)


def test_write_loaded_relative_paths(tmp_path):
    fx.write_musiccaps(tmp_path / "data")
    result = load_dataset("musiccaps", tmp_path / "data")
    path = write_loaded(result, tmp_path / "out" / "deep" / "m.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert first["audio"].startswith("../../data/audio/")
    assert (path.parent / first["audio"]).is_file()


def test_hash_split_is_stable_and_roughly_proportional():
    splits = [hash_split(f"key{i}", seed=0) for i in range(2000)]
    assert splits == [hash_split(f"key{i}", seed=0) for i in range(2000)]
    share = splits.count("train") / len(splits)
    assert 0.76 < share < 0.84
    assert splits != [hash_split(f"key{i}", seed=1) for i in range(2000)]
    with pytest.raises(MelodexError, match="fractions"):
        hash_split("x", seed=0, fractions=(0.5, 0.5, 0.5))


def test_finer_text_kinds_are_kept():
    from melodex.data.loaders import _common

    for kind in ("review", "mined", "pseudo-caption"):
        assert _common.text_entry(kind, " Great. ") == {"kind": kind, "text": "Great."}
    entry = _common.text_entry("review", "Great.", source="mard:review")
    assert entry == {"kind": "review", "text": "Great.", "source": "mard:review"}
