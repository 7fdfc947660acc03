"""`melodex fit-baseline` fits on a manifest's train split and writes a loadable model folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from melodex.data.demo import build_demo
from melodex.data.manifest import read_manifest, write_manifest
from melodex.models import load_model

pytestmark = pytest.mark.heavy  # real musicnn features


@pytest.mark.parametrize("kind", ["cca", "random"])
def test_fit_baseline_command(kind: str, tmp_path: Path) -> None:
    from melodex.cli import main

    manifest = build_demo(tmp_path / "corpus", n_tracks=6, seconds=6)
    items = read_manifest(manifest)
    for i, item in enumerate(items):
        item["split"] = "train" if i < 5 else "test"
    fixed = write_manifest(tmp_path / "corpus" / "fixed.jsonl", items)
    out = tmp_path / "model"
    with pytest.raises(SystemExit) as done:
        main(["fit-baseline", kind, str(fixed), str(out), "--dim", "3"])
    assert done.value.code in (0, None)
    model = load_model(out)
    vectors = model.encode_audio([manifest.parent / i["audio"] for i in items[:2]])
    assert vectors.shape == (2, model.dim) and model.dim <= 4
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
