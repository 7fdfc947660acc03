"""The convolutions that bound every-window indexing, three ways, one thread; and a whole
tagger net by batch size and as a frozen TorchScript graph.

musicnn's timbral layer convolves one 193x96 log-mel patch with 204 filters of 7x38 and 7x67
(0.60 and 0.54 GMAC a window, per tagger). This times them as PyTorch runs them today
(oneDNN, NCHW), in channels-last memory format, and as im2col + one MKL matrix product, and
prints the largest difference from today's output. Then the MTT tagger's whole net per window
(random audio: the cost does not depend on it) at batch sizes 1, 4, 8 and 32, and frozen.

    .venv/bin/python bench/bench_timbral_conv.py
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F  # noqa: N812

REPEATS = 20


def _time(fn) -> tuple[float, torch.Tensor]:  # noqa: ANN001
    for _ in range(3):
        out = fn()
    started = time.perf_counter()
    for _ in range(REPEATS):
        out = fn()
    return (time.perf_counter() - started) / REPEATS * 1000, out


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"one thread, load average {os.getloadavg()[0]:.1f}")
    x = torch.randn(1, 1, 193, 96)
    for width in (38, 67):
        w, b = torch.randn(204, 1, 7, width), torch.randn(204)
        flat = w.reshape(204, -1)
        xc = x.contiguous(memory_format=torch.channels_last)
        wc = w.contiguous(memory_format=torch.channels_last)

        def im2col(width: int = width, flat: torch.Tensor = flat, b: torch.Tensor = b):  # noqa: ANN202
            cols = F.unfold(x, (7, width))[0]
            return (flat @ cols + b[:, None]).reshape(1, 204, 187, 96 - width + 1)

        with torch.inference_mode():
            base_ms, base = _time(lambda w=w, b=b: F.conv2d(x, w, b))
            cl_ms, cl = _time(lambda xc=xc, wc=wc, b=b: F.conv2d(xc, wc, b))
            gemm_ms, gemm = _time(im2col)
        print(f"7x{width}: today {base_ms:.1f} ms; channels-last {cl_ms:.1f} ms "
              f"(diff {float((cl - base).abs().max()):.1e}); im2col + GEMM {gemm_ms:.1f} ms "
              f"(diff {float((gemm - base).abs().max()):.1e})")  # fmt: skip


def whole_net() -> None:
    import numpy as np

    from melodex.encoders.musicnn import WINDOW_SAMPLES, MusicnnTagger, window_log_mels

    net = MusicnnTagger.from_pretrained("MTT_musicnn").eval().net
    windows = np.random.default_rng(0).standard_normal((32, WINDOW_SAMPLES)).astype(np.float32)
    mel = window_log_mels(0.1 * windows)
    with torch.inference_mode():
        for size in (1, 4, 8, 32):
            ms, _ = _time(lambda size=size: [net(mel[i : i + size]) for i in range(0, 32, size)])
            print(f"MTT net, batches of {size}: {ms / 32:.1f} ms a window")
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(net, mel[:1], check_trace=False).eval())
        )
        ms, _ = _time(lambda: [frozen(mel[i : i + 1]) for i in range(32)])
    print(f"MTT net, frozen TorchScript, one at a time: {ms / 32:.1f} ms a window")


if __name__ == "__main__":
    main()
    whole_net()
