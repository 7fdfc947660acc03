"""Cut a decoded signal into model windows, and pick which windows a long track uses."""

from __future__ import annotations

import numpy as np

from melodex.errors import ParameterError


def frame_windows(y: np.ndarray, *, window: int, hop: int | None = None) -> np.ndarray:
    """Cut a 1-D signal into windows of ``window`` samples, ``hop`` apart (default: ``window``).

    The rule: windows start at 0, hop, 2*hop, ...; every window that fits entirely is kept. After
    them one more window, zero-padded at the end, is kept when it holds at least half a window of
    samples (``2 * held >= window``) and some of those samples are in no full window; a shorter
    tail is dropped. A non-empty signal shorter than one window gives exactly one zero-padded
    window; an empty signal gives shape ``(0, window)``.

    Returns
    -------
    np.ndarray, shape (n_windows, window), float32
        A new C-contiguous array (safe to modify), filled from a strided view without Python loops.

    Examples
    --------
    >>> frame_windows(np.ones(250, np.float32), window=100).shape
    (3, 100)
    >>> frame_windows(np.ones(249, np.float32), window=100).shape
    (2, 100)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"y must be 1-D, got shape {y.shape}")
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ParameterError(f"window must be a positive integer, got {window!r}")
    hop = window if hop is None else hop
    if isinstance(hop, bool) or int(hop) != hop or hop < 1:
        raise ParameterError(f"hop must be a positive integer, got {hop!r}")
    window, hop, n = int(window), int(hop), y.shape[0]
    if n == 0:
        return np.zeros((0, window), dtype=np.float32)
    if n < window:
        out = np.zeros((1, window), dtype=np.float32)
        out[0, :n] = y
        return out
    n_full = 1 + (n - window) // hop
    covered = (n_full - 1) * hop + window
    tail_start = n_full * hop
    held = n - tail_start
    keep_tail = n > covered and held > 0 and 2 * held >= window
    out = np.zeros((n_full + keep_tail, window), dtype=np.float32)
    out[:n_full] = np.lib.stride_tricks.sliding_window_view(y, window)[::hop][:n_full]
    if keep_tail:
        out[n_full, :held] = y[tail_start:]
    return out


def select_windows(n_windows: int, *, max_windows: int | None) -> np.ndarray:
    """Indices of the windows to use for a track: all, or ``max_windows`` spread evenly.

    When ``max_windows`` is None or ``n_windows <= max_windows``, every index is returned.
    Otherwise the track is split into ``max_windows`` equal segments and the window at the centre
    of each is taken: index ``floor((2*i + 1) * n_windows / (2 * max_windows))``, computed in
    integers. The result is deterministic, sorted and unique.

    Examples
    --------
    >>> select_windows(10, max_windows=3).tolist()
    [1, 5, 8]
    """
    if isinstance(n_windows, bool) or int(n_windows) != n_windows or n_windows < 0:
        raise ParameterError(f"n_windows must be an integer >= 0, got {n_windows!r}")
    if max_windows is not None and (
        isinstance(max_windows, bool) or int(max_windows) != max_windows or max_windows < 1
    ):
        raise ParameterError(f"max_windows must be a positive integer or None, got {max_windows!r}")
    n = int(n_windows)
    if max_windows is None or n <= max_windows:
        return np.arange(n, dtype=np.int64)
    m = int(max_windows)
    i = np.arange(m, dtype=np.int64)
    return ((2 * i + 1) * n) // (2 * m)
