"""Record reference outputs of the ``muq`` package's MuQ-MuLan on a small random model, for
tests/test_muq_mulan_parity.py.

Usage (from the repository root, in the project's venv):

    python scripts/record_muq_reference.py --side DIR

``muq==0.1.0`` pins a torch other than the project's, so it is not installed: ``DIR`` holds its
source and the pure-Python packages it imports, without dependencies (``pip download --no-deps
muq==0.1.0``, unpack, copy ``src/muq`` into DIR; ``pip install --no-deps --target DIR
torchaudio==2.11.1 einops easydict``, then delete ``DIR/torchaudio/lib/*.so``). ``x_clip`` is
only imported by muq for a default argument of a class MuQ-MuLan does not use; it is replaced by
a stub here (its package imports torchvision).

The script builds a tiny MuQ (``MuQ(MuQConfig)``, saved with ``save_pretrained``), a tiny
XLM-RoBERTa with a trained tokenizer, and a ``MuQMuLan`` on them (random weights; BatchNorm
statistics calibrated on the clips), saves it with ``save_pretrained`` (the hub layout:
config.json + model.safetensors) and records ``model(wavs=...)`` per track,
``mulan.get_audio_latents`` per clip and ``model(texts=[text])`` per text.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "muq_mulan"
SR = 24000
CLIP_SECS = 2  # the release uses 10; 2 keeps the test fast
CLIP_SECONDS = (4.0, 5.5)  # two full clips; two full and a wrapped partial one


def _ttmr_script():
    spec = importlib.util.spec_from_file_location(
        "record_ttmr_references", ROOT / "scripts" / "record_ttmr_references.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_clips() -> list[np.ndarray]:
    return _ttmr_script().make_clips(SR, CLIP_SECONDS)


def texts() -> list[str]:
    return list(_ttmr_script().TEXTS[:4])  # the original does not truncate: no over-long text


def _stub_x_clip() -> None:
    pkg = types.ModuleType("x_clip")
    tok = types.ModuleType("x_clip.tokenizer")
    tok.tokenizer = types.SimpleNamespace(vocab_size=49408)
    pkg.tokenizer = tok
    sys.modules["x_clip"] = pkg
    sys.modules["x_clip.tokenizer"] = tok


def record(side: Path) -> None:
    sys.path[:0] = [str(side), str(ROOT / "src")]
    _stub_x_clip()
    import torch
    from muq import MuQ, MuQMuLan
    from muq.muq.muq import MuQConfig
    from transformers import Wav2Vec2ConformerConfig, XLMRobertaConfig, XLMRobertaModel

    script = _ttmr_script()
    out = OUT
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        # text tower: a tiny XLM-R (tokenizer: a trained byte-level BPE; its class is immaterial)
        xlmr = tmp / "xlm-roberta-tiny"
        script.tiny_text_tower("roberta", xlmr)
        rcfg = json.loads((xlmr / "config.json").read_text())
        xcfg = XLMRobertaConfig(
            **{
                k: rcfg[k]
                for k in (
                    "vocab_size",
                    "hidden_size",
                    "num_hidden_layers",
                    "num_attention_heads",
                    "intermediate_size",
                    "max_position_embeddings",
                    "type_vocab_size",
                    "pad_token_id",
                    "bos_token_id",
                    "eos_token_id",
                )
            }
        )
        XLMRobertaModel(xcfg).save_pretrained(str(xlmr))
        # audio tower: a tiny MuQ
        w2v2 = Wav2Vec2ConformerConfig(
            hidden_size=32,
            num_attention_heads=4,
            intermediate_size=64,
            conv_depthwise_kernel_size=7,
            num_hidden_layers=2,
        ).to_dict()
        for key in ("id2label", "label2id"):  # int keys: EasyDict cannot hold them
            w2v2.pop(key, None)
        # transformers 5 reads config._attn_implementation, which muq's EasyDict config lacks
        # (muq was written against transformers 4, whose conformer attention is eager);
        # removed again from the saved config below
        w2v2["_attn_implementation"] = "eager"
        muq_dir = tmp / "MuQ-tiny"
        muq_cfg = MuQConfig(
            conv_dim=8,
            encoder_dim=32,
            encoder_depth=2,
            w2v2_config=w2v2,
            codebook_size=64,
            stat={"melspec_2048_mean": 6.77, "melspec_2048_std": 18.42},
        )
        MuQ(muq_cfg).save_pretrained(str(muq_dir))
        config = {
            "mulan": {
                "sr": SR,
                "clip_secs": CLIP_SECS,
                "dim_latent": 16,
                "decoupled_contrastive_learning": True,
                "rank_contrast": True,
            },
            "audio_model": {"name": str(muq_dir), "model_dim": 32, "use_layer_idx": -1},
            "text_model": {"name": str(xlmr), "model_dim": 32},
            "audio_transformer": {"dim": 24, "tf_depth": 2, "heads": 2, "dim_head": 8},
            "text_transformer": {"dim": 24, "tf_depth": 2, "heads": 2, "dim_head": 8},
        }
        model = MuQMuLan(config)
        clips = make_clips()
        n = SR * CLIP_SECS
        windows = torch.from_numpy(
            np.concatenate([c[: len(c) // n * n].reshape(-1, n) for c in clips])
        )
        script.randomise(
            model, seed=1, calibrate=lambda: model.mulan_module.get_audio_latents(windows)
        )
        model.eval()
        model.save_pretrained(str(out / "MuQ-MuLan-tiny"))
        saved = json.loads((out / "MuQ-MuLan-tiny" / "config.json").read_text())
        saved["audio_model"]["name"] = "MuQ-tiny"
        saved["text_model"]["name"] = "xlm-roberta-tiny"
        (out / "MuQ-MuLan-tiny" / "config.json").write_text(json.dumps(saved, indent=2) + "\n")
        (out / "MuQ-tiny").mkdir()
        muq_json = json.loads((muq_dir / "config.json").read_text())
        muq_json.get("w2v2_config", muq_json.get("config", {}).get("w2v2_config", {})).pop(
            "_attn_implementation", None
        )
        (out / "MuQ-tiny" / "config.json").write_text(json.dumps(muq_json, indent=2) + "\n")
        shutil.copytree(
            xlmr, out / "xlm-roberta-tiny", ignore=shutil.ignore_patterns("*.safetensors")
        )

        with torch.no_grad():
            vectors = [model(wavs=torch.from_numpy(c[None]))[0].numpy() for c in clips]
            per_clip = [
                model.mulan_module.get_audio_latents(clip[None])[0].numpy()
                for c in clips
                for clip in model._get_all_clips(torch.from_numpy(c))
            ]
            text_vectors = [model(texts=[t])[0].numpy() for t in texts()]
    np.savez_compressed(
        out / "reference.npz",
        audio_vectors=np.stack(vectors),
        window_outputs=np.stack(per_clip),
        text_vectors=np.stack(text_vectors),
    )
    (out / "MuQ-MuLan-tiny" / "README.md").unlink(missing_ok=True)  # the mixin's model card
    (out / "PROVENANCE.json").write_text(
        json.dumps(
            {
                "package": "muq==0.1.0 (PyPI; github.com/tencent-ailab/MuQ)",
                "licence": "code MIT; only outputs of random weights are stored here",
                "made_by": "scripts/record_muq_reference.py",
                "texts": texts(),
            },
            indent=2,
        )
        + "\n"
    )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=Path, required=True, help="muq source, torchaudio, ...")
    record(parser.parse_args(argv).side)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
