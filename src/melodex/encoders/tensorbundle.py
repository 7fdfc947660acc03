"""Read TensorFlow TensorBundle checkpoints with numpy alone.

Pretrained weights such as musicnn's ship only as TensorFlow checkpoints. Installing TensorFlow
(~2.6 GB) just to read ~800k floats is out of proportion, so this module reads the format directly:

- ``<prefix>.index`` is an SSTable (LevelDB table format): a 48-byte footer pointing at an index
  block, whose entries point at data blocks. Each block is prefix-compressed key/value entries
  followed by restart offsets and a 5-byte trailer (compression type, masked CRC-32C).
  The value under the empty key is a ``BundleHeaderProto``; every other key is a tensor name and
  its value a ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked CRC-32C).
- ``<prefix>.data-SSSSS-of-NNNNN`` holds the raw little-endian tensor bytes.

Every block and every tensor is checked against its CRC, so a corrupted download fails loudly
instead of producing a model with garbage weights. Blocks may be snappy-compressed; a small
pure-Python snappy decoder is included because TensorFlow's writer can use it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melodex.errors import ModelLoadError

__all__ = [
    "TensorEntry",
    "crc32c",
    "masked_crc32c",
    "read_checkpoint",
    "read_index",
    "snappy_decompress",
]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_LEN = 48
_BLOCK_TRAILER_LEN = 5
_NO_COMPRESSION = 0
_SNAPPY_COMPRESSION = 1
_MASK_DELTA = 0xA282EAD8

# tensorflow/core/framework/types.proto -> numpy (little-endian)
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


class _MalformedError(Exception):
    """Internal: raised deep in parsing, turned into ModelLoadError naming the file."""


# ----------------------------------------------------------------------------- CRC-32C


def _make_crc_table() -> np.ndarray:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table[i] = c
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_LIST = [int(v) for v in _CRC_TABLE]
_LANE_LEN = 256  # bytes per lane in the vectorised CRC


def _crc_bytewise(reg: int, data: bytes) -> int:
    table = _CRC_TABLE_LIST
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _crc_register(data: bytes, reg: int) -> int:
    """Advance a raw (unconditioned) CRC-32C register over ``data``.

    Large inputs are cut into equal lanes whose raw CRCs are computed side by side with numpy;
    the lanes are then chained with the linear "advance over L zero bytes" map, which is learnt
    in the same loop by running the 32 basis vectors over zeros. CRC is linear over GF(2), so
    ``reg(A||B) = shift_len(B)(reg(A)) ^ raw(B)``.
    """
    n_lanes = len(data) // _LANE_LEN
    if n_lanes < 8:
        return _crc_bytewise(reg, data)
    body = np.frombuffer(data, dtype=np.uint8, count=n_lanes * _LANE_LEN)
    cols = body.reshape(n_lanes, _LANE_LEN).T.astype(np.uint32)  # (L, lanes)
    cols = np.concatenate([cols, np.zeros((_LANE_LEN, 32), dtype=np.uint32)], axis=1)
    regs = np.zeros(n_lanes + 32, dtype=np.uint32)
    regs[n_lanes:] = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    table = _CRC_TABLE
    for row in cols:
        regs = table[(regs ^ row) & 0xFF] ^ (regs >> np.uint32(8))
    basis = regs[n_lanes:]
    # byte-wise tables of the linear shift map: shift(x) = xor of shift(byte_k << 8k)
    bits = (np.arange(256, dtype=np.uint32)[:, None] >> np.arange(8, dtype=np.uint32)) & 1
    shift_tables = []
    for k in range(4):
        cols_k = basis[8 * k : 8 * k + 8]
        masked = np.where(bits.astype(bool), cols_k[None, :], np.uint32(0))
        shift_tables.append([int(v) for v in np.bitwise_xor.reduce(masked, axis=1)])
    t0, t1, t2, t3 = shift_tables
    for raw in regs[:n_lanes].tolist():
        reg = t0[reg & 0xFF] ^ t1[(reg >> 8) & 0xFF] ^ t2[(reg >> 16) & 0xFF] ^ t3[reg >> 24] ^ raw
    return _crc_bytewise(reg, data[n_lanes * _LANE_LEN :])


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as TensorFlow and LevelDB compute it."""
    return _crc_register(bytes(data), 0xFFFFFFFF) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC that LevelDB tables and TensorBundle entries store."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- snappy


def snappy_decompress(buf: bytes) -> bytes:
    """Decode a raw snappy block (the format LevelDB uses for compressed table blocks)."""
    length, pos = _varint(buf, 0)
    out = bytearray()
    n = len(buf)
    while pos < n:
        tag = buf[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                if pos + extra > n:
                    raise _MalformedError("snappy literal length runs past the block")
                size = int.from_bytes(buf[pos : pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > n:
                raise _MalformedError("snappy literal runs past the block")
            out += buf[pos : pos + size]
            pos += size
            continue
        if kind == 1:
            if pos >= n:
                raise _MalformedError("truncated snappy copy")
            size = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | buf[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            if pos + width > n:
                raise _MalformedError("truncated snappy copy")
            size = 1 + (tag >> 2)
            offset = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise _MalformedError(
                f"snappy copy offset {offset} outside the {len(out)} bytes decoded"
            )
        start = len(out) - offset
        if offset >= size:
            out += out[start : start + size]
        else:  # overlapping copy repeats the pattern
            for i in range(size):
                out.append(out[start + i])
    if len(out) != length:
        raise _MalformedError(f"snappy block decoded to {len(out)} bytes, header says {length}")
    return bytes(out)


# ----------------------------------------------------------------------------- protobuf


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise _MalformedError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _MalformedError("varint longer than 10 bytes")


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into (field number, value) pairs, in order."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > n:
                raise _MalformedError("truncated fixed64 field")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > n:
                raise _MalformedError("length-delimited field runs past its message")
            value = bytes(buf[pos : pos + size])
            pos += size
        elif wire == 5:
            if pos + 4 > n:
                raise _MalformedError("truncated fixed32 field")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise _MalformedError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shard(s), from its BundleEntryProto."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims: list[int] = []
    for number, value in _proto_fields(buf):
        if number == 2 and isinstance(value, bytes):
            size = 0
            for dn, dv in _proto_fields(value):
                if dn == 1 and isinstance(dv, int):
                    size = dv - (1 << 64) if dv >= 1 << 63 else dv
            dims.append(size)
        elif number == 3 and value:
            raise _MalformedError("tensor of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> TensorEntry:
    dtype = shard_id = offset = size = 0
    shape: tuple[int, ...] = ()
    crc: int | None = None
    sliced = False
    for number, value in _proto_fields(buf):
        if number == 1 and isinstance(value, int):
            dtype = value
        elif number == 2 and isinstance(value, bytes):
            shape = _parse_shape(value)
        elif number == 3 and isinstance(value, int):
            shard_id = value
        elif number == 4 and isinstance(value, int):
            offset = value
        elif number == 5 and isinstance(value, int):
            size = value
        elif number == 6 and isinstance(value, int):
            crc = value
        elif number == 7:
            sliced = True
    return TensorEntry(name, dtype, shape, shard_id, offset, size, crc, sliced)


# ----------------------------------------------------------------------------- SSTable


def _read_block(data: bytes, offset: int, size: int) -> bytes:
    end = offset + size + _BLOCK_TRAILER_LEN
    if offset < 0 or end > len(data):
        raise _MalformedError(
            f"block at {offset}+{size} runs past the end of the file ({len(data)} B)"
        )
    contents = data[offset : offset + size]
    ctype = data[offset + size]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if masked_crc32c(contents + bytes([ctype])) != stored:
        raise _MalformedError(f"CRC mismatch in block at offset {offset}")
    if ctype == _NO_COMPRESSION:
        return contents
    if ctype == _SNAPPY_COMPRESSION:
        return snappy_decompress(contents)
    raise _MalformedError(f"unknown block compression type {ctype} at offset {offset}")


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise _MalformedError("block shorter than its restart count")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * n_restarts
    if limit < 0:
        raise _MalformedError(f"block claims {n_restarts} restart points, more than fit")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise _MalformedError("block entry runs past its block")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def _table_entries(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < _FOOTER_LEN:
        raise _MalformedError(
            f"file is {len(data)} bytes, shorter than the {_FOOTER_LEN}-byte footer"
        )
    footer = data[-_FOOTER_LEN:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_LEN - 8)
    if magic != _TABLE_MAGIC:
        raise _MalformedError(f"bad table magic 0x{magic:016x} (not an SSTable, or truncated)")
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries: list[tuple[bytes, bytes]] = []
    for _, handle in _block_entries(_read_block(data, index_offset, index_size)):
        block_offset, hpos = _varint(handle, 0)
        block_size, _ = _varint(handle, hpos)
        entries.extend(_block_entries(_read_block(data, block_offset, block_size)))
    return entries


# ----------------------------------------------------------------------------- public API


def _index_path(prefix: str | Path) -> Path:
    # the prefix may be a folder followed by "/" (musicnn's layout gives "<dir>/.index")
    return Path(str(prefix) + ".index")


def read_index(prefix: str | Path) -> tuple[int, dict[str, TensorEntry]]:
    """Parse ``<prefix>.index``; return (number of data shards, entries by tensor name)."""
    path = _index_path(prefix)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read checkpoint index ({exc})") from exc
    try:
        num_shards = 1
        entries: dict[str, TensorEntry] = {}
        for key, value in _table_entries(data):
            if key == b"":
                for number, field in _proto_fields(value):
                    if number == 1 and isinstance(field, int):
                        num_shards = field
                    elif number == 2 and field != 0:
                        raise _MalformedError("big-endian bundles are not supported")
                continue
            name = key.decode("utf-8")
            entries[name] = _parse_entry(name, value)
    except (_MalformedError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: malformed TensorBundle index: {exc}") from exc
    return num_shards, entries


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Load every tensor of a TensorFlow checkpoint as numpy arrays, keyed by variable name.

    ``prefix`` is what TensorFlow's ``Saver`` is given: the index is ``<prefix>.index`` and the
    data ``<prefix>.data-00000-of-00001``. Each tensor is CRC-checked; any inconsistency raises
    :class:`~melodex.errors.ModelLoadError` naming the file.
    """
    num_shards, entries = read_index(prefix)
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for name in sorted(entries):
        entry = entries[name]
        shard_path = Path(f"{prefix}.data-{entry.shard_id:05d}-of-{num_shards:05d}")
        if entry.sliced:
            raise ModelLoadError(f"{shard_path}: tensor {name!r} is partitioned (unsupported)")
        dtype = _DTYPES.get(entry.dtype)
        if dtype is None:
            raise ModelLoadError(
                f"{shard_path}: tensor {name!r} has unsupported TensorFlow dtype {entry.dtype}"
            )
        if entry.shard_id not in shards:
            try:
                shards[entry.shard_id] = shard_path.read_bytes()
            except OSError as exc:
                raise ModelLoadError(f"{shard_path}: cannot read checkpoint data ({exc})") from exc
        shard = shards[entry.shard_id]
        count = int(np.prod(entry.shape, dtype=np.int64))
        if entry.size != count * dtype.itemsize:
            raise ModelLoadError(
                f"{shard_path}: tensor {name!r} of shape {entry.shape} should take "
                f"{count * dtype.itemsize} bytes, the index says {entry.size}"
            )
        if entry.offset + entry.size > len(shard):
            raise ModelLoadError(
                f"{shard_path}: tensor {name!r} at {entry.offset}+{entry.size} runs past the end "
                f"of the file ({len(shard)} B); truncated download?"
            )
        raw = shard[entry.offset : entry.offset + entry.size]
        if entry.crc32c is not None and masked_crc32c(raw) != entry.crc32c:
            raise ModelLoadError(f"{shard_path}: CRC mismatch for tensor {name!r}; file corrupted")
        array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
        out[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return out
