"""GTZAN (Tzanetakis & Cook, 2002): 1,000 thirty-second excerpts, 100 in each of ten genres.

Files expected: ``<genres folder>/<genre>/<genre>.000NN.<ext>`` (``.au`` in the original
release, ``.wav`` in later copies), the genres folder being ``audio_root`` if given, else the
first of ``root/genres``, ``root/genres_original``, ``root/Data/genres_original`` that exists,
else ``root``. Files whose name does not start with their folder's genre are skipped with a
warning. There is no metadata file: the folder is the index.

Texts: the genre only, as the tag and the tag text. GTZAN has no captions and none are made up.

Split:

- the fault-filtered split (Kereliuk, Sturm & Larsen, 2015) when its files are found: the
  ``split_dir`` option, else ``root``, holding ``train_filtered.txt``, ``valid_filtered.txt``,
  ``test_filtered.txt``, one file a line (``blues/blues.00029.wav`` in the real lists; matched
  by file name without extension, so ``.au`` / ``.wav`` audio both work). Excerpts in none of the lists (the faulty ones:
  repetitions, distortions, mislabelings) are left out; listed excerpts absent from the folder
  are reported as missing audio.
- otherwise a seeded hash split of the file name (``seed``, ``fractions`` default 80/10/10),
  with a warning: GTZAN names no artists, so this split is "artist-free" -- excerpts of one
  artist (and GTZAN's duplicated excerpts) can land in different splits and inflate scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from melodex.data.loaders._common import (
    AUDIO_EXTS,
    DEFAULT_FRACTIONS,
    DatasetFormatError,
    LoadResult,
    first_existing,
    hash_split,
    keep_present,
    make_item,
    read_lines,
)

NAME = "gtzan"
SPLIT_FILES = {"train": "train_filtered.txt", "valid": "valid_filtered.txt"}
SPLIT_FILES["test"] = "test_filtered.txt"


def read_split_files(folder: Path) -> dict[str, str] | None:
    """``{file stem: split}`` from the fault-filtered lists, None when they are absent."""
    paths = {split: folder / name for split, name in SPLIT_FILES.items()}
    if not any(p.is_file() for p in paths.values()):
        return None
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DatasetFormatError(f"incomplete GTZAN split files, missing: {missing}")
    out: dict[str, str] = {}
    for split, path in paths.items():
        for number, line in read_lines(path):
            stem = Path(line).stem
            genre = stem.split(".")[0]
            if "." not in stem or not genre:
                raise DatasetFormatError(f"{path}:{number}: expected <genre>/<genre>.000NN.<ext>")
            if out.setdefault(stem, split) != split:
                raise DatasetFormatError(f"{path}:{number}: {stem} is also in {out[stem]}")
    return out


def load(
    root: Path,
    *,
    audio_root: Path | None = None,
    split_dir: Path | None = None,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    genres_dir = (
        Path(audio_root)
        if audio_root
        else first_existing(
            root / "genres", root / "genres_original", root / "Data" / "genres_original"
        )
        or root
    )
    if not genres_dir.is_dir():
        raise DatasetFormatError(f"GTZAN genres folder not found: {genres_dir}")

    found: dict[str, Path] = {}
    odd = []
    for folder in sorted(p for p in genres_dir.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in AUDIO_EXTS:
                continue
            if not path.name.startswith(f"{folder.name}."):
                odd.append(str(path))
                continue
            found.setdefault(path.stem, path)
    if odd:
        result.warnings.append(f"{len(odd)} file(s) not named <genre>.NNNNN skipped: {odd[:3]}")

    splits = read_split_files(Path(split_dir) if split_dir else root)
    if splits is None:
        if split_dir:
            raise DatasetFormatError(
                f"no GTZAN split files ({list(SPLIT_FILES.values())}) in {split_dir}"
            )
        result.warnings.append(
            f"no fault-filtered split files: seeded hash split (seed={seed}), which ignores artists"
        )
        splits = {stem: hash_split(stem, seed=seed, fractions=fractions) for stem in found}
    else:
        left_out = sorted(set(found) - set(splits))
        if left_out:
            result.warnings.append(
                f"{len(left_out)} excerpt(s) outside the fault-filtered split left out"
            )

    items = []
    for stem, split in splits.items():
        genre = stem.split(".")[0]
        items.append(
            make_item(
                id=f"gtzan:{stem}",
                audio=found.get(stem, genres_dir / genre / f"{stem}.wav"),
                split=split,
                tags=[genre],
                extra={"genre": genre},
                source=NAME,
            )
        )
    keep_present(result, items)
    return result
