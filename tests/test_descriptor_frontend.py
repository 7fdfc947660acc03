"""The AcousticBrainz descriptor front-end: the real MARD document in, 369 values out, and a
missing or malformed document is an error naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from melodex.data.acousticbrainz import DESCRIPTOR_DIM, descriptor_vector
from melodex.encoders.audio import audio_encoder_from_spec, build_audio_encoder
from melodex.errors import DatasetFormatError, MelodexError, ParameterError
from melodex.frontends import DescriptorFrontend, frontend_to_config, get_frontend

REAL_DOC = next(
    (Path(__file__).parent / "fixtures" / "mard" / "acousticbrainz_descriptors").iterdir()
)


def test_reads_the_real_document_as_one_window() -> None:
    frontend = get_frontend("acousticbrainz")
    assert isinstance(frontend, DescriptorFrontend) and frontend.reads_files
    x, length = frontend.read_document(REAL_DOC)
    assert x.shape == (1, DESCRIPTOR_DIM) == (1, 369) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], descriptor_vector(REAL_DOC))
    assert length == pytest.approx(107.572242737)  # metadata.audio_properties.length
    assert frontend_to_config(frontend) == "acousticbrainz"
    assert get_frontend(frontend.to_dict()) == frontend
    assert len(frontend.feature_names()) == frontend.feature_dim == 369


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, r"not found: .*gone\.json"),
        ('{\n  "lowlevel": {"mfcc": \n', r"bad\.json:3: invalid JSON"),
        (b'{"lowlevel": "\xff"}', r"bad\.json:1: not UTF-8 text \(byte 0xff\)"),
        ("[1, 2]", r"bad\.json: not an AcousticBrainz low-level document"),
        ('{"lowlevel": {"mfcc": {"mean": [1, 2]}}}', r"bad\.json: lowlevel\.mfcc\.mean has shape"),
    ],
)
def test_missing_or_malformed_document_names_the_file(
    tmp_path: Path, content: str | bytes | None, match: str
) -> None:
    path = tmp_path / ("gone.json" if content is None else "bad.json")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DatasetFormatError, match=match) as info:
        DescriptorFrontend().read(path)
    assert isinstance(info.value, MelodexError)


def test_a_nan_field_is_refused(tmp_path: Path) -> None:
    doc = json.loads(REAL_DOC.read_text())
    doc["lowlevel"]["spectral_rolloff"]["mean"] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(doc))  # writes a bare NaN
    with pytest.raises(DatasetFormatError, match=r"nan\.json: spectral_rolloff has non-finite"):
        DescriptorFrontend().read(tmp_path / "nan.json")


def test_waveforms_are_refused() -> None:
    with pytest.raises(ParameterError, match="reads AcousticBrainz JSON documents"):
        DescriptorFrontend()(torch.zeros(1, 44100))


def test_the_mlp_branch_takes_descriptors_and_standardises_them() -> None:
    encoder = build_audio_encoder("handcrafted_mlp", frontend="acousticbrainz")
    assert encoder.in_dim == 369
    x = np.stack([descriptor_vector(REAL_DOC) * s for s in (0.5, 1.0, 2.0)])
    encoder.fit_standardisation(x)
    np.testing.assert_allclose(encoder.feature_mean.numpy(), x.mean(0), rtol=1e-5)
    same = audio_encoder_from_spec(
        json.loads(json.dumps({"name": encoder.name, "params": encoder.config.to_dict()}))
    )
    assert isinstance(same.frontend, DescriptorFrontend)
    encoder.eval()
    assert encoder(torch.from_numpy(x)).shape == (3, 128)
