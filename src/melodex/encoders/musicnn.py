"""musicnn audio taggers (Pons & Serra, 2019) ported to PyTorch, on the original weights.

The weights are the ``musicnn==0.1.0`` TensorFlow checkpoints converted to safetensors by
``scripts/convert_musicnn_weights.py`` (see ``melodex/weights/musicnn/NOTICE``); tensors keep their
TensorFlow names. ``tests/test_musicnn.py`` checks the port against outputs recorded from the
original TensorFlow graph (``scripts/record_musicnn_reference.py``).

Front-end, as ``musicnn.extractor.batch_data``: 16 kHz mono, |STFT|^2 with a 512-point periodic
Hann window, hop 256, centred frames with *reflect* padding (librosa 0.7's default; librosa
>= 0.10 pads with zeros, so calling a recent librosa with its defaults does not reproduce
musicnn), 96 Slaney mel bands (librosa's ``filters.mel`` with ``norm="slaney"``), then
``log10(10000 * mel + 1)``.
Patches are 187 frames (``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``),
cut without overlap from the whole-track spectrogram; a trailing partial patch is dropped.

Layer map (TensorFlow variable -> layer), musicnn models:

- ``batch_normalization``: scalar batch norm of the input log-mel
- ``conv2d`` (7, 38) + ``batch_normalization_1``, ``conv2d_1`` (7, 67) + ``batch_normalization_2``:
  timbral convolutions (time-padded by 3 with zeros, valid in frequency), ReLU, BN, max over freq
- ``conv2d_2..4`` (128 | 64 | 32, 1) + ``batch_normalization_3..5``: temporal convolutions, TF
  'same' padding in time (for even kernels one more zero after than before), ReLU, BN, max over freq
- ``conv2d_5`` (7, 561), ``conv2d_6``/``conv2d_7`` (7, 64) + ``batch_normalization_6..8``: mid-end
  (conv, ReLU, BN; the last two with residual connections)
- ``batch_normalization_9`` (1506), ``dense`` (1506, 200), ``batch_normalization_10``, ``dense_1``:
  back-end. The 1506 pooled features are *interleaved* ``[max_0, mean_0, max_1, mean_1, ...]``
  (TF concatenates (B, 753, 1) tensors on the last axis and flattens).

All TF batch norms use epsilon 1e-3. The vgg baselines (``MTT_vgg``, ``MSD_vgg``) are ported too:
five 3x3 'same' conv/ReLU/BN/max-pool blocks; their "penultimate" output is the flattened pool5
(256 values, NHWC order).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from torch import Tensor, nn

from melodex.errors import ModelLoadError, ParameterError

__all__ = [
    "FFT_HOP",
    "FFT_SIZE",
    "MUSICNN_SR",
    "N_FRAMES",
    "N_MELS",
    "WINDOW_SAMPLES",
    "MusicnnTagger",
    "available_taggers",
    "mel_filterbank",
    "mel_patches",
    "musicnn_log_mel",
]

MUSICNN_SR = 16000
FFT_SIZE = 512
FFT_HOP = 256
N_MELS = 96
N_FRAMES = 187
WINDOW_SAMPLES = N_FRAMES * FFT_HOP  # 47872: the stride between the original's patches
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization default

_ARCHS = {"MTT_musicnn": "musicnn", "MSD_musicnn": "musicnn", "MTT_vgg": "vgg", "MSD_vgg": "vgg"}


# ----------------------------------------------------------------------------- front-end


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    mel = f / f_sp
    above = f >= min_log_hz
    mel[above] = min_log_hz / f_sp + np.log(f[above] / min_log_hz) / logstep
    return mel


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    f = f_sp * m
    above = m >= min_log_mel
    f[above] = min_log_hz * np.exp(logstep * (m[above] - min_log_mel))
    return f


@lru_cache(maxsize=4)
def mel_filterbank(
    *, sr: int = MUSICNN_SR, n_fft: int = FFT_SIZE, n_mels: int = N_MELS
) -> np.ndarray:
    """Slaney mel filters (n_mels, 1 + n_fft // 2) in float32, built as ``librosa.filters.mel``.

    Written out (a dozen lines) so that librosa is not a runtime dependency; the test compares it
    with librosa.
    """
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_pts = np.linspace(
        _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sr / 2.0]))[0], n_mels + 2
    )
    mel_f = _mel_to_hz(mel_pts)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    weights.flags.writeable = False
    return weights


@lru_cache(maxsize=1)
def _frontend_constants() -> tuple[Tensor, Tensor]:
    window = torch.hann_window(FFT_SIZE, periodic=True, dtype=torch.float32)
    fb_t = torch.from_numpy(mel_filterbank().T.copy())  # (257, 96)
    return window, fb_t


def _log_mel_batch(y: Tensor) -> Tensor:
    """(B, samples) float32 -> (B, frames, 96) log-mel, frames = 1 + samples // 256."""
    window, fb_t = _frontend_constants()
    pad = FFT_SIZE // 2
    if y.shape[-1] > pad:
        y = F.pad(y[:, None], (pad, pad), mode="reflect")[:, 0]
    else:  # torch's reflect needs pad < length; numpy repeats the reflection like librosa
        y = torch.from_numpy(np.pad(y.numpy(), ((0, 0), (pad, pad)), mode="reflect"))
    spec = torch.stft(y, FFT_SIZE, FFT_HOP, window=window, center=False, return_complex=True)
    power = torch.view_as_real(spec).square().sum(-1)  # (B, 257, frames)
    mel = torch.matmul(power.transpose(1, 2), fb_t)
    return torch.log10(mel * 10000.0 + 1.0)


def musicnn_log_mel(y: np.ndarray) -> Tensor:
    """Log-mel spectrogram (n_frames, 96) of a whole 16 kHz mono signal, as musicnn computes it.

    The log is ``log10(10000 * mel + 1)`` computed in float32. The original casts the mel to
    float16 first, which overflows to inf for mel power above ~6.55 (``log-mel > 4.8``), common on
    loud masters; TensorFlow then silently turns the resulting NaNs into zeros after ReLU. We
    deliberately do not copy that: on audio that stays finite in float16 the two agree to float16
    rounding (~7e-5 in tag probabilities on the test clip), on loud audio ours is the sane one.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"expected a mono signal of shape (samples,), got {y.shape}")
    with torch.inference_mode():
        return _log_mel_batch(torch.from_numpy(y)[None])[0]


def mel_patches(mel: Tensor) -> Tensor:
    """Cut a (n_frames, 96) log-mel into non-overlapping (n_patches, 187, 96) patches.

    Same slicing as ``musicnn.extractor.batch_data`` with the default ``input_overlap=False``:
    patch i is frames [187 i, 187 i + 187); the trailing partial patch is dropped, so a signal
    shorter than 187 frames (~2.99 s) gives zero patches.
    """
    if mel.ndim != 2 or mel.shape[1] != N_MELS:
        raise ParameterError(
            f"expected a log-mel of shape (n_frames, {N_MELS}), got {tuple(mel.shape)}"
        )
    n = mel.shape[0] // N_FRAMES
    return mel[: n * N_FRAMES].reshape(n, N_FRAMES, N_MELS)


# ----------------------------------------------------------------------------- networks


def _bn_affine(t: dict[str, Tensor], name: str) -> tuple[Tensor, Tensor]:
    """Inference-mode batch norm as y = x * scale + shift."""
    scale = t[f"{name}/gamma"] / torch.sqrt(t[f"{name}/moving_variance"] + BN_EPS)
    shift = t[f"{name}/beta"] - t[f"{name}/moving_mean"] * scale
    return scale, shift


def _pool_bn(z: Tensor, sign: Tensor, scale: Tensor, shift: Tensor, dim: int) -> Tensor:
    """max over ``dim`` of BN(ReLU(conv)) without an element-wise pass over the full map.

    BN is monotonic per channel: where its scale is positive, max(BN(ReLU c)) = BN(ReLU(max c));
    where it is negative the max comes from min c = -max(-c). At load time the convolution of
    those channels is negated (``sign`` = -1), so ``z`` = sign * c and one max serves both.
    """
    return torch.relu(z.amax(dim) * sign) * scale + shift


class _MusicnnNet(nn.Module):
    """The musicnn graph of ``musicnn.models.build_musicnn`` in eval mode, batch norms folded."""

    penultimate_dim = 200

    def __init__(self, num_classes: int = 50, midend: int = 64, backend: int = 200) -> None:
        super().__init__()
        self.shapes: dict[str, tuple[int, ...]] = {
            "conv2d/kernel": (7, 38, 1, 204),
            "conv2d_1/kernel": (7, 67, 1, 204),
            "conv2d_2/kernel": (128, 1, 1, 51),
            "conv2d_3/kernel": (64, 1, 1, 51),
            "conv2d_4/kernel": (32, 1, 1, 51),
            "conv2d_5/kernel": (7, 561, 1, midend),
            "conv2d_6/kernel": (7, midend, 1, midend),
            "conv2d_7/kernel": (7, midend, 1, midend),
            "dense/kernel": (2 * (561 + 3 * midend), backend),
            "dense_1/kernel": (backend, num_classes),
        }
        for i in range(8):
            self.shapes[f"conv2d{'_' + str(i) if i else ''}/bias"] = (
                self.shapes[f"conv2d{'_' + str(i) if i else ''}/kernel"][-1],
            )
        self.shapes["dense/bias"] = (backend,)
        self.shapes["dense_1/bias"] = (num_classes,)
        bn_sizes = [
            1,
            204,
            204,
            51,
            51,
            51,
            midend,
            midend,
            midend,
            2 * (561 + 3 * midend),
            backend,
        ]
        for i, n in enumerate(bn_sizes):
            for p in ("beta", "gamma", "moving_mean", "moving_variance"):
                self.shapes[f"batch_normalization{'_' + str(i) if i else ''}/{p}"] = (n,)
        z = torch.zeros
        self.register_buffer("in_scale", z(1))
        self.register_buffer("in_shift", z(1))
        for name, shape in [
            ("w74", (204, 1, 38, 7)),
            ("w77", (204, 1, 67, 7)),
            ("ws1", (51, 1, 128)),
            ("ws2", (51, 1, 64)),
            ("ws3", (51, 1, 32)),
            ("wm1", (midend, 561, 7)),
            ("wm2", (midend, midend, 7)),
            ("wm3", (midend, midend, 7)),
            ("wd", (backend, 2 * (561 + 3 * midend))),
            ("wo", (num_classes, backend)),
        ]:
            self.register_buffer(name, z(shape))
        for name, n in [
            ("b74", 204),
            ("b77", 204),
            ("bs1", 51),
            ("bs2", 51),
            ("bs3", 51),
            ("bm1", midend),
            ("bm2", midend),
            ("bm3", midend),
            ("bd", backend),
            ("bo", num_classes),
        ]:
            self.register_buffer(name, z(n))
        for i, n in enumerate(bn_sizes[1:9] + bn_sizes[10:], start=1):
            self.register_buffer(f"s{i}", z(n))
            self.register_buffer(f"t{i}", z(n))
        for i, n in enumerate(bn_sizes[1:6], start=1):
            self.register_buffer(f"g{i}", z(n))

    @torch.no_grad()
    def load_tf(self, t: dict[str, Tensor]) -> None:
        """Fill the (folded) buffers from TensorFlow-named tensors whose shapes were checked."""
        self.in_scale, self.in_shift = _bn_affine(t, "batch_normalization")
        conv2d = [f"conv2d{'_' + str(i) if i else ''}" for i in range(8)]
        # (time, freq, 1, 204) -> (204, 1, freq, time): the convs run frequency-major (forward)
        self.w74 = t[f"{conv2d[0]}/kernel"].permute(3, 2, 1, 0).contiguous()
        self.w77 = t[f"{conv2d[1]}/kernel"].permute(3, 2, 1, 0).contiguous()
        self.b74, self.b77 = t[f"{conv2d[0]}/bias"], t[f"{conv2d[1]}/bias"]
        for i, name in enumerate(("ws1", "ws2", "ws3")):  # (k, 1, 1, 51) -> (51, 1, k)
            k = t[f"{conv2d[2 + i]}/kernel"]
            setattr(self, name, k[:, 0, 0, :].T.unsqueeze(1).contiguous())
            setattr(self, "b" + name[1:], t[f"{conv2d[2 + i]}/bias"])
        for i, name in enumerate(("wm1", "wm2", "wm3")):  # (7, C, 1, 64) -> (64, C, 7)
            k = t[f"{conv2d[5 + i]}/kernel"]
            setattr(self, name, k[:, :, 0, :].permute(2, 1, 0).contiguous())
            setattr(self, "b" + name[1:], t[f"{conv2d[5 + i]}/bias"])
        for i in range(1, 9):
            s, sh = _bn_affine(t, f"batch_normalization_{i}")
            setattr(self, f"s{i}", s)
            setattr(self, f"t{i}", sh)
        # front-end convs feed a max pool: negate channels whose BN scale is negative (_pool_bn)
        for i, name in enumerate(("74", "77", "s1", "s2", "s3"), start=1):
            sign = torch.where(getattr(self, f"s{i}") < 0, -1.0, 1.0)
            setattr(self, f"g{i}", sign)
            w = getattr(self, "w" + name)
            setattr(self, "w" + name, w * sign.view(-1, *([1] * (w.ndim - 1))))
            setattr(self, "b" + name, getattr(self, "b" + name) * sign)
        # back-end BN (no padding involved) folds exactly into the dense layer that follows it
        s9, t9 = _bn_affine(t, "batch_normalization_9")
        wd = t["dense/kernel"]  # (1506, 200)
        self.wd = (wd * s9[:, None]).T.contiguous()
        self.bd = t["dense/bias"] + t9 @ wd
        self.s9, self.t9 = _bn_affine(t, "batch_normalization_10")
        self.wo = t["dense_1/kernel"].T.contiguous()
        self.bo = t["dense_1/bias"]

    def _post(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """(sign, BN scale, BN shift) of front-end branch i, shaped to broadcast over time."""
        return tuple(getattr(self, f"{p}{i}")[:, None] for p in "gst")  # type: ignore[return-value]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x * self.in_scale + self.in_shift  # (B, T, 96)
        n_t = x.shape[1]
        # timbral: zero-pad time by 3 after the input BN, valid convs, max over frequency.
        # Run with frequency as the height and time as the width: oneDNN is faster that way
        # round for these one-channel convs, and the max then reduces over a non-inner axis
        # (1.5-1.6x for the pair: bench/bench_timbral_conv.py)
        xt = F.pad(x, (0, 0, 3, 3)).transpose(1, 2).unsqueeze(1).contiguous()  # (B, 1, 96, T+6)
        f74 = _pool_bn(F.conv2d(xt, self.w74, self.b74), *self._post(1), dim=2)
        f77 = _pool_bn(F.conv2d(xt, self.w77, self.b77), *self._post(2), dim=2)
        # temporal: 1-D convs along time, one frequency bin at a time, TF 'same' padding
        xf = x.transpose(1, 2).reshape(-1, 1, n_t)  # (B*96, 1, T)
        temporal = []
        for i, (w, b) in enumerate(
            ((self.ws1, self.bs1), (self.ws2, self.bs2), (self.ws3, self.bs3)), start=3
        ):
            k = w.shape[-1]
            z = F.conv1d(F.pad(xf, ((k - 1) // 2, k // 2)), w, b)  # (B*96, 51, T)
            z = z.view(x.shape[0], N_MELS, 51, n_t)
            temporal.append(_pool_bn(z, *self._post(i), dim=1))
        front = torch.cat([f74, f77, *temporal], dim=1)  # (B, 561, T)
        # mid-end: conv over (time, all features), zero padding after the previous BN
        m1 = torch.relu(F.conv1d(front, self.wm1, self.bm1, padding=3))
        m1 = m1 * self.s6[:, None] + self.t6[:, None]
        m2 = torch.relu(F.conv1d(m1, self.wm2, self.bm2, padding=3))
        m2 = m2 * self.s7[:, None] + self.t7[:, None] + m1
        m3 = torch.relu(F.conv1d(m2, self.wm3, self.bm3, padding=3))
        m3 = m3 * self.s8[:, None] + self.t8[:, None] + m2
        feats = torch.cat([front, m1, m2, m3], dim=1)  # (B, 753, T)
        pooled = torch.stack([feats.amax(2), feats.mean(2)], dim=2).flatten(1)  # interleaved
        dense = torch.relu(F.linear(pooled, self.wd, self.bd))
        penultimate = dense * self.s9 + self.t9
        probs = torch.sigmoid(F.linear(penultimate, self.wo, self.bo))
        return probs, penultimate


class _VggNet(nn.Module):
    """The vgg baseline of ``musicnn.models.vgg`` (128 filters) in eval mode."""

    penultimate_dim = 256
    _POOLS = (
        ((4, 1), (2, 2)),
        ((2, 2), (2, 2)),
        ((2, 2), (2, 2)),
        ((2, 2), (2, 2)),
        ((4, 4), (4, 4)),
    )

    def __init__(self, num_classes: int = 50, filters: int = 128) -> None:
        super().__init__()
        self.shapes: dict[str, tuple[int, ...]] = {}
        for i in range(1, 6):
            self.shapes[f"{i}CNN/kernel"] = (3, 3, 1 if i == 1 else filters, filters)
            self.shapes[f"{i}CNN/bias"] = (filters,)
        for i in range(6):
            for p in ("beta", "gamma", "moving_mean", "moving_variance"):
                self.shapes[f"batch_normalization{'_' + str(i) if i else ''}/{p}"] = (
                    1 if i == 0 else filters,
                )
        self.shapes["dense/kernel"] = (2 * filters, num_classes)
        self.shapes["dense/bias"] = (num_classes,)
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5)
        )
        self.register_buffer("in_scale", torch.zeros(1))
        self.register_buffer("in_shift", torch.zeros(1))
        self.register_buffer("bn_scale", torch.zeros(5, filters))
        self.register_buffer("bn_shift", torch.zeros(5, filters))
        self.dense = nn.Linear(2 * filters, num_classes)

    @torch.no_grad()
    def load_tf(self, t: dict[str, Tensor]) -> None:
        """Fill the layers from TensorFlow-named tensors whose shapes were checked."""
        self.in_scale, self.in_shift = _bn_affine(t, "batch_normalization")
        for i, conv in enumerate(self.convs):
            conv.weight.copy_(t[f"{i + 1}CNN/kernel"].permute(3, 2, 0, 1))
            conv.bias.copy_(t[f"{i + 1}CNN/bias"])
            self.bn_scale[i], self.bn_shift[i] = _bn_affine(t, f"batch_normalization_{i + 1}")
        self.dense.weight.copy_(t["dense/kernel"].T)
        self.dense.bias.copy_(t["dense/bias"])
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = (x * self.in_scale + self.in_shift).unsqueeze(1)  # (B, 1, T, 96)
        for i, (conv, (kernel, stride)) in enumerate(zip(self.convs, self._POOLS, strict=True)):
            h = torch.relu(conv(h))
            h = h * self.bn_scale[i][:, None, None] + self.bn_shift[i][:, None, None]
            h = F.max_pool2d(h, kernel, stride)
        flat = h.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as tf.layers.flatten
        return torch.sigmoid(self.dense(flat)), flat


# ----------------------------------------------------------------------------- public API


def available_taggers() -> list[str]:
    """Names accepted by :meth:`MusicnnTagger.from_pretrained`."""
    return list(_ARCHS)


class MusicnnTagger(nn.Module):
    """A pretrained musicnn (or vgg) tagger: log-mel patches -> 50 tag probabilities.

    ``forward`` takes (B, 187, 96) log-mel patches and returns ``(probs (B, 50), penultimate)``,
    penultimate being the 200-d batch-normalised dense layer (256-d flattened pool5 for vgg).
    """

    def __init__(self, name: str, tags: list[str]) -> None:
        super().__init__()
        if name not in _ARCHS:
            raise ModelLoadError(
                f"unknown musicnn tagger {name!r}; available: {', '.join(available_taggers())}"
            )
        self.name = name
        self.tags = list(tags)
        self.net: nn.Module = (
            _MusicnnNet(len(tags)) if _ARCHS[name] == "musicnn" else _VggNet(len(tags))
        )
        self.embedding_dim: int = self.net.penultimate_dim

    @classmethod
    def from_pretrained(cls, name: str = "MTT_musicnn") -> MusicnnTagger:
        """Load one of the packaged taggers (no network), in eval mode."""
        if name not in _ARCHS:
            raise ModelLoadError(
                f"unknown musicnn tagger {name!r}; available: {', '.join(available_taggers())}"
            )
        folder = resources.files("melodex") / "weights" / "musicnn"
        weights_file = folder / f"{name}.safetensors"
        tags_file = folder / f"{name}.tags.json"
        try:
            tensors = load_safetensors(weights_file.read_bytes())
            tags = json.loads(tags_file.read_text(encoding="utf-8"))
        except Exception as exc:  # safetensors' own error type is not part of its public API
            raise ModelLoadError(f"{weights_file}: cannot load musicnn weights ({exc})") from exc
        model = cls(name, tags)
        model.load_tf_weights(tensors, source=str(weights_file))
        return model.eval()

    def load_tf_weights(self, tensors: dict[str, Tensor], *, source: str = "<tensors>") -> None:
        """Check names and shapes against the architecture, then load (folding batch norms)."""
        shapes: dict[str, tuple[int, ...]] = self.net.shapes
        missing = sorted(set(shapes) - set(tensors))
        if missing:
            raise ModelLoadError(f"{source}: missing tensor(s) for {self.name}: {missing[:5]}")
        unexpected = sorted(set(tensors) - set(shapes))
        if unexpected:
            raise ModelLoadError(
                f"{source}: unexpected tensor(s) for {self.name}: {unexpected[:5]}"
            )
        for key, shape in shapes.items():
            if tuple(tensors[key].shape) != shape:
                raise ModelLoadError(
                    f"{source}: tensor {key!r} has shape {tuple(tensors[key].shape)}, "
                    f"{self.name} expects {shape}"
                )
        self.net.load_tf({k: v.float() for k, v in tensors.items()})

    def forward(self, patches: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 187, 96) log-mel patches -> (probs (B, 50), penultimate (B, D))."""
        if patches.ndim != 3 or patches.shape[2] != N_MELS:
            raise ParameterError(
                f"expected patches of shape (B, T, {N_MELS}), got {tuple(patches.shape)}"
            )
        return self.net(patches)

    def tag_windows(
        self, windows: np.ndarray, *, batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tag (B, WINDOW_SAMPLES) float32 windows of 16 kHz audio; return (probs, penultimate).

        Each window's log-mel is computed on its own (reflect-padded at its edges) and its first
        187 frames are used, so windows cut back to back from a track give the original's patch
        grid; only the frames within 256 samples of a window edge differ from whole-track slicing.
        """
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != WINDOW_SAMPLES:
            raise ParameterError(
                f"expected windows of shape (B, {WINDOW_SAMPLES}), got {windows.shape}"
            )
        probs, pens = [], []
        with torch.inference_mode():
            for start in range(0, windows.shape[0], batch_size):
                chunk = torch.from_numpy(windows[start : start + batch_size])
                mel = _log_mel_batch(chunk)[:, :N_FRAMES]
                p, pen = self.net(mel)
                probs.append(p.numpy())
                pens.append(pen.numpy())
        if not probs:
            return (
                np.zeros((0, len(self.tags)), np.float32),
                np.zeros((0, self.embedding_dim), np.float32),
            )
        return np.concatenate(probs), np.concatenate(pens)


def window_log_mels(windows: np.ndarray) -> Tensor:
    """(B, WINDOW_SAMPLES) 16 kHz windows -> (B, 187, 96) patches, one batched STFT for all.

    Shared by several taggers at once (their front-end is identical), see ``tag_windows``.
    """
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 2 or windows.shape[1] != WINDOW_SAMPLES:
        raise ParameterError(
            f"expected windows of shape (B, {WINDOW_SAMPLES}), got {windows.shape}"
        )
    with torch.inference_mode():
        return _log_mel_batch(torch.from_numpy(windows))[:, :N_FRAMES]
