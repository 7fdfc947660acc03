"""Explicit tag vocabularies: the papers' named lists, or a file of one's own.

A tag list fixes which tags a tag-retrieval evaluation (or a loader's tag filter) uses, instead
of letting the data pick its most frequent ones. Named lists ship with melodex, each derived from
a public file (``melodex/data/taglists/README.md`` gives source, commit and licence):

- ``ttmr-50``: the 50 tags of TTMR's tag-retrieval table (MSD-eCALS);
- ``ttmr-1054``: all 1,054 MSD-eCALS tags, in the release's order;
- ``mtt-top50``: the MagnaTagATune top-50 of the common "pub" split (Lee et al., Won et al.).

A file is a ``.txt`` (one tag a line; blank lines and ``#`` comments skipped), a ``.json``
(a list of strings, such as MSD-eCALS's ``ecals_tags.json``) or a ``.npy`` array of strings
(Won et al.'s ``tags.npy``; read without pickle). Tags are lower-cased with their
whitespace collapsed, as the loaders write tags; order is kept and duplicates are an error.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from melodex.data.files import DatasetFormatError, read_json_file, read_lines

__all__ = ["NAMED_TAG_LISTS", "read_tag_list"]

NAMED_TAG_LISTS = ("ttmr-50", "ttmr-1054", "mtt-top50")


def _clean(tag: str) -> str:
    return " ".join(tag.lower().split())


def read_tag_list(spec: str | Path) -> list[str]:
    """The tags of a named list (`NAMED_TAG_LISTS`) or of a file; raises `DatasetFormatError`
    naming the list or file when it is unknown, empty, or repeats a tag."""
    name = str(spec)
    if name in NAMED_TAG_LISTS:
        text = (resources.files("melodex.data") / "taglists" / f"{name}.txt").read_text("utf-8")
        tags = [_clean(t) for t in text.splitlines() if t.strip()]
        where = f"tag list {name!r}"
    else:
        path = Path(spec)
        if not path.is_file():
            raise DatasetFormatError(
                f"tag list {name!r} is neither a named list ({', '.join(NAMED_TAG_LISTS)}) "
                "nor a file"
            )
        where = str(path)
        if path.suffix.lower() == ".npy":
            import numpy as np

            try:
                data = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise DatasetFormatError(f"{path}: not a NumPy array of strings ({exc})") from None
            if data.dtype.kind != "U" or data.ndim != 1:
                raise DatasetFormatError(f"{path}: expected a 1-D array of strings")
            tags = [_clean(str(t)) for t in data if str(t).strip()]
        elif path.suffix.lower() == ".json":
            data = read_json_file(path)
            if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
                raise DatasetFormatError(f"{path}: expected a JSON list of tag strings")
            tags = [_clean(t) for t in data if t.strip()]
        else:
            tags = [_clean(t) for _, t in read_lines(path) if not t.startswith("#")]
    if not tags:
        raise DatasetFormatError(f"{where} holds no tag")
    seen: set[str] = set()
    repeated = [t for t in tags if t in seen or seen.add(t)]  # type: ignore[func-returns-value]
    if repeated:
        raise DatasetFormatError(f"{where} repeats tag(s) {sorted(set(repeated))[:5]}")
    return tags
