"""Print melodex's largest difference from the recorded ``laion-clap`` fusion inference
(tests/fixtures/laion_clap_fusion_reference.npz), the figures in docs/models.md::

    PYTHONPATH=src .venv/bin/python scripts/measure_laion_clap_fusion_parity.py
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from melodex.models import load_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    spec = importlib.util.spec_from_file_location(
        "rec", ROOT / "scripts" / "record_laion_clap_reference.py"
    )
    assert spec and spec.loader
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)
    with np.load(rec.FUSION_FIXTURE) as data:
        ref = dict(data)
    folder = Path(tempfile.mkdtemp())
    shapes = json.loads(str(ref["shapes"]))
    state = {
        "module." + k: torch.from_numpy(rec.fixture_tensor(k, tuple(s))) for k, s in shapes.items()
    }
    torch.save({"state_dict": state}, folder / "fusion_random.pt")
    tok = rec.roberta_tokenizer(str(ref["vocab_json"]), str(ref["merges_txt"]))
    tok.save_pretrained(str(folder / "roberta-base"))
    model = load_model(f"laion-clap:{folder / 'fusion_random.pt'}")
    short, long = rec.make_fusion_audio()
    starts = tuple(int(s) for s in ref["crop_starts"])
    text = np.abs(model.encode_text(rec.TEXTS) - ref["text_embed"]).max()
    window = np.abs(model.embed_waveform(short).vector - ref["audio_embed"][0]).max()
    crops = np.abs(model.embed_fused_clip(long, starts) - ref["audio_embed"][1]).max()
    cosine = float(model.embed_fused_clip(long) @ ref["audio_embed"][1])
    print(f"text {text:.1e}, 4 s clip {window:.1e}, 23 s clip with the package's crops {crops:.1e}")
    print(f"23 s clip, melodex's middle crops vs the package's drawn crops: cosine {cosine:.4f}")


if __name__ == "__main__":
    main()
