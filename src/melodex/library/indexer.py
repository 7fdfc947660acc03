"""Index a music folder into a store: incremental, kill-safe, with decoding overlapped.

Rules (documented in the README):
- a file is skipped when its path, size and modification time match the store;
- a changed file is re-embedded, unless its content hash is unchanged (then only its
  size/mtime are refreshed); a file moved within the folder keeps its vectors (matched by
  content hash, one gone file per move: the one whose size and mtime it kept) instead of
  being embedded again;
- files that disappeared from the folder are removed from the store;
- rows are committed in batches, each one atomic, so a killed run loses at most the batch
  in flight and the next run resumes from what was committed;
- the walk stays inside the folder (melodex.library.walk; links are followed only on request);
- a file that cannot be decoded is reported with the reason and never stops the run; a store
  that cannot take a write (a full disk) stops it with a StoreError, keeping every commit before;
- a long file (over 20 min where libsndfile seeks, over 3 h otherwise) is embedded from the
  windows the model uses, each decoded by seeking, at their real times in the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodex.audio import (
    MAX_DURATION_S,
    AudioInfo,
    load_audio,
    probe,
    read_tags,
    select_windows,
)
from melodex.audio.formats import _PYAV_FIRST_EXTENSIONS, _SOUNDFILE_EXTENSIONS, check_header
from melodex.errors import AudioDecodeError, MelodexError, StoreError, bad_value
from melodex.library.store import DESCRIPTOR_COLUMNS, FileState, Store, TrackRow, track_id
from melodex.library.walk import scan_folder as scan_folder  # re-exported: callers import it here
from melodex.library.walk import walk_folder
from melodex.models import AudioEmbedding, JointModel
from melodex.progress import EventFn, ProgressFn


@dataclass
class IndexReport:
    """What one run did, for the summary line and for tests."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    skipped: int = 0
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)  # linked folders walked (--follow-symlinks)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass
class _Decoded:
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    tags: dict[str, str]
    samples: np.ndarray | None = None
    error: str | None = None
    descriptors: dict[str, Any] | None = None
    info: AudioInfo | None = None  # set for a long file, read window by window when embedded


def bind_model(store: Store, model: JointModel) -> None:
    """Record (or check) the model in the store, with where it loads from and its licence."""
    store.bind_model(
        model.identity,
        model.config.name,
        model.dim,
        source=getattr(model, "source", None),
        licence=getattr(model, "licence", None),
    )


def file_hash(path: str) -> str:
    """Content hash (BLAKE2b-128 of the bytes): detects moved and touched-but-same files."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _describe(samples: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Tempo, key, mode and loudness (melodex.descriptors) as store columns."""
    from melodex.descriptors import describe_signal

    d = describe_signal(samples, sr=sample_rate)
    return {
        "bpm": d.bpm,
        "bpm_confidence": d.bpm_confidence,
        "key": d.key,
        "mode": d.mode,
        "key_confidence": d.key_confidence,
        "loudness_lufs": d.loudness_lufs,
    }


def _decode(
    path: str, sample_rate: int, describe: bool = False, *, long_seconds: float | None = None
) -> _Decoded:
    """Tags, samples and hash of one file; failures become ``item.error``, never exceptions.

    The header is checked first and the content hashed last, once the file has decoded: a
    20 GB file of junk is refused from its first bytes or its decoder's failure, never read
    whole. A file longer than ``long_seconds`` (default: :func:`long_file_seconds`) is not
    decoded here: ``item.info`` is set and :func:`embed_item` reads only the windows the model
    uses.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the hash forever
            return _Decoded(path, 0, 0, "", {}, error=f"not a regular file ({_kind(st.st_mode)})")
        check_header(path)
    except AudioDecodeError as exc:
        return _Decoded(path, st.st_size, st.st_mtime_ns, "", {}, error=exc.reason)
    except OSError as exc:
        return _Decoded(path, 0, 0, "", {}, error=f"cannot read file: {exc.strerror or exc}")
    item = _Decoded(path, st.st_size, st.st_mtime_ns, "", {})
    try:
        item.tags = read_tags(path)
        info = _long_file_info(path, long_seconds)
        if info is not None:
            item.info = info
            if describe:  # tempo and key of a contiguous excerpt from the middle
                mid = max(0.0, info.duration / 2 - DESCRIBE_EXCERPT_S / 2)
                excerpt = load_audio(path, sr=sample_rate, offset=mid, duration=DESCRIBE_EXCERPT_S)
                item.descriptors = _describe(excerpt, sample_rate)
        else:
            item.samples = load_audio(path, sr=sample_rate)
            if describe:  # in the decode thread, beside the model's work
                item.descriptors = _describe(item.samples, sample_rate)
        item.content_hash = file_hash(path)
    except AudioDecodeError as exc:
        item.error = exc.reason
    except MemoryError:
        item.error = "file too large to decode in memory"
    except OSError as exc:
        item.error = f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # a decoder bug must cost one file, never the run
        item.error = f"cannot decode: {type(exc).__name__}: {exc}"
    if item.error is not None:
        item.samples = None
    return item


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a file"


#: Files longer than this (s) are read window by window where libsndfile seeks directly.
LONG_FILE_SECONDS = 20 * 60.0
#: Windows taken from a long file when the model's config keeps every window (max_windows None).
LONG_FILE_MAX_WINDOWS = 64
#: How many of a track's windows indexing embeds: "sampled", the model's ``max_windows`` spread
#: evenly (8 for the default model); "full", every window (long files: LONG_FILE_MAX_WINDOWS).
COVERAGES = ("sampled", "full")
#: Seconds of a long file's middle that tempo/key/loudness descriptors are measured on.
DESCRIBE_EXCERPT_S = 120.0
# libsndfile seeks these formats without decoding what precedes the offset; FFmpeg-only
# formats are decoded from the start for every offset, so for them windowed reading only
# pays (in memory, not time) beyond what one decode call accepts (audio.MAX_DURATION_S).
_SEEKABLE = _SOUNDFILE_EXTENSIONS - _PYAV_FIRST_EXTENSIONS


def long_file_seconds(path: str) -> float:
    """Duration above which ``path`` is read window by window instead of whole."""
    seekable = os.path.splitext(path)[1].lower() in _SEEKABLE
    return LONG_FILE_SECONDS if seekable else MAX_DURATION_S


def _long_file_info(path: str, long_seconds: float | None) -> AudioInfo | None:
    """The probed header of a file too long to decode whole, else None."""
    try:
        info = probe(path)
    except AudioDecodeError:
        return None  # load_audio will report the cause
    limit = long_file_seconds(path) if long_seconds is None else long_seconds
    return info if info.duration > limit else None


def window_count(n_samples: int, window: int) -> int:
    """How many windows :func:`melodex.audio.frame_windows` cuts from ``n_samples`` samples."""
    if n_samples <= 0:
        return 0
    if n_samples < window:
        return 1
    n_full = n_samples // window
    held = n_samples - n_full * window
    return n_full + (2 * held >= window)


def check_coverage(coverage: str) -> str:
    if coverage not in COVERAGES:
        raise bad_value("coverage", coverage, " or ".join(COVERAGES))
    return coverage


def full_window_count(model: JointModel, path: str, duration: float) -> int:
    """How many windows full coverage embeds for a file of ``duration`` seconds; one sample
    short of the stored (float32) duration, so a rounding never asks for a window too many."""
    sr = model.config.sample_rate
    window = round(model.config.window_seconds * sr)
    n = window_count(max(0, int(duration * sr) - 1), window)
    return min(n, LONG_FILE_MAX_WINDOWS) if duration > long_file_seconds(path) else n


def undercovered(model: JointModel, state: FileState | None) -> bool:
    """Whether a stored row holds fewer windows than full coverage embeds (rows stored without
    windows, ``keep_windows=False``, cannot tell and count as covered)."""
    return state is not None and 0 < state.windows < full_window_count(
        model, state.path, state.duration
    )


def embed_long_file(
    model: JointModel, path: str, duration: float, *, coverage: str = "sampled"
) -> AudioEmbedding:
    """Embed a long file from the windows the model would pick, each decoded by seeking.

    The result matches ``model.embed_waveform(load_audio(path))``: the same windows (counted
    from the header's ``duration``, chosen by :func:`melodex.audio.select_windows`), their
    real start times, and the real duration; only the decoding differs (each window is
    resampled on its own, so resampled files differ at window edges by the filter's ripple).
    """
    sr = model.config.sample_rate
    window = round(model.config.window_seconds * sr)
    sampled = model.config.max_windows if coverage == "sampled" else None
    limit = sampled or LONG_FILE_MAX_WINDOWS
    chosen = select_windows(window_count(round(duration * sr), window), max_windows=limit)
    audio = np.zeros(len(chosen) * window, np.float32)
    for k, i in enumerate(chosen):
        start = float(i * window / sr)
        try:
            y = load_audio(path, sr=sr, offset=start, duration=window / sr)
        except AudioDecodeError as exc:
            raise MelodexError(f"cannot decode the window at {start:.1f} s: {exc.reason}") from exc
        audio[k * window : k * window + min(len(y), window)] = y[:window]
    emb = model.embed_waveform(audio, max_windows=None)
    starts = (chosen * window / sr).astype(np.float32)
    return dataclasses.replace(emb, window_starts=starts, duration=float(duration))


def _embed(model: JointModel, item: _Decoded, coverage: str = "sampled") -> AudioEmbedding:
    """The embedding of a decoded file, or of a long one read window by window."""
    if item.samples is not None:
        return model.embed_waveform(
            item.samples, max_windows="config" if coverage == "sampled" else None
        )
    if item.info is not None:
        return embed_long_file(model, item.path, item.info.duration, coverage=coverage)
    raise MelodexError(f"{item.path}: nothing decoded to embed")


def _prefetch(
    paths: list[str], sample_rate: int, workers: int, depth: int, describe: bool
) -> Iterator[_Decoded]:
    """Decode ahead in threads (decoders release the GIL) while the caller embeds."""
    with ThreadPoolExecutor(
        max_workers=max(1, workers), thread_name_prefix="melodex-decode"
    ) as pool:
        queue: deque[Future[_Decoded]] = deque()
        it = iter(paths)
        for path in it:
            queue.append(pool.submit(_decode, path, sample_rate, describe))
            if len(queue) >= depth:
                break
        while queue:
            item = queue.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                queue.append(pool.submit(_decode, nxt, sample_rate, describe))
            yield item


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Give the model ``n`` threads for the run (the decoder thread takes the other core).

    A model that does not use torch has not imported it: then there is nothing to set."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _default_model_threads() -> int:
    """One core for decoding ahead, the rest for the model (1 on a 2-core laptop)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass
class IndexPlan:
    """What a run must do, worked out from the folder and the store before any decoding."""

    todo: list[str]
    known: dict[str, FileState]
    gone_by_hash: dict[str, list[FileState]]  # stored files no longer found, by content
    model: JointModel | None = None  # set with coverage "full": stored rows are judged by it
    undercovered_hashes: set[str] = field(default_factory=set)

    @property
    def reusable_hashes(self) -> set[str]:
        """Content hashes whose vectors are already stored (unchanged or moved files), less
        those stored with fewer windows than a full-coverage run embeds."""
        stored = {s.content_hash for s in self.known.values()} | set(self.gone_by_hash)
        return stored - self.undercovered_hashes

    def moved_from(self, content_hash: str, size: int, mtime_ns: int) -> FileState | None:
        """The gone file a new path is a move of, or None; taken off the gone list.

        Decided per file, not per content: several gone files can share one content (copies),
        and a move takes exactly one of them, the one whose size and modification time the new
        path kept (a rename keeps both), else the first. The others stay gone, so they are
        removed: two identical files, one renamed and one deleted, give one move and one
        removal."""
        states = self.gone_by_hash.get(content_hash)
        if not states:
            return None
        same = [i for i, s in enumerate(states) if (s.size, s.mtime_ns) == (size, mtime_ns)]
        chosen = states.pop(same[0] if same else 0)
        if not states:
            del self.gone_by_hash[content_hash]
        return chosen

    def still_gone(self) -> list[FileState]:
        return [s for states in self.gone_by_hash.values() for s in states]


def plan_index(
    store: Store,
    folder: str | Path,
    report: IndexReport,
    *,
    descriptors: bool = False,
    follow_symlinks: bool = False,
    model: JointModel | None = None,
    coverage: str = "sampled",
) -> IndexPlan:
    """Scan ``folder`` and compare it with the store: files to (re-)embed, files gone.

    With ``coverage="full"`` (``model`` given), unchanged files stored with fewer windows than
    full coverage embeds are embedded again; with "sampled", rows with more windows stay."""
    check_coverage(coverage)
    full = coverage == "full"
    if full and model is None:
        raise MelodexError("coverage 'full' needs the model to count a file's windows")
    scan = walk_folder(folder, follow_symlinks=follow_symlinks)
    paths = scan.files
    report.failed.extend(scan.problems)
    report.followed.extend(scan.followed)
    known = store.file_states(windows=True) if full else store.file_states()
    thin = {s.content_hash for s in known.values() if full and undercovered(model, s)}
    root = os.path.join(os.path.abspath(os.path.expanduser(folder)), "")
    present = set(paths)
    gone = [s for p, s in known.items() if p.startswith(root) and p not in present]
    todo: list[str] = []
    for path in paths:
        state = known.get(path)
        try:
            st = os.stat(path)
        except OSError as exc:
            report.failed.append((path, f"cannot read file: {exc.strerror}"))
            continue
        unchanged = state and state.size == st.st_size and state.mtime_ns == st.st_mtime_ns
        covered = not (full and undercovered(model, state))
        if unchanged and covered and (state.has_descriptors or not descriptors):
            report.skipped += 1
        else:
            todo.append(path)
    by_hash: dict[str, list[FileState]] = {}
    for s in sorted(gone, key=lambda s: s.path):
        by_hash.setdefault(s.content_hash, []).append(s)
    return IndexPlan(todo, known, by_hash, model if full else None, thin)


def embed_item(
    model: JointModel, item: _Decoded, *, keep_windows: bool = True, coverage: str = "sampled"
) -> TrackRow:
    """The store row for a decoded file: its vectors, file facts and tags."""
    emb = _embed(model, item, coverage)
    window_vectors = emb.window_vectors if keep_windows else emb.window_vectors[:0]
    window_starts = emb.window_starts if keep_windows else emb.window_starts[:0]
    return TrackRow(
        id=track_id(item.path),
        path=item.path,
        content_hash=item.content_hash,
        size=item.size,
        mtime_ns=item.mtime_ns,
        duration=float(emb.duration),
        title=item.tags.get("title"),
        artist=item.tags.get("artist"),
        album=item.tags.get("album"),
        genre=item.tags.get("genre"),
        vector=emb.vector,
        window_vectors=window_vectors,
        window_starts=window_starts,
        tag_scores=emb.tag_scores,
        **(item.descriptors or {}),
    )


class IndexWriter:
    """Applies per-file outcomes to the store in atomic batches and keeps the report.

    Both the single-process indexer and the Ray indexer feed it, so they share every rule:
    reuse of unchanged or moved files, batch commits, failures reported with reasons.
    """

    def __init__(
        self,
        store: Store,
        plan: IndexPlan,
        report: IndexReport,
        *,
        commit_every: int = 16,
        events: EventFn | None = None,
    ) -> None:
        if isinstance(commit_every, bool) or commit_every < 1:
            raise bad_value("commit_every", commit_every, "a positive integer")
        self.store = store
        self.plan = plan
        self.report = report
        self.commit_every = commit_every
        self.committed = 0  # rows written by this run so far
        self._pending: list[TrackRow] = []
        self._moved_from: list[int] = []
        self._events = events
        self._emit("planned", todo=len(plan.todo), skipped=report.skipped)

    def _emit(self, kind: str, **facts: Any) -> None:
        if self._events is not None:
            self._events(kind, facts)

    def reuse(self, item: _Decoded) -> bool:
        """Keep stored vectors for an unchanged or moved file; False when none fit."""
        state = self.plan.known.get(item.path)
        unchanged = state is not None and state.content_hash == item.content_hash
        moved = (
            None if unchanged else self.plan.moved_from(item.content_hash, item.size, item.mtime_ns)
        )
        found = _reusable(self.store, state, moved, item, self.plan.model)
        if found is None:
            if moved is not None:  # its row is unreadable: leave it to be removed
                self.plan.gone_by_hash.setdefault(moved.content_hash, []).append(moved)
            return False
        row, was_move = found
        if item.descriptors is not None:  # newly requested descriptors
            row = dataclasses.replace(row, **item.descriptors)
        self._pending.append(row)
        if was_move:
            assert moved is not None
            self._moved_from.append(moved.id)
            self.report.moved.append(item.path)
        elif item.descriptors is not None:
            self.report.updated.append(item.path)
        else:
            self.report.skipped += 1
        self._maybe_commit()
        return True

    def add(self, row: TrackRow) -> None:
        """A freshly embedded file."""
        self.report.audio_seconds += row.duration
        self._pending.append(row)
        (self.report.updated if row.path in self.plan.known else self.report.added).append(row.path)
        self._maybe_commit()

    def fail(self, path: str, reason: str) -> None:
        self.report.failed.append((path, reason))

    def _maybe_commit(self) -> None:
        if len(self._pending) >= self.commit_every:
            self.commit()

    def commit(self) -> None:
        if not self._pending and not self._moved_from:
            return
        self._emit("committing", rows=len(self._pending))
        self.store.upsert(self._pending)
        self.store.delete(self._moved_from)
        self.committed += len(self._pending)
        self._emit("committed", rows=len(self._pending), total=self.committed)
        self._pending.clear()
        self._moved_from.clear()

    def handled(self, done: int, total: int, path: str) -> None:
        """One file of the plan is handled (embedded, reused or failed)."""
        self._emit("file", done=done, total=total, path=path)

    def finish(self, *, remove_missing: bool = True) -> None:
        """Commit what is left, drop files that disappeared, compact after changes."""
        self.commit()
        report = self.report
        if remove_missing:
            stale = self.plan.still_gone()
            self.store.delete([s.id for s in stale])
            report.removed.extend(s.path for s in stale)
        if report.added or report.updated or report.removed or report.moved:
            self._emit("compacting")
            self.store.compact()
        self._emit("finished", committed=self.committed)


def index_folder(
    store: Store,
    model: JointModel,
    folder: str | Path,
    *,
    progress: ProgressFn | None = None,
    commit_every: int = 16,
    decode_workers: int = 1,
    remove_missing: bool = True,
    keep_windows: bool = True,
    model_threads: int | None = None,
    descriptors: bool = False,
    events: EventFn | None = None,
    follow_symlinks: bool = False,
    coverage: str = "sampled",
) -> IndexReport:
    """Bring the store in line with the audio files below ``folder``.

    ``coverage``: "sampled" embeds the model's ``max_windows`` windows of each track (8 for the
    default model), "full" every window, and re-embeds unchanged tracks stored with fewer
    (4.4x the work of sampled indexing on 3-minute tracks: docs/benchmarks.md).

    ``model_threads`` (default: cores - 1) caps torch's threads while decoding runs ahead in
    ``decode_workers`` threads, so the two overlap instead of competing for the same cores.
    ``descriptors`` adds tempo, key, mode and loudness per track (search filters need them;
    they cost about 0.3 s of CPU per track, in the decode thread). ``events`` receives the
    run's phases (planned, file, committed, compacting, finished) as they happen.
    ``follow_symlinks`` lets the walk enter linked folders (see :func:`walk_folder`).
    """
    started = time.perf_counter()
    report = IndexReport()
    bind_model(store, model)
    threads = model_threads if model_threads is not None else _default_model_threads()
    with store.writing(), _torch_threads(threads):
        plan = plan_index(
            store, folder, report, descriptors=descriptors, follow_symlinks=follow_symlinks,
            model=model, coverage=coverage,
        )  # fmt: skip
        writer = IndexWriter(store, plan, report, commit_every=commit_every, events=events)
        sample_rate = model.config.sample_rate
        todo = plan.todo
        for done, item in enumerate(
            _prefetch(todo, sample_rate, decode_workers, depth=4, describe=descriptors), start=1
        ):
            try:
                if item.error is not None:
                    writer.fail(item.path, item.error)
                elif not writer.reuse(item):
                    row = embed_item(model, item, keep_windows=keep_windows, coverage=coverage)
                    writer.add(row)
            except StoreError:
                raise  # the store cannot take writes (a full disk): stop, committed rows stay
            except (MelodexError, ValueError, RuntimeError) as exc:
                writer.fail(item.path, f"cannot embed: {exc}")
            finally:
                item.samples = None
                writer.handled(done, len(todo), item.path)
                if progress is not None:
                    progress(done, len(todo), item.path)
        writer.finish(remove_missing=remove_missing)
    report.wall_seconds = time.perf_counter() - started
    return report


def _reusable(
    store: Store,
    state: FileState | None,
    moved: FileState | None,
    item: _Decoded,
    full_for: JointModel | None = None,
) -> tuple[TrackRow, bool] | None:
    """A row whose vectors can be kept: same content at this path, or moved here unchanged
    (and, with ``full_for``, holding every window that model's full coverage embeds)."""
    source = state if state and state.content_hash == item.content_hash else moved
    if source is None or source.content_hash != item.content_hash:
        return None
    if full_for is not None and undercovered(full_for, source):
        return None
    rows = store.rows([source.id])
    if not rows:
        return None
    old = rows[0]
    row = TrackRow(
        id=track_id(item.path),
        path=item.path,
        content_hash=item.content_hash,
        size=item.size,
        mtime_ns=item.mtime_ns,
        duration=float(old["duration"]),
        title=item.tags.get("title"),
        artist=item.tags.get("artist"),
        album=item.tags.get("album"),
        genre=item.tags.get("genre"),
        vector=np.asarray(old["vector"], np.float32),
        window_vectors=np.asarray(old["window_vectors"], np.float32).reshape(
            -1, len(old["vector"])
        ),
        window_starts=np.asarray(old["window_starts"], np.float32),
        tag_scores=np.asarray(old["tag_scores"], np.float32),
        **{c: old.get(c) for c in DESCRIPTOR_COLUMNS},
    )
    return row, source is moved and source is not state
