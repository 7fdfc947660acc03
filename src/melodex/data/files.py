"""Reading dataset files safely: UTF-8 checked line by line, errors that name file and line.

Shared by the loaders and by the readers of single release files (AcousticBrainz documents,
plain-data pickles). A malformed file raises `DatasetFormatError` (a `MelodexError`) saying
``path:line: problem``; a byte that is not UTF-8 is such an error, never a raw
``UnicodeDecodeError``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from melodex.errors import DatasetFormatError

__all__ = [
    "DatasetFormatError",
    "bad_row",
    "read_json_file",
    "read_json_lines",
    "read_lines",
    "read_table",
    "read_text",
    "text_lines",
]


def bad_row(path: Path, line: int | None, problem: str) -> DatasetFormatError:
    where = f"{path}:{line}" if line is not None else str(path)
    return DatasetFormatError(f"{where}: {problem}")


def _decode_line(raw: bytes, path: Path, number: int) -> str:
    """One line of a text file as UTF-8 (a BOM may open the file), or `DatasetFormatError`
    naming the file, the line and the byte."""
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start : exc.start + 1].hex()
        raise bad_row(
            path,
            number,
            f"not UTF-8 text (byte 0x{byte} at column {exc.start + 1}); re-encode the file "
            "as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from None


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line with its end)`` of a UTF-8 text file, decoded line by line, so a
    bad byte is reported with its line (`DatasetFormatError`) instead of escaping as a
    ``UnicodeDecodeError``."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            yield number, _decode_line(raw, path, number)


def read_text(path: Path) -> str:
    """A whole UTF-8 text file (for JSON documents); a bad byte is a `DatasetFormatError`
    naming the line."""
    return "".join(line for _, line in text_lines(path))


def read_json_file(path: Path) -> Any:
    """A JSON document; bad bytes and bad JSON are `DatasetFormatError` with the line.

    Bare ``NaN`` (what ``json.dump`` writes for a missing pandas value, as in MSD-eCALS's
    annotation.json) is read as None."""
    text = read_text(path)
    try:
        return json.loads(text, parse_constant=lambda _: None)
    except json.JSONDecodeError as exc:
        raise bad_row(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise bad_row(path, None, "invalid JSON (nested too deeply)") from None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, stripped line)`` of a list file, blank lines skipped."""
    for number, line in text_lines(path):
        if line.strip():
            yield number, line.strip()


def read_table(
    path: Path, *, delimiter: str = ",", required: Sequence[str] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` of a delimited file with a one-row header.

    Blank lines are skipped; a row with the wrong number of fields, a missing required column
    or a byte that is not UTF-8 raises `DatasetFormatError` naming the file and the line (the
    line a row starts on; quoted fields may span lines).
    """
    physical = [0]

    def lines() -> Iterator[str]:
        for number, line in text_lines(path):
            physical[0] = number
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise bad_row(path, 1, "empty file, expected a header row") from None
    except csv.Error as exc:
        raise bad_row(path, physical[0], f"unreadable CSV ({exc})") from None
    missing = [name for name in required if name not in header]
    if missing:
        raise bad_row(path, 1, f"missing column(s) {missing} (header starts {header[:8]})")
    start = physical[0] + 1
    try:
        for row in reader:
            line, start = start, physical[0] + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise bad_row(path, line, f"expected {len(header)} fields, got {len(row)}")
            yield line, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise bad_row(path, physical[0], f"unreadable CSV ({exc})") from None


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` of a file with one JSON object per line."""
    for number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise bad_row(path, number, f"invalid JSON ({exc.msg})") from None
        except RecursionError:
            raise bad_row(path, number, "invalid JSON (nested too deeply)") from None
        if not isinstance(obj, dict):
            raise bad_row(path, number, f"expected a JSON object, got {type(obj).__name__}")
        yield number, obj
