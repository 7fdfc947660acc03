"""How far melodex's TTMR++ audio outputs sit from the authors' recorded ones on this CPU, and
how far a wrong port would put them: the figures behind tests/test_ttmr_pp_parity.py's
audio tolerance.

MKL picks its FFT and GEMM kernels by CPU, so run it under its settings to see the spread:

    .venv/bin/python bench/bench_parity_spread.py
    MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python bench/bench_parity_spread.py
    MKL_ENABLE_INSTRUCTIONS=SSE4_2 .venv/bin/python bench/bench_parity_spread.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from melodex.models import ttmr_pp  # noqa: E402
from melodex.models.base import WindowedJointModel  # noqa: E402
from tests.script_modules import load_script  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "ttmr_pp"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def largest_gap(model: ttmr_pp.TtmrPPModel, clips: list[np.ndarray], want: np.ndarray) -> float:
    got = np.concatenate([model.embed_waveform(c, max_windows=None).window_vectors for c in clips])
    return float(np.abs(got - want).max())


def main() -> None:
    script = load_script("scripts/record_ttmr_references.py")
    clips = script.make_clips(22050, script.CLIP_SECONDS["ttmr-pp"])
    with np.load(FIXTURE / "reference.npz") as ref:
        want = _unit(ref["window_outputs"])
    model = ttmr_pp.load(str(FIXTURE / "ttmrpp_tiny.pth"))
    print(f"as ported: {largest_gap(model, clips, want):.2e}")
    shifted = [np.roll(c, 1) for c in clips]
    print(f"input shifted by one sample: {largest_gap(model, shifted, want):.2e}")
    ttmr_pp.TtmrPPModel.select = WindowedJointModel.select  # the original's int16 rule left out
    print(f"without the int16 rule: {largest_gap(model, clips, want):.2e}")


if __name__ == "__main__":
    main()
