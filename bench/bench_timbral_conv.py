"""The convolutions that bound every-window indexing, three ways, one thread; and a whole
tagger net by batch size and as a frozen TorchScript graph.

musicnn's timbral layer convolves one 193x96 log-mel patch with 204 filters of 7x38 and 7x67
(0.60 and 0.54 GMAC a window, per tagger), then takes the max over frequency. This times conv +
max as the port first ran them (time-major: oneDNN, NCHW, time as the height), in channels-last
memory format, as im2col + one MKL matrix product, and frequency-major (frequency as the height,
what ``melodex.encoders.musicnn`` runs now), and as an FFT along time with a complex product
over frequency, and prints the largest difference from the first. Then the MTT tagger's whole net per window
(random audio: the cost does not depend on it) at batch sizes 1, 4, 8 and 32, and frozen.

    .venv/bin/python bench/bench_timbral_conv.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

REPEATS = 20
N_FFT = 224  # >= 193 time steps: the circular product wraps nothing that is kept


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

        xf = x.transpose(2, 3).contiguous()
        wf = w.transpose(2, 3).contiguous()
        spectra = torch.conj(torch.fft.rfft(wf[:, 0], n=N_FFT)).permute(2, 0, 1).contiguous()

        def fft_time(width: int = width, xf: torch.Tensor = xf, spectra=spectra, b=b):  # noqa: ANN001, ANN202
            """FFT along time, then per frequency bin a complex product over the filter's rows."""
            rows = torch.fft.rfft(xf[0, 0], n=N_FFT).unfold(0, width, 1).permute(1, 2, 0)
            y = torch.fft.irfft(torch.bmm(spectra, rows).permute(1, 2, 0), n=N_FFT)[..., :187]
            return (y.amax(1) + b[:, None])[None]

        with torch.inference_mode():
            base_ms, base = _time(lambda w=w, b=b: F.conv2d(x, w, b).amax(3))
            cl_ms, cl = _time(lambda xc=xc, wc=wc, b=b: F.conv2d(xc, wc, b).amax(3))
            gemm_ms, gemm = _time(lambda im2col=im2col: im2col().amax(3))
            fm_ms, fm = _time(lambda xf=xf, wf=wf, b=b: F.conv2d(xf, wf, b).amax(2))
            fft_ms, fft = _time(fft_time)
        print(f"7x{width} conv + max: time-major {base_ms:.1f} ms; channels-last {cl_ms:.1f} ms "
              f"(diff {float((cl - base).abs().max()):.1e}); im2col + GEMM {gemm_ms:.1f} ms "
              f"(diff {float((gemm - base).abs().max()):.1e}); frequency-major {fm_ms:.1f} ms "
              f"(diff {float((fm - base).abs().max()):.1e}, {base_ms / fm_ms:.2f}x); "
              f"FFT along time {fft_ms:.1f} ms (diff {float((fft - base).abs().max()):.1e})")  # fmt: skip


def trained_weights() -> None:
    """The same two orders with the MTT tagger's own filters on a rendered track's log-mel
    (what the indexer embeds), to show how far apart the two roundings land."""
    from melodex.encoders.musicnn import MusicnnTagger, window_log_mels

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from long_tracks import make_long_tracks

    from melodex.audio import load_audio

    path = make_long_tracks(n_tracks=10)[0]
    y = load_audio(path, sr=16000)
    n = len(y) // 47872
    mel = window_log_mels(y[: n * 47872].reshape(n, 47872))
    net = MusicnnTagger.from_pretrained("MTT_musicnn").eval().net
    with torch.inference_mode():
        x = F.pad(mel * net.in_scale + net.in_shift, (0, 0, 3, 3))  # (B, 193, 96)
        for name, w, b in (("7x38", net.w74, net.b74), ("7x67", net.w77, net.b77)):
            freq_major = F.conv2d(x.transpose(1, 2).unsqueeze(1), w, b).amax(2)
            time_major = F.conv2d(x.unsqueeze(1), w.transpose(2, 3), b).amax(3)
            gap = float((freq_major - time_major).abs().max())
            scale = float(time_major.abs().max())
            print(f"MTT {name} on {n} windows of {path.name}: largest gap {gap:.1e} "
                  f"(outputs up to {scale:.1f}; relative {gap / scale:.1e})")  # fmt: skip


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
    trained_weights()
    whole_net()
