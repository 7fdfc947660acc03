"""Find the audio files below a folder without leaving it (unless told to follow links).

Why its own module: which files a run sees is a security boundary (``ln -s / music/root`` once
walked the whole file system), kept apart from what the indexer does with them.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from melodex.audio import SUPPORTED_EXTENSIONS
from melodex.errors import MelodexError

__all__ = ["Scan", "scan_folder", "walk_folder"]

#: Pseudo file systems a followed link must never lead into (other processes' files, devices).
_SYSTEM_TREES = ("/proc", "/sys", "/dev", "/run")


@dataclass
class Scan:
    """What a walk found: audio files, unreadable paths, and the linked folders it followed."""

    files: list[str]
    problems: list[tuple[str, str]]
    followed: list[str] = field(default_factory=list)


def scan_folder(
    folder: str | Path, *, follow_symlinks: bool = False
) -> tuple[list[str], list[tuple[str, str]]]:
    """Audio files below ``folder`` (absolute, sorted) and the paths that could not be read."""
    found = walk_folder(folder, follow_symlinks=follow_symlinks)
    return found.files, found.problems


def walk_folder(
    folder: str | Path,
    *,
    follow_symlinks: bool = False,
    extensions: frozenset[str] | set[str] | None = None,
) -> Scan:
    """Walk ``folder`` without leaving it, unless ``follow_symlinks`` says otherwise.

    By default the walk stays inside the folder: a symbolic link to a folder is not entered
    (``ln -s / music/root`` indexes nothing outside ``music``), and a link to a file is indexed
    only when the file it resolves to is inside the folder too (else it is reported). With
    ``follow_symlinks`` linked folders are entered, each real folder once (loops are cut), never
    into a folder that contains the root (that would walk the root's whole parent) nor into
    /proc, /sys, /dev or /run. The walk keeps its own stack instead of recursing, so no folder
    depth can overflow it. ``extensions`` (lower case, with the dot) picks other files than
    audio (the CUE sheets).
    """
    wanted = SUPPORTED_EXTENSIONS if extensions is None else extensions
    root = Path(os.path.expanduser(folder))  # pathlib raises on an unknown ~user
    if not root.exists():
        raise MelodexError(f"{root}: no such folder")
    if not root.is_dir():
        raise MelodexError(f"{root}: not a folder")
    scan = Scan([], [])
    real_root = os.path.realpath(root)
    allowed = [real_root]  # real folders whose files are inside the walk
    seen_dirs: set[tuple[int, int]] = set()
    stack = [os.path.abspath(root)]
    while stack:
        dirpath = stack.pop()
        try:
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(dirpath) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            scan.problems.append((dirpath, f"cannot read folder: {exc.strerror or exc}"))
            continue
        subdirs = []
        for entry in listed:
            try:
                is_dir = entry.is_dir()  # follows symlinks
                is_link = entry.is_symlink()
            except OSError:
                is_dir, is_link = False, False
            if is_dir:
                if not is_link:
                    subdirs.append(entry.path)
                elif follow_symlinks and _may_follow(entry.path, real_root):
                    subdirs.append(entry.path)
                    scan.followed.append(os.path.realpath(entry.path))
                    allowed.append(scan.followed[-1])
                continue
            if os.path.splitext(entry.name)[1].lower() not in wanted:
                continue
            try:
                os.stat(entry.path)
            except OSError as exc:
                scan.problems.append((entry.path, _unreachable(entry.path, exc)))
                continue
            if is_link and not follow_symlinks and not _inside(entry.path, allowed):
                scan.problems.append((entry.path, _outside(entry.path)))
                continue
            scan.files.append(entry.path)
        stack.extend(reversed(subdirs))  # depth first, in name order
    scan.files = sorted(set(scan.files))
    return scan


def _inside(path: str, folders: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == f or real.startswith(os.path.join(f, "")) for f in folders)


def _may_follow(link: str, real_root: str) -> bool:
    """Whether a linked folder may be walked: not an ancestor of the root, not a system tree."""
    target = os.path.realpath(link)
    if real_root == target or real_root.startswith(os.path.join(target, "")):
        return False  # the root itself or a folder above it: the walk would escape upward
    try:  # the link as written too: /proc/self/cwd resolves to a real folder
        written = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
    except OSError:
        written = target
    return not any(
        p == t or p.startswith(t + "/") for t in _SYSTEM_TREES for p in (target, written)
    )


def _outside(path: str) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return (
        f"symbolic link to a file outside the folder ({target}); not followed "
        "(index with --follow-symlinks to include it)"
    )


def _unreachable(path: str, exc: OSError) -> str:
    """Why a listed name cannot be opened: a broken or looping link, or the OS's reason."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if os.path.islink(path) and exc.errno == errno.ENOENT:
        with contextlib.suppress(OSError):
            return f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
        return "broken symbolic link"
    return f"cannot read file: {exc.strerror or exc}"
