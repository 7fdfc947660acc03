"""Similar with several seeds and plus/minus texts; caps per artist/album, MMR, collapse."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from melodex.errors import ParameterError
from melodex.library.library import PLUS_WEIGHT, Library
from melodex.library.variety import Variety
from tests.library_fixtures import make_tagged_music
from tests.test_duplicates import ffmpeg


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def test_similar_to_several_seeds_with_plus_and_minus(tagged, toy_model) -> None:
    lib, paths = tagged
    ids, vectors = lib.store.vectors()
    row = {int(i): v for i, v in zip(ids, vectors, strict=True)}
    seeds = [paths["kyrie"], paths["reel"]]
    seed_ids = [lib.store.find_path(str(p))["id"] for p in seeds]
    mean = _unit(row[seed_ids[0]] + row[seed_ids[1]])
    plus, minus = toy_model.encode_text(["band 3", "clicks"])
    query = _unit(mean + PLUS_WEIGHT * plus)
    expected = vectors @ query - 0.5 * (vectors @ minus)
    order = [int(i) for i in ids[np.argsort(-expected, kind="stable")] if i not in seed_ids]
    hits = lib.similar([str(p) for p in seeds], k=6, plus=["band 3"], minus=["clicks"])
    assert [h.id for h in hits] == order[:6]
    np.testing.assert_allclose(
        [h.score for h in hits], sorted(expected[np.isin(ids, order)], reverse=True)[:6], atol=1e-5
    )
    plain = lib.similar([str(p) for p in seeds], k=6)
    brute = [int(i) for i in ids[np.argsort(-(vectors @ mean), kind="stable")] if i not in seed_ids]
    assert [h.id for h in plain] == brute[:6]
    with pytest.raises(ParameterError, match="at least one"):
        lib.similar([])


def test_caps_per_artist_and_album(tagged) -> None:
    lib, _ = tagged
    hits = lib.search("music", k=8, variety=Variety(per_artist=1))
    artists = [h.artist for h in hits]
    assert len(artists) == len(set(artists)) == 4
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    one = lib.search("music", k=8, variety=Variety(per_album=1))
    assert len({h.album for h in one}) == len(one) == 5  # five albums among the eight tracks
    both = lib.search("music", k=8, variety=Variety(per_artist=2, per_album=1))
    assert len(both) == 5  # one per album, and Palestrina's two albums are two of his
    with pytest.raises(ParameterError, match="per_artist"):
        Variety(per_artist=0)


def test_mmr_takes_the_least_redundant_next(tagged) -> None:
    lib, _ = tagged
    ids, vectors = lib.store.vectors()
    row = {int(i): v for i, v in zip(ids, vectors, strict=True)}
    plain = lib.search("organ", k=8, mode="vector")
    varied = lib.search("organ", k=8, mode="vector", variety=Variety(diversity=1.0))
    assert varied[0].id == plain[0].id and {h.id for h in varied} == {h.id for h in plain}
    first = row[varied[0].id]
    others = [h.id for h in plain[1:]]
    assert varied[1].id == min(others, key=lambda i: float(row[i] @ first))
    half = lib.search("organ", k=3, mode="vector", variety=Variety(diversity=0.5))
    assert len(half) == 3 and half[0].id == plain[0].id


def test_collapse_keeps_one_version_of_a_recording(tmp_path: Path, toy_model) -> None:
    paths = make_tagged_music(tmp_path / "music")
    ffmpeg(paths["emperor"], tmp_path / "music" / "copies" / "emperor.mp3", "-b:a", "96k")
    shutil.copy(paths["reel"], tmp_path / "music" / "copies" / "reel-copy.flac")
    lib = Library(tmp_path / "db", model=toy_model)
    lib.index(tmp_path / "music")
    every = lib.search("quartet", k=10, mode="vector")
    one = lib.search("quartet", k=10, mode="vector", variety=Variety(collapse=True))
    assert len(every) == 10 and len(one) == 8
    names = [Path(h.path).name for h in one]
    assert sum(n.startswith("emperor") for n in names) == 1
    assert sum(n.startswith("reel") for n in names) == 1
    seeds = lib.similar(str(paths["kyrie"]), k=9, variety=Variety(collapse=True))
    assert len(seeds) == 7
