"""Text that cannot drive the terminal: control and escape characters shown as ``\\xNN``.

A file named ``x\\x1b]52;c;SGVsbG8=\\x1b\\\\.flac`` (an OSC 52 clipboard write) or a tag holding
SGR colours or a window-title sequence must print as those characters, not act on the terminal.
Two layers: :func:`escape_controls` on every name the CLI prints (newlines too, so a name
cannot fake a line), and :class:`SafeConsole`, whose output escapes any control character left
in printed text, whatever the command printed. JSON output is left exact (see
:func:`melodex.cli.common.json_text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.segment import Segment

# C0 (but newline, kept by the console: it is how lines end), DEL, C1, and the Unicode
# bidirectional overrides and isolates (which reorder what a name appears to say).
_CONSOLE_CONTROLS = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, escape and bidi-override character written as an escape
    (newlines kept with ``keep_newlines``: an error message listing several problems)."""
    return (_CONSOLE_CONTROLS if keep_newlines else _NAME_CONTROLS).sub(_escaped, text)


class SafeConsole(Console):
    """A rich console that never writes a control character it was given as text.

    Rich's own styles are applied after this step, so colours and tables still work; only
    characters that arrived inside printed strings are escaped.

    Its width follows ``COLUMNS`` at each print, not at creation: rich fixes the width it finds
    in ``COLUMNS`` when the console is made, and the CLI's consoles are made once, at import."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("width") is None:
            self._width = None  # rich's size property then reads COLUMNS (or the terminal) live

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        safe = (
            seg
            if seg.control or not _CONSOLE_CONTROLS.search(seg.text)
            else Segment(_CONSOLE_CONTROLS.sub(_escaped, seg.text), seg.style, seg.control)
            for seg in buffer
        )
        return super()._render_buffer(safe)
