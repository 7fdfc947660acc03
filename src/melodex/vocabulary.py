"""Built-in texts that ``describe`` ranks against a track: tags and short phrases.

The list is broader than what the default taggers learned (e.g. "banjo"): the joint space
still places such texts near related concepts, and trained models can use them fully.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def describe_vocabulary() -> list[str]:
    """Unique, non-empty lines of vocab/describe.txt (comments start with #)."""
    text = (resources.files("melodex") / "vocab" / "describe.txt").read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return list(dict.fromkeys(line for line in lines if line))
