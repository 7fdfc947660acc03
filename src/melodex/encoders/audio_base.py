"""What every trainable audio encoder shares: its JSON-able config and the front-end it expects."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from torch import Tensor, nn

from melodex.errors import ModelLoadError, ParameterError
from melodex.frontends import Frontend, get_frontend


def _tuplify(value: Any) -> Any:
    """JSON turns tuples into lists; turn them back so a reloaded config compares equal."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


class EncoderConfig:
    """Mixin for the frozen config dataclasses: list->tuple normalisation and dict round-trips.

    Every config has a ``frontend`` field: a preset name of :data:`melodex.frontends.FRONTENDS` or
    a front-end's ``to_dict()``.
    """

    frontend: str | dict[str, Any]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, _tuplify(getattr(self, f.name)))
        get_frontend(self.frontend)  # fail early on a bad front-end

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<config>") -> Any:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelLoadError(f"{source}: unknown {cls.__name__} parameter(s) {unknown}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{source}: invalid {cls.__name__}: {exc}") from exc

    def get_frontend(self) -> Frontend:
        return get_frontend(self.frontend)


class AudioEncoder(nn.Module):
    """Protocol of the trainable audio encoders: ``forward(x) -> (B, out_dim)``.

    ``x`` is the output batch of ``self.frontend`` (log-mel (B, frames, mels) or handcrafted
    (B, feature_dim)); ``config`` rebuilds the module via
    :func:`melodex.encoders.audio.build_audio_encoder`.
    """

    name: ClassVar[str]
    out_dim: int
    config: Any
    frontend: Frontend

    def _init_common(self, config: EncoderConfig, out_dim: int) -> None:
        self.config = config
        self.frontend = config.get_frontend()
        self.out_dim = out_dim

    def _check_mel(self, x: Tensor) -> None:
        n_mels = self.frontend.output_shape[-1]
        if x.ndim != 3 or x.shape[2] != n_mels:
            raise ParameterError(
                f"{self.name}: expected log-mels of shape (B, frames, {n_mels}), "
                f"got {tuple(x.shape)}"
            )
