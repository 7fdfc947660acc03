"""Triangular HTK mel filters as torchaudio computes them, for the ports whose reference code
uses torchaudio (MuQ, LAION-CLAP's fusion front end) while melodex does not depend on it."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def htk_mel_filters(
    *, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> Tensor:
    """(n_fft // 2 + 1, n_mels) filters, no area norm: ``torchaudio.functional.melscale_fbanks(
    norm=None, mel_scale='htk')`` in the same float32 torch ops, so the ports match to the bit."""
    top = sr / 2 if fmax is None else fmax
    all_freqs = torch.linspace(0, sr // 2, n_fft // 2 + 1)
    m_min = 2595.0 * math.log10(1.0 + fmin / 700.0)
    m_max = 2595.0 * math.log10(1.0 + top / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))
