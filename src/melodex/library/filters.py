"""Metadata filters (artist, album, genre, year, folder, duration) and negated query terms.

Why here and not in the store: the filters are answered by the text index beside the store
(:mod:`melodex.library.text_index`), which holds the year and the folder that the store's
columns lack; parsing lives apart so the CLI, the Python API and the HTTP API accept the same
spellings and fail with the same messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from melodex.errors import MelodexError, ParameterError

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$"
)
_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")
_NEGATION = re.compile(r"""(?i)(?:^|(?<=\s))(?:no|not|without)\s+("[^"]+"|'[^']+'|[^\s,;]+)""")


@dataclass(frozen=True)
class TrackFilter:
    """What a track's metadata must satisfy (every field given must hold).

    ``artist``/``album``/``genre``: a case-insensitive part of the tag; ``folder``: an absolute
    folder (the track lies below it) or a part of the track's folder path; ``year`` and
    ``duration`` (seconds): inclusive ranges, either end open.
    """

    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    year: tuple[int | None, int | None] | None = None
    folder: str | None = None
    duration: tuple[float | None, float | None] | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def make_filter(
    *,
    artist: str | None = None,
    album: str | None = None,
    genre: str | None = None,
    year: str | int | None = None,
    folder: str | None = None,
    duration: str | float | None = None,
) -> TrackFilter:
    """A :class:`TrackFilter` from the strings a user types (``year="1990-1999"``,
    ``duration="2m-5m"``); raises :class:`ParameterError` naming a bad value."""
    texts = {}
    for name, value in (("artist", artist), ("album", album), ("genre", genre), ("folder", folder)):
        if value is not None:
            if not str(value).strip():
                raise ParameterError(f"--{name}: empty text")
            texts[name] = str(value).strip()
    return TrackFilter(
        **texts,
        year=None if year is None else parse_year_range(str(year)),
        duration=None if duration is None else parse_duration_range(str(duration)),
    )


def _split_range(text: str, what: str) -> tuple[str | None, str | None]:
    """``"A-B"`` -> (A, B), ``"A-"`` -> (A, None), ``"-B"`` -> (None, B), ``"A"`` -> (A, A)."""
    if text.count("-") > 1 or not text.strip() or text.strip() == "-":
        raise ParameterError(f"{what} {text!r}: expected a value or a range like A-B, A- or -B")
    if "-" not in text:
        return text.strip(), text.strip()
    lo, hi = (part.strip() or None for part in text.split("-"))
    return lo, hi


def parse_year_range(text: str) -> tuple[int | None, int | None]:
    """``"1995"``, ``"1990-1999"``, ``"1990-"``, ``"-1999"`` -> (low, high), ends inclusive."""
    lo, hi = _split_range(text, "--year")
    try:
        low, high = (None if v is None else int(v) for v in (lo, hi))
    except ValueError:
        raise ParameterError(f"--year {text!r}: years are whole numbers (1990-1999)") from None
    if low is not None and high is not None and low > high:
        raise ParameterError(f"--year {text!r}: the range is empty ({low} > {high})")
    return low, high


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"2m"``, ``"2m30s"``, ``"1h5m"`` or ``"3:30"``."""
    value = text.strip().lower()
    clock = _CLOCK.match(value)
    if clock:
        return float(clock["h"] or 0) * 3600 + float(clock["m"]) * 60 + float(clock["s"])
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise ParameterError(f"duration {text!r}: expected e.g. 90, 90s, 2m, 2m30s, 1h or 3:30")
    return sum(float(match[u] or 0) * f for u, f in (("h", 3600), ("m", 60), ("s", 1)))


def parse_duration_range(text: str) -> tuple[float | None, float | None]:
    """``"2m-5m"``, ``"3:00-"``, ``"-90"`` -> (low, high) seconds; one value means at least
    that long (``"45m"`` for a playlist length is read by :func:`parse_duration`)."""
    lo, hi = _split_range(text, "--duration")
    low, high = (None if v is None else parse_duration(v) for v in (lo, hi))
    if "-" not in text:
        high = None  # "--duration 2m": two minutes or longer
    if low is not None and high is not None and low > high:
        raise ParameterError(f"--duration {text!r}: the range is empty ({low:g} s > {high:g} s)")
    return low, high


def split_negations(query: str) -> tuple[str, list[str]]:
    """``"piano no vocals"`` -> ``("piano", ["vocals"])``: the query without its "no X",
    "not X" and "without X" parts, and the X's (a quoted X may hold several words)."""
    terms = [m.group(1).strip("\"'") for m in _NEGATION.finditer(query)]
    rest = " ".join(_NEGATION.sub(" ", query).split())
    return rest, [t for t in terms if t.strip()]


def check_text(text: str) -> None:
    """Refuse a query holding bytes that are not UTF-8 (a shell passes ``$'\\xff'`` through as a
    lone surrogate, which no text encoder can take), naming the first such byte."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        try:
            what = f"byte 0x{char.encode('utf-8', 'surrogateescape').hex()}"
        except UnicodeEncodeError:
            what = f"lone surrogate U+{ord(char):04X}"
        raise ParameterError(
            f"search text is not valid UTF-8 ({what} at position {exc.start}); "
            "check the terminal's encoding"
        ) from None


def descriptor_filters(*, bpm: str | None, key: str | None) -> dict[str, Any] | None:
    """Parsed ``bpm``/``key`` filters as store keyword arguments (None: no filter)."""
    if bpm is None and key is None:
        return None
    from melodex.descriptors import parse_bpm_range, parse_key_filter

    try:
        bpm_range = parse_bpm_range(bpm) if bpm is not None else None
        key_filter = parse_key_filter(key) if key is not None else None
    except ValueError as exc:
        raise MelodexError(str(exc)) from exc
    return {"bpm": bpm_range, "key": key_filter}
