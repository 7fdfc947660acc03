"""TensorBundle reader: round trips through a tiny writer made here, corruption, snappy, CRC."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from melodex.encoders.tensorbundle import (
    crc32c,
    masked_crc32c,
    read_checkpoint,
    read_index,
    snappy_decompress,
)
from melodex.errors import ModelLoadError

MAGIC = 0xDB4775248B80FB57
DTYPE_ENUM = {np.dtype("float32"): 1, np.dtype("int64"): 9, np.dtype("float16"): 19}
RELEASE_WHEEL = (
    Path(__file__).resolve().parents[1] / ".cache/musicnn-wheel/musicnn-0.1.0-py3-none-any.whl"
)


# ----------------------------------------------------------------------------- a minimal writer


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire) + payload


def entry_proto(arr: np.ndarray, offset: int) -> bytes:
    dims = b"".join(
        field(2, 2, varint(len(d)) + d) for d in (field(1, 0, varint(s)) for s in arr.shape)
    )
    raw = arr.tobytes()
    msg = field(1, 0, varint(DTYPE_ENUM[arr.dtype]))
    msg += field(2, 2, varint(len(dims)) + dims)
    msg += field(4, 0, varint(offset)) + field(5, 0, varint(len(raw)))
    msg += field(6, 5, struct.pack("<I", masked_crc32c(raw)))
    return msg


def snappy_literal(data: bytes) -> bytes:
    """Encode as one literal (valid snappy, no compression): enough to exercise the decoder."""
    n = len(data) - 1
    if n < 60:
        return varint(len(data)) + bytes([n << 2]) + data
    return varint(len(data)) + bytes([62 << 2]) + n.to_bytes(3, "little") + data


def block(
    entries: list[tuple[bytes, bytes]], restart_every: int = 2, snappy: bool = False
) -> bytes:
    out = bytearray()
    restarts = []
    prev = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_every == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        prev = key
    for r in restarts or [0]:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts or [0]))
    contents = snappy_literal(bytes(out)) if snappy else bytes(out)
    ctype = bytes([1 if snappy else 0])
    return contents + ctype + struct.pack("<I", masked_crc32c(contents + ctype))


def write_bundle(prefix: Path | str, tensors: dict[str, np.ndarray], snappy: bool = False) -> None:
    data = bytearray()
    entries = [(b"", field(1, 0, varint(1)) + field(3, 2, varint(2) + field(1, 0, varint(1))))]
    for name in sorted(tensors):
        entries.append((name.encode(), entry_proto(tensors[name], len(data))))
        data += tensors[name].tobytes()
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    data_block = block(entries, snappy=snappy)
    index = block([(b"\xff", varint(0) + varint(len(data_block) - 5))])
    handle = varint(len(data_block)) + varint(len(index) - 5)
    footer = (varint(0) + varint(0) + handle).ljust(40, b"\0") + struct.pack("<Q", MAGIC)
    Path(f"{prefix}.index").write_bytes(data_block + index + footer)


@pytest.fixture
def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv/kernel": rng.standard_normal((7, 38, 1, 4)).astype(np.float32),
        "conv/bias": rng.standard_normal(4).astype(np.float32),
        "dense/kernel": rng.standard_normal((300, 20)).astype(np.float32),  # > vectorised CRC lane
        "global_step": np.array(12345, dtype=np.int64),
        "half": np.arange(6, dtype=np.float16).reshape(2, 3),
    }


# ----------------------------------------------------------------------------- tests


def test_crc32c_known_values() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    big = np.random.default_rng(1).integers(0, 256, 100_003, dtype=np.uint8).tobytes()
    crc = 0xFFFFFFFF  # bytewise reference
    for b in big:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    assert crc32c(big) == crc ^ 0xFFFFFFFF


@pytest.mark.parametrize("snappy", [False, True])
def test_round_trip(tmp_path: Path, tensors: dict[str, np.ndarray], snappy: bool) -> None:
    write_bundle(tmp_path / "model", tensors, snappy=snappy)
    out = read_checkpoint(tmp_path / "model")
    assert sorted(out) == sorted(tensors)
    for name, arr in tensors.items():
        assert out[name].dtype == arr.dtype and out[name].shape == arr.shape
        np.testing.assert_array_equal(out[name], arr)
    num_shards, entries = read_index(tmp_path / "model")
    assert num_shards == 1 and entries["conv/kernel"].shape == (7, 38, 1, 4)


def test_folder_prefix(tmp_path: Path, tensors: dict[str, np.ndarray]) -> None:
    """musicnn's layout: the prefix is the folder itself, files are '<dir>/.index'."""
    (tmp_path / "MTT").mkdir()
    write_bundle(str(tmp_path / "MTT") + "/", tensors)
    assert (tmp_path / "MTT" / ".index").exists()
    assert set(read_checkpoint(str(tmp_path / "MTT") + "/")) == set(tensors)


def test_corrupted_tensor_bytes(tmp_path: Path, tensors: dict[str, np.ndarray]) -> None:
    write_bundle(tmp_path / "model", tensors)
    data_path = tmp_path / "model.data-00000-of-00001"
    raw = bytearray(data_path.read_bytes())
    raw[10] ^= 0x01
    data_path.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match=r"model\.data-00000-of-00001: CRC mismatch"):
        read_checkpoint(tmp_path / "model")


def test_corrupted_index_block(tmp_path: Path, tensors: dict[str, np.ndarray]) -> None:
    write_bundle(tmp_path / "model", tensors)
    index_path = tmp_path / "model.index"
    raw = bytearray(index_path.read_bytes())
    raw[20] ^= 0x40
    index_path.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match=r"model\.index: malformed.*CRC mismatch"):
        read_checkpoint(tmp_path / "model")


def test_truncated_files(tmp_path: Path, tensors: dict[str, np.ndarray]) -> None:
    write_bundle(tmp_path / "model", tensors)
    index_path = tmp_path / "model.index"
    index_path.write_bytes(index_path.read_bytes()[:-3])
    with pytest.raises(ModelLoadError, match=r"model\.index: .*magic"):
        read_checkpoint(tmp_path / "model")
    index_path.write_bytes(b"short")
    with pytest.raises(ModelLoadError, match="shorter than"):
        read_checkpoint(tmp_path / "model")
    write_bundle(tmp_path / "model", tensors)
    data_path = tmp_path / "model.data-00000-of-00001"
    data_path.write_bytes(data_path.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="runs past the end"):
        read_checkpoint(tmp_path / "model")


def test_missing_files(tmp_path: Path, tensors: dict[str, np.ndarray]) -> None:
    with pytest.raises(ModelLoadError, match=r"nothing\.index: cannot read"):
        read_checkpoint(tmp_path / "nothing")
    write_bundle(tmp_path / "model", tensors)
    (tmp_path / "model.data-00000-of-00001").unlink()
    with pytest.raises(ModelLoadError, match="cannot read checkpoint data"):
        read_checkpoint(tmp_path / "model")


def test_snappy_copies() -> None:
    # a 4-byte literal, an overlapping 1-byte-offset copy, then a 2-byte-offset copy
    stream = varint(4 + 8 + 3) + bytes([3 << 2]) + b"abcd"
    stream += bytes([(4 << 2) | 1, 4])  # copy, 1-byte offset: length 8, offset 4 (overlapping)
    stream += bytes([(2 << 2) | 2]) + (2).to_bytes(2, "little")  # length 3, offset 2
    assert snappy_decompress(stream) == b"abcd" + b"abcdabcd" + b"cdc"
    with pytest.raises(Exception, match="offset"):
        snappy_decompress(varint(4) + bytes([(0 << 2) | 1, 9]))


@pytest.fixture(scope="module")
def release_wheel() -> Path:
    """The musicnn==0.1.0 wheel from PyPI, fetched (sha256-pinned) by ``make setup``."""
    if not RELEASE_WHEEL.is_file():
        pytest.fail(f"{RELEASE_WHEEL}: missing; `make setup` fetches it (pip download)")
    return RELEASE_WHEEL


def test_real_musicnn_checkpoint_matches_packaged_weights(
    release_wheel: Path, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    from melodex.encoders import musicnn

    folder = tmp_path / "MTT_musicnn"
    folder.mkdir()
    with zipfile.ZipFile(release_wheel) as zf:
        for suffix in (".index", ".data-00000-of-00001"):
            (folder / suffix).write_bytes(zf.read(f"musicnn/MTT_musicnn/{suffix}"))
    ckpt = read_checkpoint(str(folder) + "/")
    assert len(ckpt) == 150
    packaged = load_file(
        str(Path(musicnn.__file__).parents[1] / "weights" / "musicnn" / "MTT_musicnn.safetensors")
    )
    assert len(packaged) == 64
    for name, arr in packaged.items():
        np.testing.assert_array_equal(ckpt[name], arr)


def test_converting_the_release_remakes_the_shipped_files(
    release_wheel: Path, tmp_path: Path
) -> None:
    """scripts/convert_musicnn_weights.py on the real wheel gives the shipped files, byte for
    byte: the weights, tag lists and NOTICE in the package are exactly the release's."""
    from melodex.encoders import musicnn
    from tests.script_modules import load_script

    convert = load_script("scripts/convert_musicnn_weights.py").convert
    written = convert(release_wheel, tmp_path)
    shipped = Path(musicnn.__file__).parents[1] / "weights" / "musicnn"
    assert sorted(p.name for p in written) == sorted(
        p.name for p in shipped.iterdir() if p.is_file()
    )
    for path in written:
        assert path.read_bytes() == (shipped / path.name).read_bytes(), path.name
