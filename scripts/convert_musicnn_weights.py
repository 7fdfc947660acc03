"""Convert the musicnn==0.1.0 TensorFlow checkpoints to safetensors, without TensorFlow.

Usage (from the repository root):

    .venv/bin/python scripts/convert_musicnn_weights.py [--wheel PATH] [--out DIR]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps musicnn==0.1.0`` into a
temporary folder. Its sha256 is checked against the pinned value, every checkpoint is read with
``melodex.encoders.tensorbundle`` (CRC-checked), optimiser state (Adam slots, beta powers) is
dropped, and the model variables are written under their TensorFlow names to
``<out>/<MODEL>.safetensors`` together with ``<MODEL>.tags.json`` and a NOTICE file.
The output is byte-for-byte deterministic, so re-running it leaves ``git status`` clean.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from melodex.encoders.tensorbundle import read_checkpoint

PACKAGE = "musicnn"
VERSION = "0.1.0"
WHEEL_NAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
CHECKPOINT_FILES = (".index", ".data-00000-of-00001")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "melodex" / "weights" / "musicnn"
COMMAND = "python scripts/convert_musicnn_weights.py  # pip download --no-deps musicnn==0.1.0"


def fetch_wheel(dest: Path) -> Path:
    """Download the pinned wheel with pip (no dependencies: TensorFlow is not needed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["-d", str(dest), f"{PACKAGE}=={VERSION}"]
    subprocess.run(cmd, check=True)
    return dest / WHEEL_NAME


def is_model_variable(name: str) -> bool:
    """Keep weights and batch-norm statistics; drop Adam slots and the beta1/beta2 powers."""
    if name in ("beta1_power", "beta2_power"):
        return False
    return not (name.endswith("/Adam") or name.endswith("/Adam_1"))


def read_labels(config_source: str) -> dict[str, list[str]]:
    """Read MTT_LABELS / MSD_LABELS from musicnn/configuration.py without importing it."""
    labels: dict[str, list[str]] = {}
    for node in ast.parse(config_source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.endswith("_LABELS"):
                labels[target.id] = ast.literal_eval(node.value)
    return labels


def notice_text(license_text: str, metadata: dict[str, str], sha256: str, counts: dict) -> str:
    lines = [
        "musicnn pretrained weights, converted to safetensors for melodex",
        "=" * 64,
        "",
        "Provenance",
        f"  package:   {metadata['Name']}=={metadata['Version']} (PyPI wheel {WHEEL_NAME})",
        f"  sha256:    {sha256}",
        f"  author:    {metadata['Author']}",
        f"  home page: {metadata['Home-page']}",
        f"  licence:   {metadata['License']}",
        f"  command:   {COMMAND}",
        "",
        "The TensorFlow checkpoints in the wheel (musicnn/<MODEL>/.index and",
        ".data-00000-of-00001) were read without TensorFlow by melodex.encoders.tensorbundle.",
        "Only model variables were kept (Adam slots and beta powers dropped); tensor names are",
        "the original TensorFlow variable names; values are the original float32 bytes.",
        "Tag lists come from musicnn/configuration.py (MTT_LABELS, MSD_LABELS).",
        "",
    ]
    for name, (n_vars, n_params) in counts.items():
        lines.append(f"  {name}: {n_vars} variables, {n_params:,} parameters")
    lines += ["", "Licence of the original package (LICENSE.md, ISC)", "-" * 64, ""]
    lines.append(license_text.strip())
    return "\n".join(lines) + "\n"


def convert(wheel: Path, out: Path) -> list[Path]:
    """Write safetensors, tag lists and NOTICE for every model in the wheel; return the paths."""
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if sha256 != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {sha256} differs from the pinned {WHEEL_SHA256}")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    counts: dict[str, tuple[int, int]] = {}
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        info = f"{PACKAGE}-{VERSION}.dist-info"
        metadata = dict(Parser().parsestr(zf.read(f"{info}/METADATA").decode("utf-8")).items())
        license_text = zf.read(f"{info}/LICENSE.md").decode("utf-8")
        labels = read_labels(zf.read(f"{PACKAGE}/configuration.py").decode("utf-8"))
        for model in MODELS:
            folder = Path(tmp) / model
            folder.mkdir()
            for suffix in CHECKPOINT_FILES:
                (folder / suffix).write_bytes(zf.read(f"{PACKAGE}/{model}/{suffix}"))
            tensors = read_checkpoint(str(folder) + "/")
            kept = {k: np.ascontiguousarray(v) for k, v in sorted(tensors.items())}
            kept = {k: v for k, v in kept.items() if is_model_variable(k)}
            n_params = int(sum(v.size for v in kept.values()))
            counts[model] = (len(kept), n_params)
            meta = {
                "source": f"{PACKAGE}=={VERSION}",
                "wheel_sha256": sha256,
                "model": model,
                "format": "tensorflow-variable-names",
            }
            path = out / f"{model}.safetensors"
            # one metadata key: safetensors stores metadata in a hash map, whose order (and so
            # the file's bytes) would otherwise change from run to run
            save_file(kept, str(path), metadata={"melodex": json.dumps(meta, sort_keys=True)})
            tags = labels["MTT_LABELS" if model.startswith("MTT") else "MSD_LABELS"]
            tags_path = out / f"{model}.tags.json"
            tags_path.write_text(json.dumps(tags, indent=2, ensure_ascii=False) + "\n")
            written += [path, tags_path]
        notice = out / "NOTICE"
        notice.write_text(notice_text(license_text, metadata, sha256, counts))
        written.append(notice)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="use this musicnn-0.1.0 wheel, skip pip")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel if args.wheel else fetch_wheel(Path(tmp))
        for path in convert(wheel, args.out):
            print(f"wrote {path} ({path.stat().st_size:,} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
