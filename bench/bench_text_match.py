"""Where a hybrid or filtered search spent its time at 1M tracks, part by part: the figures
behind docs/scale.md's "What changed" rows. Runs on the library bench/bench_million.py builds.

- ``count(*)`` of the text index (what every query paid before the count was cached);
- SQLite ranking the OR query of two or three common words (all matches, as every query read
  them before; and only the top 100), against melodex summing each word's cached scores (and
  whether the two agree bit for bit);
- the first filtered search after opening (reads and sorts the descriptor columns) and the next;
- the vector index's preparation of a broad filter (live ids + hnswlib set), cold and kept.

    .venv/bin/python bench/bench_text_match.py [--db bench/.data/million-tags-1000000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import melodex
from melodex.library.filters import descriptor_filters
from melodex.library.text_index import FIELD_WEIGHTS

TEXTS = ["lonely jazz with a slow tempo", "dark folk with a slow tempo", "lonely reggae"]


def _ms(fn) -> tuple[float, object]:  # noqa: ANN001
    started = time.perf_counter()
    out = fn()
    return (time.perf_counter() - started) * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("bench/.data/million-tags-1000000"))
    args = parser.parse_args()
    lib = melodex.Library(args.db)
    print(f"{len(lib):,} tracks, load average {os.getloadavg()[0]:.1f}")
    text = lib._text_index()
    ms, _ = _ms(lambda: text._db.execute("SELECT count(*) FROM tracks").fetchone())
    print(f"count(*) of the text index: {ms:.0f} ms")
    weights = ", ".join(str(w) for w in FIELD_WEIGHTS)
    sql = (f"SELECT rowid, -bm25(fts, {weights}) AS s FROM fts WHERE fts MATCH ? "
           "ORDER BY s DESC, rowid LIMIT 100")  # fmt: skip
    for query in TEXTS:
        pieces = text._selective_pieces(query)
        n = sum(text._piece_count(p) for p in pieces)
        joined = " OR ".join(pieces)
        all_ms, _ = _ms(
            lambda j=joined: text._db.execute(sql[: sql.index(" LIMIT")], (j,)).fetchall()
        )
        sqlite_ms, want = _ms(lambda j=joined: text._db.execute(sql, (j,)).fetchall())
        first_ms, _ = _ms(lambda q=query: text.match(q, limit=100))
        kept_ms, got = _ms(lambda q=query: text.match(q, limit=100))
        same = got == [(int(i), float(s)) for i, s in want]
        print(f"{query!r}: {len(pieces)} pieces, {n:,} matches; SQLite OR query {all_ms:.0f} ms "
              f"(top 100: {sqlite_ms:.0f} ms); "
              f"summed pieces {first_ms:.0f} ms first, {kept_ms:.0f} ms kept; same top 100: {same}")  # fmt: skip
    filters = descriptor_filters(bpm="100-130", key="minor")
    assert filters is not None
    cold_ms, allowed = _ms(lambda: lib.store.filtered_ids(**filters))
    warm_ms, _ = _ms(lambda: lib.store.filtered_ids(**filters))
    print(f"filtered ids ({len(allowed):,}): {cold_ms:.0f} ms first, {warm_ms:.0f} ms next")
    index = lib._vector_index()
    allowed = np.asarray(allowed)
    cold_ms, live = _ms(lambda: index._filter_set(index._live_filter(allowed)))
    warm_ms, _ = _ms(lambda: index._filter_set(index._live_filter(allowed.copy())))
    print(f"vector index filter preparation: {cold_ms:.1f} ms first, {warm_ms:.1f} ms kept")


if __name__ == "__main__":
    main()
