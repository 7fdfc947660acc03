"""OLGA (Korzeniowski, Oramas & Gouyon, 2021): an artist-similarity graph of 17,673 artists, as
TTMR++ uses it for its artist-retrieval table (``ttmrpp-artist`` in `melodex.evaluate.tasks`).

Not a text-to-music dataset: its manifest holds the MSD tracks of the OLGA artists, so their
audio can be embedded, and `read_olga_graph` gives the task the graph and each artist's tracks.

No file of OLGA or of TTMR++'s derived folder is public on GitHub (OLGA is on GitLab, fdlm/olga;
the derived files on the authors' Hugging Face page), so this loader is tested on a
reconstruction from TTMR++'s reader (``mtrpp/evaluation/eval_olga.py``, ``mtrpp/datasets/
olga.py``, commit 4bc7aa7) and OLGA's published ``olga.csv`` header
(``tests/fixtures/olga/README.md``).

Files expected: TTMR++'s ``olga-msd`` folder, given as ``root`` (or its parent):

- ``olga.csv``: a pandas csv with an unnamed index column, ``musicbrainz_id`` (the artist),
  ``partition`` (``train`` / ``val`` / ``test``) and ``tracks`` (AcousticBrainz ids, unused);
  the row order is the order of the graph's rows and columns.
- ``filip2021/artist_connections.npz`` (or ``artist_connections.npz``): a SciPy sparse matrix
  saved by ``scipy.sparse.save_npz`` (CSR, CSC or COO; read here with NumPy alone, no pickle),
  the artist x artist adjacency. TTMR++'s ground truth is ``A + A.T`` as integers, so an edge
  stored both ways has grade 2.
- ``artist_meta.json``: ``{mbid: {"artist_name": [names], "pos_tracks": [MSD track ids]}}``.
- ``track_meta.json``: ``{MSD track id: {"path": "<7digital path>.mp3", ...}}``.
- Audio: the MSD previews at ``<audio_root>/<path>`` (default ``<root's parent>/msd/songs``) or,
  with ``npy="ttmr-pp"`` (what TTMR++ reads) or ``npy="ttmr"``, ``<audio_root>/<path>.npy``
  (default ``<root's parent>/msd/npy``), see `melodex.data.waveforms`.

Items: one per track of an artist with tracks, id ``msd:<track id>``, ``artist`` the artist's
names joined by ", ", ``extra`` with ``track_id``, ``olga_artist`` (mbid), ``olga_artists`` (all
artists listing the track) and the audio facts.

Split: the artist's OLGA partition (``val`` -> ``valid``). TTMR++ ranks *every* artist with tracks
for each test artist, so evaluate with ``--split all``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodex.data.loaders._common import (
    DatasetFormatError,
    LoadResult,
    bad_row,
    first_existing,
    keep_present,
    make_item,
    read_json_file,
    read_table,
    require_file,
)
from melodex.data.loaders._msd_audio import MsdAudio

NAME = "olga"
PARTITIONS = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}


@dataclass
class OlgaGraph:
    """The artist graph in ``olga.csv`` order.

    ``artists[i]`` (mbid) is row and column i of the graph, in ``partitions[i]``; ``edges`` are
    ``(rows, cols, grades)`` of ``A + A.T`` (duplicates summed, zero grades dropped);
    ``names[mbid]`` and ``tracks[mbid]`` come from ``artist_meta.json``.
    """

    artists: list[str]
    partitions: list[str]
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]
    names: dict[str, list[str]] = field(default_factory=dict)
    tracks: dict[str, list[str]] = field(default_factory=dict)

    def index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.artists)}

    def grades(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Dense ``(len(rows), len(cols))`` integer grades of the given artist indices."""
        out = np.zeros((len(rows), len(cols)), dtype=np.int64)
        row_at = {int(r): i for i, r in enumerate(rows)}
        col_at = {int(c): j for j, c in enumerate(cols)}
        er, ec, ew = self.edges
        for r, c, w in zip(er.tolist(), ec.tolist(), ew.tolist(), strict=True):
            i, j = row_at.get(r), col_at.get(c)
            if i is not None and j is not None:
                out[i, j] += w
        return out


def olga_folder(root: Path) -> Path:
    """``root`` itself when it holds ``olga.csv``, else ``root/olga-msd``."""
    root = Path(root)
    return root if (root / "olga.csv").is_file() else root / "olga-msd"


def read_sparse_npz(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, values)`` of a ``scipy.sparse.save_npz`` file, read with NumPy only."""
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = z["format"].item()
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            shape = tuple(int(x) for x in z["shape"])
            data = z["data"]
            if fmt in ("csr", "csc"):
                indptr, indices = z["indptr"], z["indices"]
                major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
                rows, cols = (major, indices) if fmt == "csr" else (indices, major)
            elif fmt == "coo":
                rows, cols = z["row"], z["col"]
            else:
                raise DatasetFormatError(f"{path}: sparse format {fmt!r} is not csr, csc or coo")
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DatasetFormatError(f"{path}: not a scipy.sparse .npz matrix ({exc})") from None
    if shape != (n, n):
        raise DatasetFormatError(f"{path}: matrix shape {shape}, expected ({n}, {n}) for olga.csv")
    return np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(data)


def _symmetric(
    rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int
) -> tuple[np.ndarray, ...]:
    r = np.concatenate([rows, cols])
    c = np.concatenate([cols, rows])
    w = np.concatenate([data, data]).astype(np.float64)
    key = r * n + c
    uniq, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=w)
    keep = summed != 0
    grades = summed[keep]
    if not np.allclose(grades, np.round(grades)):
        raise DatasetFormatError("artist connections must be integer weights")
    return uniq[keep] // n, uniq[keep] % n, np.round(grades).astype(np.int64)


def read_olga_graph(root: str | Path) -> OlgaGraph:
    """The graph, names and tracks of TTMR++'s ``olga-msd`` folder (see the module docstring)."""
    folder = olga_folder(Path(root))
    csv_path = require_file(folder / "olga.csv", "OLGA olga.csv")
    artists, partitions = [], []
    for line, row in read_table(csv_path, required=("musicbrainz_id", "partition")):
        mbid, part = row["musicbrainz_id"].strip(), row["partition"].strip().lower()
        if not mbid or part not in PARTITIONS:
            raise bad_row(csv_path, line, f"need a musicbrainz_id and a partition, got {part!r}")
        artists.append(mbid)
        partitions.append(PARTITIONS[part])
    if len(set(artists)) != len(artists):
        raise DatasetFormatError(f"{csv_path}: an artist appears twice")
    npz = first_existing(
        folder / "filip2021" / "artist_connections.npz", folder / "artist_connections.npz"
    )
    if npz is None:
        raise DatasetFormatError(f"no artist_connections.npz under {folder} (or its filip2021/)")
    edges = _symmetric(*read_sparse_npz(npz, len(artists)), len(artists))
    meta_path = require_file(folder / "artist_meta.json", "OLGA artist_meta.json")
    meta = read_json_file(meta_path)
    if not isinstance(meta, dict):
        raise bad_row(meta_path, None, "expected an object keyed by artist mbid")
    names: dict[str, list[str]] = {}
    tracks: dict[str, list[str]] = {}
    for mbid, entry in meta.items():
        if not isinstance(entry, dict):
            raise bad_row(meta_path, None, f"artist {mbid!r}: expected an object")
        raw_names = entry.get("artist_name") or []
        raw_tracks = entry.get("pos_tracks") or []
        if isinstance(raw_names, str):
            raw_names = [raw_names]
        if not isinstance(raw_names, list) or not isinstance(raw_tracks, list):
            raise bad_row(meta_path, None, f"artist {mbid!r}: artist_name/pos_tracks not lists")
        names[str(mbid)] = [str(n) for n in raw_names]
        tracks[str(mbid)] = [str(t) for t in raw_tracks]
    return OlgaGraph(artists, partitions, edges, names, tracks)


def load(
    root: Path,
    *,
    audio_root: Path | None = None,
    npy: str | None = None,
    npy_sample_rate: int | None = None,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    folder = olga_folder(root)
    graph = read_olga_graph(folder)
    track_meta_path = require_file(folder / "track_meta.json", "OLGA track_meta.json")
    track_meta = read_json_file(track_meta_path)
    if not isinstance(track_meta, dict):
        raise bad_row(track_meta_path, None, "expected an object keyed by MSD track id")
    paths: dict[str, str] = {}
    for track_id, entry in track_meta.items():
        path = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(path, str) and path.strip():
            paths[str(track_id)] = path.strip()
    msd_root = folder.parent / "msd"
    default = msd_root / ("npy" if npy else "songs")
    audio = MsdAudio(
        msd_root, audio_root=Path(audio_root) if audio_root else default, npy=npy,
        npy_sample_rate=npy_sample_rate, meta_paths=paths,
    )  # fmt: skip
    result.notes.append(
        f"{len(graph.artists)} artists, {len(graph.edges[0])} directed edges of A + A.T; "
        f"audio under {audio.folder}"
    )
    owners: dict[str, list[str]] = {}
    for mbid in graph.artists:
        for track_id in graph.tracks.get(mbid, []):
            owners.setdefault(track_id, []).append(mbid)
    partition = dict(zip(graph.artists, graph.partitions, strict=True))
    items = []
    for track_id, artists in owners.items():
        mbid = artists[0]
        extra: dict[str, Any] = {"track_id": track_id, "olga_artist": mbid, "olga_artists": artists}
        items.append(
            make_item(
                id=f"msd:{track_id}",
                audio=audio.path(track_id),
                split=partition[mbid],
                artist=", ".join(graph.names.get(mbid, [])) or None,
                extra=extra | audio.extra(track_id),
                source=NAME,
            )
        )
    no_path = sum(t not in paths for t in owners)
    if no_path:
        result.warnings.append(f"{no_path} track(s) have no path in track_meta.json")
    keep_present(result, items)
    return result
