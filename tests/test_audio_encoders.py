"""Audio encoders: build from config, shapes, gradients, determinism, JSON round-trips, sizes.

Parameter counts at default sizes (asserted within +-2 %, see ``DEFAULT_PARAMS``):
short_chunk_cnn 3.53 M, resnet_attention 1.43 M (TTMR++'s ResNet-50 setting: 38.4 M),
tagging_transformer 4.59 M, handcrafted_mlp 41 k, musicnn_backbone 0 trainable (frozen).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch
from torch import nn

from melodex.encoders.audio import (
    AUDIO_ENCODERS,
    MusicnnBackbone,
    ProjectionHead,
    ProjectionHeadConfig,
    audio_encoder_from_spec,
    audio_encoder_spec,
    build_audio_encoder,
)
from melodex.encoders.musicnn import MusicnnTagger
from melodex.errors import ModelLoadError

# tiny settings so the whole file runs in seconds on two cores; short-chunk mels (173 x 128)
# feed every log-mel model, since any log-mel front-end will do
TINY: dict[str, dict] = {
    "short_chunk_cnn": {"channels": (4, 4, 4, 4, 4, 4, 8), "out_dim": 16},
    "resnet_attention": {
        "frontend": "shortchunk",
        "width": 8,
        "layers": (1, 1, 1, 1),
        "heads": 2,
        "out_dim": 16,
    },
    "tagging_transformer": {
        "frontend": "shortchunk",
        "conv_dim": 8,
        "attention_dim": 16,
        "heads": 2,
        "layers": 1,
    },
    "handcrafted_mlp": {"hidden_dim": 16, "out_dim": 8, "dropout": 0.5},
    "musicnn_backbone": {"trainable": True},
}

# the first trainable layer of each model, which gradients must reach
FIRST: dict[str, Callable[[nn.Module], torch.Tensor]] = {
    "short_chunk_cnn": lambda m: m.layers[0].weight,
    "resnet_attention": lambda m: m.stem[0].weight,
    "tagging_transformer": lambda m: m.cnn[0].body[0].weight,
    "handcrafted_mlp": lambda m: m.net[0].weight,
    "musicnn_backbone": lambda m: m.tagger.net.w74,
}

DEFAULT_PARAMS = {
    "short_chunk_cnn": 3_529_346,
    "resnet_attention": 1_425_674,
    "tagging_transformer": 4_590_978,
    "handcrafted_mlp": 41_088,
    "musicnn_backbone": 0,
}


def _inputs(encoder: nn.Module, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn((batch, *encoder.frontend.output_shape), generator=g)


def _n_params(module: nn.Module, *, trainable: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


@pytest.fixture(scope="module", params=list(AUDIO_ENCODERS))
def tiny(request) -> tuple[str, nn.Module]:
    torch.manual_seed(0)
    return request.param, build_audio_encoder(request.param, **TINY[request.param])


def test_forward_shape(tiny) -> None:
    name, enc = tiny
    enc.train()
    out = enc(_inputs(enc))
    assert out.shape == (2, enc.out_dim) and torch.isfinite(out).all()


def test_gradients_reach_the_first_layer(tiny) -> None:
    name, enc = tiny
    enc.train()
    enc.zero_grad()
    enc(_inputs(enc)).square().sum().backward()
    grad = FIRST[name](enc).grad
    assert grad is not None and grad.abs().sum() > 0


def test_eval_outputs_are_deterministic(tiny) -> None:
    name, enc = tiny
    enc.eval()
    x = _inputs(enc, batch=3)
    with torch.no_grad():
        a, b = enc(x), enc(x)
        alone = enc(x[:1])
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a[:1], alone, rtol=1e-5, atol=1e-5)  # no batch-mate leakage


def test_config_round_trips_through_json(tiny) -> None:
    name, enc = tiny
    spec = json.loads(json.dumps(audio_encoder_spec(enc)))
    again = audio_encoder_from_spec(spec)
    assert type(again) is type(enc) and again.config == enc.config
    again.load_state_dict(enc.state_dict())
    enc.eval(), again.eval()
    x = _inputs(enc)
    with torch.no_grad():
        torch.testing.assert_close(again(x), enc(x))


@pytest.mark.parametrize("name", list(AUDIO_ENCODERS))
def test_default_sizes(name: str) -> None:
    enc = build_audio_encoder(name)
    n = _n_params(enc)
    assert abs(n - DEFAULT_PARAMS[name]) <= 0.02 * DEFAULT_PARAMS[name], f"{name}: {n:,} parameters"


def test_ttmrpp_resnet50_setting_size() -> None:
    enc = build_audio_encoder(
        "resnet_attention", width=64, layers=(3, 4, 6, 3), heads=8, out_dim=768, input_bn=False
    )
    assert 37e6 < _n_params(enc) < 40e6  # ResNet-50 trunk (23.5 M) + 2048-wide attention pool
    assert enc.pool.c_proj.in_features == 2048


@pytest.mark.heavy  # the real musicnn weights
def test_frozen_musicnn_is_the_pretrained_tagger() -> None:
    enc = build_audio_encoder("musicnn_backbone", model="MSD_musicnn")
    assert _n_params(enc) == 0
    enc.train()
    assert not enc.tagger.training
    x = _inputs(enc)
    ref = MusicnnTagger.from_pretrained("MSD_musicnn")
    probs, pen = ref(x)
    torch.testing.assert_close(enc(x), pen)
    taggram = build_audio_encoder("musicnn_backbone", output="taggram")
    assert taggram.out_dim == 50 and taggram(x).shape == (2, 50)
    assert not enc(x).requires_grad


@pytest.mark.heavy  # trains, runs a real model, or decodes hours: not in the fast tier
def test_trainable_musicnn_starts_pretrained_and_keeps_pool_signs_fixed() -> None:
    enc = build_audio_encoder("musicnn_backbone", trainable=True)
    assert isinstance(enc, MusicnnBackbone)
    net = enc.tagger.net
    assert "s1" in dict(net.named_buffers()) and "g1" in dict(net.named_buffers())
    assert 700_000 < _n_params(enc) < 900_000
    x = _inputs(enc)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), MusicnnTagger.from_pretrained("MTT_musicnn")(x)[1])


def test_bad_names_and_parameters_raise() -> None:
    with pytest.raises(ModelLoadError, match="unknown audio encoder 'vggish'"):
        build_audio_encoder("vggish")
    with pytest.raises(ModelLoadError, match=r"parameter\(s\) \['chanels'\]"):
        build_audio_encoder("short_chunk_cnn", chanels=(8,))
    with pytest.raises(ModelLoadError, match="unknown musicnn model"):
        build_audio_encoder("musicnn_backbone", model="FMA_musicnn")
    with pytest.raises(ValueError, match="need at least 256 frames"):
        build_audio_encoder("short_chunk_cnn", channels=(4,) * 8)
    enc = build_audio_encoder("short_chunk_cnn", **TINY["short_chunk_cnn"])
    with pytest.raises(ValueError, match=r"expected log-mels of shape \(B, frames, 128\)"):
        enc(torch.zeros(2, 173, 96))


@pytest.mark.parametrize("kind", ["linear", "mlp", "identity"])
def test_projection_head_normalises(kind: str) -> None:
    head = ProjectionHead(ProjectionHeadConfig(in_dim=16, out_dim=16, kind=kind))
    out = head(torch.randn(4, 16))
    assert out.shape == (4, 16)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(4))
    with pytest.raises(ValueError, match="identity head needs in_dim == out_dim"):
        ProjectionHead(ProjectionHeadConfig(in_dim=16, out_dim=8, kind="identity"))


def test_handcrafted_features_are_standardised_with_stored_training_statistics(
    tmp_path,
) -> None:
    """MFCC-like, Hz-like and rate-like columns: after fitting, the training features enter the
    MLP with mean 0 and std 1, and the statistics travel with a saved model."""
    import numpy as np

    from melodex.encoders.text_trainable import build_text_encoder
    from melodex.models import load_model
    from melodex.models.dual import DualEncoder, export_model
    from melodex.text import Vocabulary

    enc = build_audio_encoder("handcrafted_mlp", hidden_dim=16, out_dim=8)
    rng = np.random.default_rng(0)
    scales = np.ones(enc.in_dim)
    scales[2 * 13 : 2 * 13 + 2] = 3000.0  # roll-off in Hz
    scales[-2:] = 0.01  # ZCR
    train = rng.normal(size=(50, enc.in_dim)) * scales + 5.0 * scales
    enc.fit_standardisation(train)
    np.testing.assert_allclose(enc.feature_mean.numpy(), train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(enc.feature_std.numpy(), train.std(0), rtol=1e-5)
    seen = []
    hook = enc.net[0].register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    enc.eval()
    with torch.no_grad():
        enc(torch.from_numpy(train.astype(np.float32)))
    hook.remove()
    standard = seen[0].numpy()
    np.testing.assert_allclose(standard.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(standard.std(0), 1.0, atol=1e-3)
    # saved with the model (buffers are weights), restored on load
    text = build_text_encoder(
        "mean_word_embedding", vocab=Vocabulary.build(["a b c"]).to_dict(), embedding_dim=4
    )
    folder = export_model(DualEncoder(enc, text, dim=4), name="std").save(tmp_path / "m")
    loaded = load_model(folder).net.audio_encoder
    torch.testing.assert_close(loaded.feature_mean, enc.feature_mean)
    torch.testing.assert_close(loaded.feature_std, enc.feature_std)
