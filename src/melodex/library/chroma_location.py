"""Where a Chroma-backed library lives: ``chroma[+https]://HOST[:PORT]/COLLECTION``, parsed
with a clear error for every malformed part."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from melodex.errors import StoreError

SCHEMES = {"chroma": (False, 8000), "chroma+http": (False, 8000), "chroma+https": (True, 443)}
META_SUFFIX = "-melodex"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$")


@dataclass(frozen=True)
class ChromaLocation:
    """Where a Chroma-backed library lives: ``chroma[+https]://HOST[:PORT]/COLLECTION``."""

    host: str
    port: int
    collection: str
    ssl: bool = False

    @property
    def url(self) -> str:
        scheme = "chroma+https" if self.ssl else "chroma"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.collection}"

    @property
    def meta_collection(self) -> str:
        return self.collection + META_SUFFIX


def parse_location(location: str) -> ChromaLocation:
    """Parse a store URL, or raise StoreError saying what is wrong with it."""
    parts = urlsplit(location.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StoreError(f"{location}: not a Chroma URL (expected chroma://HOST:PORT/COLLECTION)")
    ssl, default_port = SCHEMES[scheme]
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise StoreError(f"{location}: bad port ({exc})") from None
    if not parts.hostname:
        raise StoreError(f"{location}: no host (expected chroma://HOST:PORT/COLLECTION)")
    name = parts.path.strip("/")
    if parts.query or parts.fragment or "/" in name:
        raise StoreError(f"{location}: expected chroma://HOST:PORT/COLLECTION and nothing more")
    if not name:
        raise StoreError(f"{location}: no collection name (chroma://HOST:PORT/COLLECTION)")
    if not _NAME.match(name) or not 3 <= len(name) <= 512 - len(META_SUFFIX):
        raise StoreError(
            f"{location}: bad collection name {name!r}: use 3-{512 - len(META_SUFFIX)} "
            "characters from a-z A-Z 0-9 . _ -, starting and ending with a letter or digit"
        )
    return ChromaLocation(parts.hostname, port, name, ssl)
