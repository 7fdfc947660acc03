"""Who may talk to the server, checked before any route runs: Host, Origin, upload size, library.

An ASGI middleware (not a Starlette ``BaseHTTPMiddleware``), so it sees a request before its body
is read and can refuse it without reading the body at all:

- **Host allowlist** (DNS rebinding): a page on ``rebind.attacker.example`` whose name is made to
  resolve to 127.0.0.1 sends ``Host: rebind.attacker.example``; only loopback names, IP literals
  (a rebinding attack needs a name), the address the server is bound to, and the names given with
  ``--allow-host`` pass. ``*`` turns the check off.
- **Origin check** on state-changing requests (POST, PUT, PATCH, DELETE): a browser sends the
  page's origin; a cross-origin page (or ``Origin: null``) is refused, as is a request the browser
  marks ``Sec-Fetch-Site: cross-site``. Requests without an Origin (curl, scripts) pass.
- **Uploads** (``POST /api/describe``): a declared ``Content-Length`` over the limit is refused
  with 413 before a byte is read; at most ``max_heavy`` uploads are received at once (503 for
  the rest, before their bodies arrive); and a body that grows past the limit while streaming
  (chunked, or a lying Content-Length) is cut off at the limit.
- **A removed library**: a folder that held a library when the server started and is gone now
  answers 503 ``library_unavailable`` instead of an internal error.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from melodex.serve.errors import error_response

#: Names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths whose request body is an upload.
UPLOAD_PATHS = frozenset({"/api/describe"})
#: Room for the multipart envelope around an upload of the largest allowed size.
MULTIPART_SLACK = 64 * 1024
#: Shortest token accepted when the server listens beyond loopback (``serve --host``).
MIN_PUBLIC_TOKEN_LENGTH = 16


def split_host(value: str) -> str:
    """The host name of a Host header or URL authority, lower case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    host = split_host(host)
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """The Host names a request may carry: loopback names, IP literals, the bound host, extras."""

    def __init__(self, bind_host: str | None = None, allow: Iterable[str] = ()) -> None:
        extra = {split_host(h) for h in allow if h.strip()}
        self.any = "*" in extra
        self.names = set(LOOPBACK_NAMES) | (extra - {"*"})
        if bind_host and not is_ip_literal(split_host(bind_host)):
            self.names.add(split_host(bind_host))

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False  # HTTP/1.1 requires a Host; a request without one is not a browser's
        name = split_host(host)
        return is_ip_literal(name) or is_loopback(name) or name in self.names


def check_token_strength(token: str | None, *, public: bool) -> str | None:
    """Why ``token`` is too weak for a server reachable beyond this machine, or None."""
    if not public or token is None:
        return None
    if len(token) < MIN_PUBLIC_TOKEN_LENGTH:
        return (
            f"the token is {len(token)} characters; a server reachable from other machines needs "
            f"at least {MIN_PUBLIC_TOKEN_LENGTH} (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))')"
        )
    if len(set(token)) < 6:
        return "the token repeats too few characters to be hard to guess"
    return None


def read_token_file(path: str | Path) -> str:
    """The token in a file (first line, stripped), so it is not visible in ``ps``."""
    from melodex.errors import MelodexError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MelodexError(f"{path}: cannot read the token file: {exc}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise MelodexError(f"{path}: the token file is empty")
    return token


class SecurityMiddleware:
    """The checks above, in front of the whole app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: HostPolicy,
        max_upload_bytes: int,
        max_uploads: int,
        library_gone: Callable[[], bool] = lambda: False,
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.max_upload_bytes = max_upload_bytes
        self.body_limit = max_upload_bytes + MULTIPART_SLACK
        self.uploads = threading.BoundedSemaphore(max_uploads) if max_uploads > 0 else None
        self.max_uploads = max_uploads
        self.library_gone = library_gone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, code, message, extra = refusal
            await error_response(status, code, message, extra)(scope, receive, send)
            return
        if scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS:
            await self._upload(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(
        self, scope: Scope, headers: Headers
    ) -> tuple[int, str, str, dict[str, str] | None] | None:
        if not self.hosts.allows(headers.get("host")):
            return (
                403,
                "forbidden_host",
                "this server answers only requests addressed to it by an allowed name "
                "(loopback, its address, or one given with --allow-host)",
                None,
            )
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not self._origin_allowed(origin):
                return 403, "forbidden_origin", "cross-origin requests may not change state", None
            if headers.get("sec-fetch-site") == "cross-site":
                return 403, "forbidden_origin", "cross-site requests may not change state", None
        bad_id = _non_decimal_track_id(scope["path"])
        if bad_id is not None:
            return (
                422,
                "invalid_request",
                f"track ids are plain decimal digits, not {bad_id!r}",
                None,
            )
        if scope["path"].startswith("/api") and self.library_gone():
            return (
                503,
                "library_unavailable",
                "the library folder this server was started on is gone (removed or unmounted)",
                {"Retry-After": "5"},
            )
        return None

    def _origin_allowed(self, origin: str) -> bool:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        return bool(parts.netloc) and self.hosts.allows(parts.netloc)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.body_limit:
            await self._too_large(scope, receive, send)
            return
        if self.uploads is not None and not self.uploads.acquire(blocking=False):
            await error_response(
                503,
                "busy",
                f"the server is busy ({self.max_uploads} uploads running); retry shortly",
                {"Retry-After": "1"},
            )(scope, receive, send)
            return
        if self.uploads is None:
            await error_response(
                503, "busy", "this server takes no uploads now", {"Retry-After": "1"}
            )(scope, receive, send)
            return
        received = 0
        started = cut = False

        async def counted() -> Message:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.body_limit:  # stop reading: the app sees the client leave
                    cut = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if cut and not started:
                return  # the app's answer to a cut body is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not cut or started:
                raise
        finally:
            self.uploads.release()
        if cut and not started:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        n = self.max_upload_bytes
        size = f"{n // 2**20} MB" if n >= 2**20 else f"{n // 1024} KB"
        message = f"the upload is larger than {size}"
        response = error_response(413, "payload_too_large", message, {"Connection": "close"})
        await response(scope, receive, send)


_TRACK_PATH = re.compile(r"^/api/(?:similar|tracks)/([^/]+)")


def _non_decimal_track_id(path: str) -> str | None:
    """The id segment of a track URL when it is not plain ASCII digits (``1_000``, ``+5``,
    ``²``), which the int parser would otherwise read as a number; else None."""
    match = _TRACK_PATH.match(path)
    if match is None:
        return None
    segment = match.group(1)
    return None if segment.isascii() and segment.isdigit() else segment


def library_gone_check(path: object) -> Callable[[], bool]:
    """A check that the library folder ``path`` (present now) still exists; never true for a
    networked store or a folder that held no library at start."""
    if not isinstance(path, Path) or not path.is_dir():
        return lambda: False
    return lambda: not path.is_dir()


def under_roots(path: str | Path, roots: Iterable[str]) -> bool:
    """Whether ``path``, every link resolved, lies inside one of the indexed ``roots`` (also
    resolved). Without recorded roots (a library indexed before they were kept), only a path
    that passes through no symbolic link at all is accepted."""
    import os

    real = os.path.realpath(path)
    roots = list(roots)
    if not roots:
        return real == os.path.abspath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(os.path.join(base, "")):
            return True
    return False
