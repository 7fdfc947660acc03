"""Record reference outputs of the original TensorFlow musicnn, for tests/test_musicnn.py.

Usage (from the repository root; any Python 3.11 starts it):

    python3 scripts/record_musicnn_reference.py [--venv ~/.cache/melodex/tfenv] [--wheel PATH]

The script creates (once) a side venv outside the repository with ``tensorflow-cpu``, ``tf-keras``,
``librosa`` and the ``musicnn==0.1.0`` wheel installed with ``--no-deps`` (its pins, numpy<1.17 and
TF 1.x, do not install on Python 3.11), then re-runs itself inside it. There it:

1. synthesises deterministic clips (``make_clips``, shared with the test): a 10-s "music" clip of
   harmonic tones and noise, and a 4-s loud clip that overflows the original float16 log;
2. computes the mel input exactly as ``musicnn.extractor.batch_data`` does, but with
   ``pad_mode="reflect"`` spelled out: librosa 0.7 (which musicnn 0.1.0 was written against)
   padded with 'reflect' by default, librosa >= 0.10 pads with zeros;
3. builds the original graph with ``musicnn.models.define_model`` and restores the checkpoint by
   prefix with a plain ``Saver.restore`` (``extractor()`` would swallow a failed restore);
4. saves mel inputs, taggrams and penultimate features to tests/fixtures/musicnn_reference.npz.

TensorFlow runs with TF_USE_LEGACY_KERAS=1 (Keras 3 lacks tf.compat.v1.layers.batch_normalization).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "musicnn_reference.npz"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "melodex"
DEFAULT_VENV = CACHE / "tfenv"  # a side venv, outside the repository
DEFAULT_WHEEL = CACHE / "musicnn-0.1.0-py3-none-any.whl"
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
SR = 16000
N_FRAMES = 187


def make_clips() -> dict[str, np.ndarray]:
    """Deterministic test audio: only sines, a seeded PCG64 stream and float64 arithmetic."""
    rng = np.random.default_rng(20190801)
    t = np.arange(10 * SR) / SR
    music = np.zeros_like(t)
    notes = [220.0, 277.18, 329.63, 440.0, 392.0, 293.66, 246.94, 349.23, 523.25, 196.0]
    for i, f0 in enumerate(notes):  # one note per second, 6 harmonics, decaying envelope
        seg = (t >= i) & (t < i + 1)
        env = np.exp(-3.0 * (t[seg] - i))
        for h in range(1, 7):
            music[seg] += env * np.sin(2 * np.pi * f0 * h * t[seg]) / h
    clicks = (np.arange(t.size) % (SR // 2)) < 80  # a "drum" every half second
    music += clicks * rng.standard_normal(t.size) * 0.8
    music += 0.02 * rng.standard_normal(t.size)
    music *= 0.05  # quiet enough that the original float16 log stays finite
    tl = t[: 4 * SR]
    loud = 0.95 * np.sign(np.sin(2 * np.pi * 110.0 * tl)) + 0.05 * rng.standard_normal(tl.size)
    loud = np.clip(loud, -1.0, 1.0)
    return {"music": music.astype(np.float32), "loud": loud.astype(np.float32)}


def ensure_venv(venv: Path, wheel: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["tensorflow-cpu", "tf-keras", "librosa"], check=True)
        source = str(wheel) if wheel.exists() else "musicnn==0.1.0"
        subprocess.run(pip + ["--no-deps", source], check=True)
    return python


def mel_power(y: np.ndarray) -> np.ndarray:
    """Mel power spectrogram (frames, 96) as musicnn.extractor.batch_data makes it."""
    import librosa

    return librosa.feature.melspectrogram(
        y=y, sr=SR, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect"
    ).T


def patches(rep: np.ndarray) -> np.ndarray:
    """Non-overlapping 187-frame patches, as batch_data slices them (the tail is dropped)."""
    starts = range(0, rep.shape[0] - N_FRAMES + 1, N_FRAMES)
    return np.stack([rep[s : s + N_FRAMES] for s in starts])


def run_model(model: str, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf
    from musicnn import configuration, models

    labels = configuration.MTT_LABELS if model.startswith("MTT") else configuration.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outs = models.define_model(x, is_training, model, len(labels))
        probs = tf.nn.sigmoid(outs[0])
        penultimate = outs[-1] if "musicnn" in model else tf.compat.v1.layers.flatten(outs[-1])
    folder = Path(models.__file__).parent / model
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, str(folder) + "/")
        p, pen = sess.run([probs, penultimate], feed_dict={x: batch, is_training: False})
    return p.astype(np.float32), pen.astype(np.float32)


def record() -> None:
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    out: dict[str, np.ndarray] = {}
    for clip, y in make_clips().items():
        power = mel_power(y)
        mel32 = patches(np.log10(10000 * power.astype(np.float32) + 1).astype(np.float32))
        mel16 = patches(np.log10(10000 * power.astype(np.float16) + 1))  # the original's path
        out[f"{clip}_head"] = y[:2000]
        out[f"{clip}_mel"] = mel32
        print(
            f"{clip}: {y.size / SR:.1f} s, {mel32.shape[0]} patches, float16 path has "
            f"{int(np.isinf(mel16).sum())} inf values, max log-mel {mel32.max():.2f}"
        )
        if clip == "music":
            out[f"{clip}_mel16"] = mel16
        for model in MODELS:
            probs, pen = run_model(model, mel32)
            out[f"{clip}_{model}_probs"] = probs
            out[f"{clip}_{model}_penultimate"] = pen
            if clip == "music":
                probs16, pen16 = run_model(model, mel16.astype(np.float32))
                out[f"{clip}_{model}_probs16"] = probs16
                out[f"{clip}_{model}_penultimate16"] = pen16
                print(
                    f"  {model}: float16 vs float32 log: max |dp| "
                    f"{np.abs(probs16 - probs).max():.2e}"
                )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} B)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        record()
        return 0
    python = ensure_venv(args.venv, args.wheel)
    env = dict(
        os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""
    )
    cmd = [str(python), str(Path(__file__).resolve()), "--inside"]
    return subprocess.run(cmd, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
