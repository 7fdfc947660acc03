"""Synthetic library rows for bench_million.py: clustered vectors plus realistic metadata.

Row ``i``'s id, path and track vector depend only on ``i`` and the settings (vectors are drawn per
block of rows from the block's own seed), so an interrupted build resumes from the count already
in the store. Two kinds of vectors: ``"tags"`` (default) imitates the default model's space, in
which a track vector is its tag confidences normalised (:func:`tag_layout`); ``"sphere"`` is
:func:`synthetic.clustered_vectors` (a Zipf mixture of clusters over the whole sphere). Each
track also has ``windows`` window vectors near its track vector (the default model stores up to
8 windows of 3 s), tag scores, a path in a genre/artist/album/track folder tree, tags, and for 80%
of tracks the mid-level descriptors (bpm, key, mode, loudness)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from synthetic import _layout, _sample

from melodex.library.store import TrackRow, schema, track_id

GENRES = (  # noqa: SIM905 (a word list)
    "Jazz Blues Rock Pop Folk Classical Electronic Techno House Ambient Hip-Hop Reggae Metal "
    "Punk Soul Funk Country Latin Bossa-Nova Baroque Choral Soundtrack Indie Disco Gospel "
    "Celtic Flamenco Afrobeat Dub Drum-and-Bass"
).split()
SYLLABLES = (  # noqa: SIM905 (a word list)
    "ka lo mi ra shen to vel an dor is ul ber na quin fa sol ti ma re zu pe cor lin dal ves ho"
).split()
WORDS = (  # noqa: SIM905 (a word list)
    "night river blue song morning dream fire cold summer road heart light rain city shadow "
    "ocean silver golden slow falling dancing lonely winter garden wild little last first "
    "home north electric velvet paper glass midnight sunday secret broken bright"
).split()
KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
EXTENSIONS = (".flac", ".mp3", ".ogg", ".m4a")
TRACKS_PER_ALBUM = 11
ALBUMS_PER_ARTIST = 3
ROOT = "/media/music"


def _name(index: int, parts: int, salt: int) -> str:
    """A pronounceable capitalised name, deterministic in (index, salt)."""
    out = []
    x = index * 2654435761 + salt * 40503
    for _ in range(parts):
        word = ""
        for _ in range(2 + x % 2):
            word += SYLLABLES[x % len(SYLLABLES)]
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(word.capitalize())
    return " ".join(out)


def _title(index: int) -> str:
    x = (index * 2246822519 + 374761393) & 0xFFFFFFFF
    n = 1 + x % 3
    words = []
    for _ in range(n + 1):
        words.append(WORDS[x % len(WORDS)])
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
    return " ".join(words).capitalize()


BLOCK = 65_536  # track vectors are drawn per block of rows, each block from its own seed
KINDS = ("tags", "sphere")


def _zipf_weights(n: int, rng: np.random.Generator, power: float = 1.1) -> np.ndarray:
    weights = 1.0 / (rng.permutation(n) + 1.0) ** power
    return weights / weights.sum()


def tag_layout(n_tags: int, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Styles of music as tag-confidence profiles: (n_clusters, n_tags) and Zipf weights.

    A real melodex-base track vector is its taggers' confidences (non-negative; a few tags at
    0.4-0.8, the rest near 0.04), L2-normalised, and a text query is close to one-hot on its
    best tags. Families of styles share 3-6 strong tags (popular tags in many families); each
    style varies its family's strengths and adds one or two tags of its own.
    """
    rng = np.random.default_rng([seed, 10])
    popularity = _zipf_weights(n_tags, rng, 0.8)
    n_families = max(1, int(round(np.sqrt(n_clusters))))
    families = np.zeros((n_families, n_tags), np.float32)
    for f in range(n_families):
        strong = rng.choice(n_tags, size=rng.integers(3, 7), replace=False, p=popularity)
        families[f, strong] = rng.uniform(0.25, 0.7, len(strong))
    family_of = rng.integers(0, n_families, n_clusters)
    profiles = families[family_of] * rng.lognormal(0.0, 0.25, (n_clusters, n_tags))
    drop = rng.random((n_clusters, n_tags)) < 0.15
    profiles[drop] *= 0.2
    for c in range(n_clusters):
        extra = rng.choice(n_tags, size=rng.integers(1, 3), replace=False, p=popularity)
        profiles[c, extra] = np.maximum(profiles[c, extra], rng.uniform(0.15, 0.6, len(extra)))
    background = rng.beta(1.2, 30.0, (n_clusters, n_tags))
    profiles = np.clip(np.maximum(profiles, background), 0.0, 0.95).astype(np.float32)
    return profiles, _zipf_weights(n_clusters, rng)


def tag_sample(
    n: int, profiles: np.ndarray, weights: np.ndarray, rng: np.random.Generator, noise: float
) -> np.ndarray:
    """(n, n_tags) track tag confidences drawn around the styles' profiles."""
    which = rng.choice(len(profiles), size=n, p=weights)
    jitter = rng.lognormal(0.0, noise, (n, profiles.shape[1])).astype(np.float32)
    return np.clip(profiles[which] * jitter, 1e-4, 0.98)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@dataclass
class RowMaker:
    """Makes rows [start, stop) of one synthetic library (row i is the same in any library
    made with the same settings).

    ``kind="tags"``: vectors shaped like the default model's (tag confidences, normalised; see
    :func:`tag_layout`), so its text queries land where they would in a real library.
    ``kind="sphere"``: bench/synthetic.py's clustered unit vectors, which cover the whole sphere
    (right for a model whose space is the sentence space; text queries of the tag-space
    default model are far from all of them).
    """

    dim: int
    n_tags: int
    n_clusters: int
    kind: str = "tags"
    spread: float = 0.5
    windows: int = 8
    seed: int = 0
    _blocks: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def _block(self, b: int) -> np.ndarray:
        """Block b of track vectors ("sphere") or of tag confidences ("tags")."""
        if b not in self._blocks:
            if len(self._blocks) > 2:
                self._blocks.clear()
            rng = np.random.default_rng([self.seed, 1, b])
            if self.kind == "tags":
                profiles, weights = tag_layout(self.dim, self.n_clusters, self.seed)
                self._blocks[b] = tag_sample(BLOCK, profiles, weights, rng, 0.35)
            else:
                centres, weights, spreads = _layout(
                    self.dim, self.n_clusters, self.spread, self.seed
                )
                self._blocks[b] = _sample(BLOCK, centres, weights, spreads, 1.0, rng)
        return self._blocks[b]

    def _rows(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.dim), np.float32)
        pos = start
        while pos < stop:
            b, off = divmod(pos, BLOCK)
            take = min(stop - pos, BLOCK - off)
            out[pos - start : pos - start + take] = self._block(b)[off : off + take]
            pos += take
        return out

    def vectors(self, start: int, stop: int) -> np.ndarray:
        """Track vectors of rows [start, stop): unit float32."""
        raw = self._rows(start, stop)
        return unit(raw) if self.kind == "tags" else raw

    def queries(self, n: int, query_seed: int = 1) -> np.ndarray:
        """n new vectors from the same clusters, drawn a little looser than the tracks."""
        rng = np.random.default_rng([self.seed, 2, query_seed])
        if self.kind == "tags":
            profiles, weights = tag_layout(self.dim, self.n_clusters, self.seed)
            return unit(tag_sample(n, profiles, weights, rng, 0.45))
        centres, weights, spreads = _layout(self.dim, self.n_clusters, self.spread, self.seed)
        return _sample(n, centres, weights, spreads, 1.2, rng)

    def paths_and_meta(self, start: int, stop: int) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in ("path", "title", "artist", "album", "genre")}
        for i in range(start, stop):
            album_no, track_no = divmod(i, TRACKS_PER_ALBUM)
            artist_no, album_in_artist = divmod(album_no, ALBUMS_PER_ARTIST)
            genre = GENRES[(artist_no * 7919) % len(GENRES)]
            artist = _name(artist_no, 1 + artist_no % 2, 1)
            album = _name(album_no, 2, 2)
            year = 1960 + (album_no * 31) % 64
            title = _title(i)
            ext = EXTENSIONS[(artist_no * 13) % len(EXTENSIONS)]
            # artist_no and album_no keep every path unique even when names collide
            path = (
                f"{ROOT}/{genre}/{artist} [{artist_no}]/{year} - {album} [{album_no}]/"
                f"{track_no + 1:02d} - {title}{ext}"
            )
            out["path"].append(path)
            out["title"].append(title)
            out["artist"].append(artist)
            out["album"].append(album)
            out["genre"].append(genre.replace("-", " "))
        return out

    def arrays(self, start: int, stop: int) -> dict[str, np.ndarray | list]:
        """Every column of rows [start, stop) as numpy arrays / lists."""
        n = stop - start
        rng = np.random.default_rng([self.seed, 7, start])
        meta = self.paths_and_meta(start, stop)
        duration = np.clip(rng.lognormal(np.log(220.0), 0.35, n), 30.0, 1800.0).astype(np.float32)
        if self.kind == "tags":  # windows: the track's confidences, each tag moving a little
            conf = self._rows(start, stop)
            vec = unit(conf)
            jitter = rng.lognormal(0.0, 0.25, (n, self.windows, self.dim)).astype(np.float32)
            windows = unit(np.clip(conf[:, None, :] * jitter, 1e-4, 1.0))
            tags = conf
        else:  # windows: the track vector plus noise (cosine ~0.97 with it, like real ones)
            vec = self.vectors(start, stop)
            noise = rng.standard_normal((n, self.windows, self.dim), dtype=np.float32)
            windows = unit(vec[:, None, :] + noise * np.float32(0.25 / np.sqrt(self.dim)))
            tags = rng.beta(0.6, 4.0, size=(n, self.n_tags)).astype(np.float32)
        frac = np.linspace(0.0, 1.0, self.windows, dtype=np.float32)
        starts = (duration[:, None] - 3.0) * frac[None, :]
        has_desc = rng.random(n) < 0.8  # some tracks were indexed without --descriptors
        bpm = np.clip(rng.normal(118.0, 24.0, n), 50.0, 200.0).astype(np.float32)
        key_idx = rng.integers(0, len(KEYS), n)
        minor = rng.random(n) < 0.4
        hashes = rng.bytes(16 * n).hex()
        return {
            "id": np.array([track_id(p) for p in meta["path"]], dtype=np.int64),
            **meta,
            "content_hash": [hashes[32 * j : 32 * j + 32] for j in range(n)],
            "size": (duration.astype(np.int64) * rng.integers(16_000, 120_000, n)),
            "mtime_ns": rng.integers(1_500_000_000, 1_750_000_000, n) * 1_000_000_000,
            "duration": duration,
            "vector": vec,
            "window_vectors": windows,
            "window_starts": starts.astype(np.float32),
            "tag_scores": tags,
            "has_desc": has_desc,
            "bpm": bpm,
            "bpm_confidence": rng.uniform(0.3, 1.0, n).astype(np.float32),
            "key": [KEYS[k] for k in key_idx],
            "mode": ["minor" if m else "major" for m in minor],
            "key_confidence": rng.uniform(0.2, 0.95, n).astype(np.float32),
            "loudness_lufs": rng.normal(-14.0, 4.0, n).astype(np.float32),
        }

    def track_rows(self, start: int, stop: int) -> list[TrackRow]:
        """Rows [start, stop) as the indexer hands them to Store.upsert."""
        a = self.arrays(start, stop)
        out = []
        for j in range(stop - start):
            desc = a["has_desc"][j]
            out.append(
                TrackRow(
                    id=int(a["id"][j]),
                    path=a["path"][j],
                    content_hash=a["content_hash"][j],
                    size=int(a["size"][j]),
                    mtime_ns=int(a["mtime_ns"][j]),
                    duration=float(a["duration"][j]),
                    title=a["title"][j],
                    artist=a["artist"][j],
                    album=a["album"][j],
                    genre=a["genre"][j],
                    vector=a["vector"][j],
                    window_vectors=a["window_vectors"][j],
                    window_starts=a["window_starts"][j],
                    tag_scores=a["tag_scores"][j],
                    bpm=float(a["bpm"][j]) if desc else None,
                    bpm_confidence=float(a["bpm_confidence"][j]) if desc else None,
                    key=a["key"][j] if desc else None,
                    mode=a["mode"][j] if desc else None,
                    key_confidence=float(a["key_confidence"][j]) if desc else None,
                    loudness_lufs=float(a["loudness_lufs"][j]) if desc else None,
                )
            )
        return out

    def arrow(self, start: int, stop: int, indexed_at: float) -> pa.Table:
        """Rows [start, stop) as an Arrow table of the store's schema, built column-wise
        (what Store._to_arrow makes from TrackRows, without the per-row Python objects)."""
        a = self.arrays(start, stop)
        n, dim, w = stop - start, self.dim, self.windows
        sch = schema(dim)

        def fixed(flat: np.ndarray, size: int) -> pa.Array:
            return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), size)

        def lists(values: pa.Array, per_row: int) -> pa.Array:
            offsets = pa.array(np.arange(0, (n + 1) * per_row, per_row, dtype=np.int32))
            return pa.ListArray.from_arrays(offsets, values)

        mask = ~a["has_desc"]

        def opt(values: np.ndarray | list, typ: pa.DataType) -> pa.Array:
            return pa.array(values, typ, mask=mask)

        cols = {
            "id": pa.array(a["id"]),
            "path": pa.array(a["path"], pa.string()),
            "content_hash": pa.array(a["content_hash"], pa.string()),
            "size": pa.array(a["size"], pa.int64()),
            "mtime_ns": pa.array(a["mtime_ns"], pa.int64()),
            "duration": pa.array(a["duration"]),
            "title": pa.array(a["title"], pa.string()),
            "artist": pa.array(a["artist"], pa.string()),
            "album": pa.array(a["album"], pa.string()),
            "genre": pa.array(a["genre"], pa.string()),
            "vector": fixed(a["vector"], dim),
            "window_vectors": lists(fixed(a["window_vectors"], dim), w),
            "window_starts": lists(pa.array(a["window_starts"].ravel()), w),
            "tag_scores": lists(pa.array(a["tag_scores"].ravel()), self.n_tags),
            "bpm": opt(a["bpm"], pa.float32()),
            "bpm_confidence": opt(a["bpm_confidence"], pa.float32()),
            "key": opt(a["key"], pa.string()),
            "mode": opt(a["mode"], pa.string()),
            "key_confidence": opt(a["key_confidence"], pa.float32()),
            "loudness_lufs": opt(a["loudness_lufs"], pa.float32()),
            "indexed_at": pa.array(np.full(n, indexed_at, np.float64)),
        }
        return pa.table([cols[f.name].cast(f.type) for f in sch], schema=sch)
