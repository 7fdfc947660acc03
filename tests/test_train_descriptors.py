"""The two-branch model trains on MARD's AcousticBrainz descriptors, saves, reloads and embeds a
descriptor document exactly as its evaluation did.

The MARD fixture holds one real AcousticBrainz document (``tests/fixtures/mard/README.md``):
too few items to train. `descriptor_corpus` derives a small MARD release from it, in the
release's layout and the real document's structure (every field kept, the used ones changed by
genre, album and track), and runs it through the real MARD loader.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from melodex.data.acousticbrainz import FEATURE_SET, descriptor_vector
from melodex.data.loaders import load_dataset, write_loaded
from melodex.data.manifest import read_manifest, write_manifest
from melodex.errors import DatasetFormatError, MelodexError
from melodex.lab.config import load_config
from melodex.lab.train import train
from melodex.models import load_model

pytestmark = pytest.mark.heavy  # training runs

REPO = Path(__file__).resolve().parents[1]
REAL_DOC = next((REPO / "tests" / "fixtures" / "mard" / "acousticbrainz_descriptors").iterdir())
CONFIG = REPO / "configs" / "two-branch-descriptors.yaml"
GENRES = (
    ("Rock", "loud distorted guitars"),
    ("Jazz", "cool muted trumpet"),
    ("Classical", "slow strings"),
)
ALBUMS = 9  # album 8 has one malformed document


def _variant(doc: dict, genre: int, rng: np.random.Generator) -> dict:
    """The real document with its MFCC, ZCR and roll-off values moved by genre (and jitter)."""
    out = copy.deepcopy(doc)
    low = out["lowlevel"]
    scale = (0.7, 1.0, 1.4)[genre]
    mean = np.asarray(low["mfcc"]["mean"]) + 40.0 * (genre - 1) + rng.normal(0, 3, 13)
    low["mfcc"]["mean"] = mean.tolist()
    low["mfcc"]["cov"] = (np.asarray(low["mfcc"]["cov"]) * scale).tolist()
    low["mfcc"]["icov"] = (np.asarray(low["mfcc"]["icov"]) / scale).tolist()
    for field in ("zerocrossingrate", "spectral_rolloff"):
        jitter = 1.0 + rng.normal(0, 0.02)
        low[field] = {k: v * scale * jitter for k, v in low[field].items()}
    return out


def descriptor_corpus(root: Path) -> Path:
    """A MARD release of 9 albums x 2 track documents with 2 reviews each, loaded per track;
    fixed splits by album (0-5 and 8 train, 6 valid, 7 test). Returns the manifest."""
    doc = json.loads(REAL_DOC.read_text())
    rng = np.random.default_rng(0)
    folder = root / "acousticbrainz_descriptors"
    folder.mkdir(parents=True)
    meta, reviews = [], []
    for k in range(ALBUMS):
        amazon = f"B90000000{k}"
        genre, words = GENRES[k % 3]
        meta.append(
            {
                "amazon-id": amazon,
                "artist": f"Artist {k}",
                "title": f"Album {k}",
                "root-genre": genre,
            }
        )
        for r, text in enumerate((f"{words} all through", f"{genre.lower()} with {words}")):
            reviews.append(
                {"amazon-id": amazon, "reviewerID": f"R{k}{r}", "reviewText": f"{text}, album {k}"}
            )
        for t in range(2):
            mbid = f"00000000-0000-4000-8000-0000000000{k}{t}"
            path = folder / f"{amazon}_{mbid}.json"
            text = json.dumps(_variant(doc, k % 3, rng))
            path.write_text(text[: len(text) // 2] if (k, t) == (8, 1) else text)
    for name, rows in (("mard_metadata.json", meta), ("mard_reviews.json", reviews)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = load_dataset("mard", root, audio_source="descriptors", per_track=True)
    manifest = write_loaded(result, root / "manifest.jsonl")
    items = read_manifest(manifest)
    assert len(items) == 2 * ALBUMS
    for item in items:
        k = int(item["extra"]["amazon_id"][-1])
        item["split"] = {6: "valid", 7: "test"}.get(k, "train")
    write_manifest(manifest, items)
    return manifest


class _Record(L.Callback):
    """Every training loss, and the test split's vectors as the evaluation computes them."""

    def __init__(self) -> None:
        self.losses: list[tuple[int, float]] = []
        self.test_vectors: np.ndarray | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append((trainer.current_epoch, float(loss)))

    def on_fit_end(self, trainer, module) -> None:  # noqa: ANN001  (after the export callback)
        split = module.splits["test"]
        module.net.eval()
        with torch.no_grad():
            self.test_vectors = module.track_embeddings(split, list(range(len(split.items))))
        self.test_vectors = self.test_vectors.numpy()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return descriptor_corpus(tmp_path_factory.mktemp("mard"))


def _config(path: Path, manifest: Path, tmp: Path, *extra: str):
    return load_config(
        path,
        [
            f"data.manifest={json.dumps(str(manifest))}",
            f"data.cache_dir={json.dumps(str(tmp / 'cache'))}",
            f"output_dir={json.dumps(str(tmp / 'runs'))}",
            *extra,
        ],
    )


def test_descriptor_model_trains_saves_and_embeds_like_its_evaluation(
    manifest: Path, tmp_path: Path
) -> None:
    config = _config(CONFIG, manifest, tmp_path, "optim.epochs=12", "optim.batch_size=8")
    record = _Record()
    result = train(config, callbacks=[record])

    # the malformed document is skipped and reported, the run goes on
    bad = next(manifest.parent.glob("acousticbrainz_descriptors/B900000008_*81.json"))
    assert [s["id"] for s in result.skipped] == [f"mard:B900000008/{bad.stem}"]
    assert str(bad) in result.skipped[0]["error"] and "invalid JSON" in result.skipped[0]["error"]
    assert json.loads((config.run_dir / "skipped.json").read_text()) == result.skipped

    # it trained: finite losses, the second half's mean under half the first epoch's
    # (seed 0: 0.64 in epoch 0, 0.13 over epochs 6-11; seeds 1 and 2: 0.54 -> 0.19, 0.76 -> 0.26)
    assert record.losses and all(math.isfinite(v) for _, v in record.losses)
    first = np.mean([v for e, v in record.losses if e == 0])
    late = np.mean([v for e, v in record.losses if e >= config.optim.epochs // 2])
    assert late < 0.5 * first, (first, late)
    assert set(result.metrics) == {"valid", "test"}
    # the queries are the reviews (2 per album, on each of its 2 tracks), not the tag fallback
    assert result.metrics["test"]["n_queries"] == 4

    # the saved model holds the training split's standardisation (skipped item left out)
    model = load_model(result.model_dir)
    items = read_manifest(manifest)
    train_files = [
        manifest.parent / it["audio"]
        for it in items
        if it["split"] == "train" and it["id"] != result.skipped[0]["id"]
    ]
    x = np.stack([descriptor_vector(p) for p in train_files]).astype(np.float64)
    encoder = model.net.audio_encoder
    np.testing.assert_allclose(encoder.feature_mean.numpy(), x.mean(0), rtol=1e-5, atol=1e-3)
    assert (
        model.config.options["network"]["audio_encoder"]["params"]["frontend"] == "acousticbrainz"
    )

    # embed_file on a document gives the vector the evaluation ranked
    tests = [it for it in items if it["split"] == "test"]
    assert record.test_vectors is not None and len(tests) == len(record.test_vectors) == 2
    for item, expected in zip(tests, record.test_vectors, strict=True):
        assert item["extra"]["audio_features"] == FEATURE_SET
        emb = model.embed_file(manifest.parent / item["audio"])
        np.testing.assert_allclose(emb.vector, expected, atol=1e-5)
        assert emb.duration == pytest.approx(107.572, abs=1e-3)  # the document's track length
    files = [manifest.parent / it["audio"] for it in tests]
    np.testing.assert_allclose(model.encode_audio(files), record.test_vectors, atol=1e-5)

    # a malformed or missing document: an error naming the file; a waveform: refused
    with pytest.raises(DatasetFormatError, match=rf"{bad.name}:\d+: invalid JSON"):
        model.embed_file(bad)
    with pytest.raises(DatasetFormatError, match="not found: .*nope.json"):
        model.embed_file(tmp_path / "nope.json")
    with pytest.raises(MelodexError, match="reads AcousticBrainz descriptor documents"):
        model.embed_waveform(np.zeros(44100, np.float32))


def test_waveform_model_on_descriptors_names_the_file(manifest: Path, tmp_path: Path) -> None:
    """The audio two-branch config on a descriptor manifest stops with a clear message."""
    config = _config(REPO / "configs" / "two-branch-mard.yaml", manifest, tmp_path)
    with pytest.raises(MelodexError, match=r"B900000000_.*\.json: an AcousticBrainz descriptor"):
        train(config)
