"""Index a catalogue with Ray: decoding and embedding run as tasks over batches of files.

The driver (this process) does what the single-process indexer does around the model: it scans
the folder, compares it with the store, holds the single-writer lock and commits every result
through the same :class:`~melodex.library.indexer.IndexWriter`, so both paths share their rules
(incremental, resumable, no duplicates, failures reported with reasons) and write the same rows.
Only ``decode + embed`` moves into Ray tasks, one per batch of files.

- The model travels as the bytes of its saved folder through Ray's object store, so workers on
  other machines need melodex installed but no copy of a user's model; each worker process loads
  it once and checks its identity against the driver's.
- A worker that dies (killed, out of memory, a decoder crash) makes Ray retry its batch on
  another worker. A batch that still fails is split and its files are retried one by one, so a
  file that crashes its decoder is reported as failed instead of taking its batch with it.
- Files are read by path on the workers: on a multi-machine cluster the music folder must be
  mounted at the same path everywhere.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError, ParameterError
from melodex.library.indexer import (
    IndexReport,
    IndexWriter,
    _decode,
    bind_model,
    embed_item,
    plan_index,
)
from melodex.library.store import Store, TrackRow
from melodex.models import JointModel
from melodex.models.registry import split_family
from melodex.progress import EventFn, ProgressFn

DEFAULT_BATCH = 4
TASK_RETRIES = 3
LOCAL = "local"


@dataclass
class FileResult:
    """What a worker made of one file: an error, a row to write, or 'reuse stored vectors'."""

    path: str
    item: Any  # indexer._Decoded without its samples
    row: TrackRow | None = None


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - the extra is installed in dev and CI
        raise MelodexError(
            "indexing with --ray needs the Ray extra: pip install 'melodex[ray]'"
        ) from exc
    return ray


SPEC_KEY = "melodex-family-spec"  # a bundle that holds a family spec instead of a folder


def model_bundle(model: JointModel) -> dict[str, bytes]:
    """The model's saved folder as {file name: bytes}, to ship to workers anywhere.

    A pretrained family's model (``clap-hf:...``, ``laion-clap:...``) is not a melodex folder:
    it travels as its spec, with a local path made absolute, and each worker loads that spec
    (a hub id from its cache, or a path that every machine has, as with the music); the identity
    check then proves the worker holds the same weights.
    """
    found = split_family(str(model.source)) if model.source else None
    if found is not None:
        family, argument = found
        local = Path(os.path.expanduser(argument))
        spec = f"{family.prefix}:{local.resolve()}" if local.exists() else str(model.source)
        return {SPEC_KEY: spec.encode()}
    with tempfile.TemporaryDirectory(prefix="melodex-model-") as tmp:
        folder = Path(model.save(Path(tmp) / "model"))
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


_WORKER_MODELS: dict[str, JointModel] = {}


def _worker_model(bundle: dict[str, bytes], identity: str) -> JointModel:
    """Load the shipped model once per worker process (tasks reuse their process)."""
    model = _WORKER_MODELS.get(identity)
    if model is None:
        import torch

        from melodex.models import load_model

        torch.set_num_threads(1)  # one Ray CPU per task
        if SPEC_KEY in bundle:
            model = load_model(bundle[SPEC_KEY].decode())
        else:
            with tempfile.TemporaryDirectory(prefix="melodex-model-") as tmp:
                for name, data in bundle.items():
                    (Path(tmp) / name).write_bytes(data)
                model = load_model(tmp)
        if model.identity != identity:
            raise MelodexError(
                f"worker loaded model {model.identity}, the driver indexes with {identity}"
            )
        _WORKER_MODELS[identity] = model
    return model


def embed_batch(
    bundle: dict[str, bytes],
    identity: str,
    paths: Sequence[str],
    reusable: set[str],
    describe: bool,
    keep_windows: bool,
    coverage: str = "sampled",
) -> list[FileResult]:
    """The task body: decode and embed each file (files whose content is stored are not
    embedded again: the driver reuses their rows, exactly as the single-process path does)."""
    model = _worker_model(bundle, identity)
    results = []
    for path in paths:
        item = _decode(path, model.config.sample_rate, describe)
        row = None
        if item.error is None and item.content_hash not in reusable:
            try:
                row = embed_item(model, item, keep_windows=keep_windows, coverage=coverage)
            except (MelodexError, ValueError, RuntimeError) as exc:
                item.error = f"cannot embed: {exc}"
        item.samples = None  # never ship audio back
        results.append(FileResult(path, item, row))
    return results


def check_reachable(address: str, *, timeout: float = 5.0) -> None:
    """Fail fast on a cluster address nothing answers at (Ray itself retries for minutes)."""
    match = re.match(r"^(?:ray://)?\[?([\w.:-]+?)\]?:(\d+)$", address)
    if match is None:
        return  # "auto" and the like: Ray resolves them itself
    host, port = match.group(1), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise MelodexError(
            f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc} "
            "(start one with `ray start --head`, or use --ray alone for a local cluster)"
        ) from exc


@contextmanager
def ray_cluster(address: str | None, workers: int | None) -> Iterator[Any]:
    """Connect to a cluster by address, or start a local one (and stop it afterwards)."""
    ray = _require_ray()
    env = {"env_vars": {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}}
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "runtime_env": env,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
            "include_dashboard": False,
        }
        try:
            with warnings.catch_warnings():
                # Ray starts its daemons by fork+exec; LanceDB warns about forks, but an
                # exec'd child never touches the parent's LanceDB state.
                warnings.filterwarnings("ignore", "lancedb fork support", RuntimeWarning)
                if address in (None, LOCAL):
                    ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
                else:
                    check_reachable(address)
                    ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise MelodexError(f"cannot reach the Ray cluster at {address!r}: {exc}") from exc
        started_here = True
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def index_folder_ray(
    store: Store,
    model: JointModel,
    folder: str | Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressFn | None = None,
    commit_every: int = 16,
    remove_missing: bool = True,
    keep_windows: bool = True,
    descriptors: bool = False,
    events: EventFn | None = None,
    follow_symlinks: bool = False,
    retries: int = TASK_RETRIES,
    coverage: str = "sampled",
) -> IndexReport:
    """Bring the store in line with ``folder``, embedding on a Ray cluster.

    ``address``: None or "local" starts a local cluster with ``workers`` CPUs (default: all
    cores); anything else is passed to ``ray.init`` ("auto", "ray://host:10001", ...).
    ``retries``: how many times Ray reruns a batch whose worker died, before its files are
    retried one by one (each with as many reruns) and a file that still kills it is reported.
    """
    if batch_size < 1:
        raise MelodexError(f"batch size must be at least 1, not {batch_size}")
    if retries < 0:
        raise ParameterError(f"retries must be 0 or more, not {retries}")
    started = time.perf_counter()
    report = IndexReport()
    bind_model(store, model)
    with store.writing():
        plan = plan_index(
            store, folder, report, descriptors=descriptors, follow_symlinks=follow_symlinks,
            model=model, coverage=coverage,
        )  # fmt: skip
        writer = IndexWriter(store, plan, report, commit_every=commit_every, events=events)
        if plan.todo:
            with ray_cluster(address, workers) as ray:
                _run(
                    ray,
                    model,
                    plan.todo,
                    plan.reusable_hashes,
                    writer,
                    progress,
                    batch_size=batch_size,
                    retries=retries,
                    describe=descriptors,
                    keep_windows=keep_windows,
                    coverage=coverage,
                )
        writer.finish(remove_missing=remove_missing)
    report.wall_seconds = time.perf_counter() - started
    return report


def _run(
    ray: Any,
    model: JointModel,
    todo: list[str],
    reusable: set[str],
    writer: IndexWriter,
    progress: ProgressFn | None,
    *,
    batch_size: int,
    describe: bool,
    keep_windows: bool,
    retries: int,
    coverage: str,
) -> None:
    """Keep a bounded number of batches in flight and write results as they come back."""
    task = ray.remote(num_cpus=1, max_retries=retries)(embed_batch)
    bundle = ray.put(model_bundle(model))
    identity = model.identity
    capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
    shared = {True: ray.put(reusable), False: ray.put(set())}
    # (paths, may reuse stored rows); popped from the end, so reversed to keep folder order
    queue = [(todo[i : i + batch_size], True) for i in range(0, len(todo), batch_size)][::-1]
    in_flight: dict[Any, list[str]] = {}
    done = 0

    def step(path: str) -> None:
        nonlocal done
        done += 1
        writer.handled(done, len(todo), path)
        if progress is not None:
            progress(done, len(todo), path)

    while queue or in_flight:
        while queue and len(in_flight) < 2 * capacity:
            paths, reuse = queue.pop()
            ref = task.remote(
                bundle, identity, paths, shared[reuse], describe, keep_windows, coverage
            )
            in_flight[ref] = paths
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        paths = in_flight.pop(ready[0])
        try:
            results = ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - Ray wraps worker deaths and task errors
            if len(paths) > 1:  # retry one by one: isolate the file that breaks its worker
                queue.extend(([p], True) for p in reversed(paths))
            else:
                writer.fail(
                    paths[0],
                    f"worker failed on this file ({retries + 1} tries): {_short(exc)}",
                )
                step(paths[0])
            continue
        for result in results:
            item = result.item
            if item.error is not None:
                writer.fail(result.path, item.error)
            elif result.row is not None:
                writer.add(result.row)
            elif not writer.reuse(item):  # the stored row vanished meanwhile: embed it
                queue.append(([result.path], False))
                continue
            step(result.path)


def _short(exc: BaseException) -> str:
    """The first line of a Ray error (its full text repeats the remote traceback)."""
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
