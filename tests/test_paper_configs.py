"""The paper-size configs (configs/paper/) load, name real encoders, and build at their size."""

from __future__ import annotations

from pathlib import Path

import pytest

from melodex.encoders.audio import build_audio_encoder
from melodex.encoders.text_trainable import TEXT_ENCODERS
from melodex.lab.config import load_config

PAPER = sorted(Path(__file__).resolve().parents[1].joinpath("configs", "paper").glob("*.yaml"))
# audio encoder parameters at the papers' sizes (+-3 %): ResNet-50 + attention pool (TTMR++),
# the tagging transformer's default (TTMR, WikiMuTe), short-chunk CNN default (Won et al.)
SIZES = {
    "ttmr-plus-plus": 38.4e6,
    "ttmr": 4.59e6,
    "wikimute": 4.59e6,
    "won-tag-metric-learning": 3.53e6,
}


def test_the_five_papers_have_configs() -> None:
    assert {p.stem for p in PAPER} == {*SIZES, "two-branch"}


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_paper_config_loads_and_builds_its_audio_encoder(path: Path) -> None:
    config = load_config(path)
    assert config.model.text_encoder["name"] in TEXT_ENCODERS
    audio = build_audio_encoder(
        config.model.audio_encoder["name"], **config.model.audio_encoder["params"]
    )
    n = sum(p.numel() for p in audio.parameters() if p.requires_grad)
    if path.stem in SIZES:
        assert abs(n - SIZES[path.stem]) <= 0.03 * SIZES[path.stem], f"{n:,}"
    if path.stem == "ttmr-plus-plus":
        assert config.optim.batch_size == 768 and config.optim.lr == 5e-5
        assert config.objective.params["temperature"] == 0.1
    if path.stem == "won-tag-metric-learning":
        assert config.objective.sampling == "balanced_weighted"
        assert config.objective.params["margin"] == 0.4
    if path.stem == "two-branch":
        assert config.objective.params["lambda3"] > 0  # the neighbourhood constraints are on
