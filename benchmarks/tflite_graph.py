"""A small pure-Python reader of ``.tflite`` flatbuffers: operators, tensor shapes, buffer sizes.

Only what the MAC counter and the flash figure need, read straight from the bytes with
``struct`` (field numbers from tensorflow/lite/schema/schema.fbs), so it runs on a Raspberry Pi
with numpy and tflite-runtime only: no ``flatbuffers``, ``tflite`` or TensorFlow package.

>>> graph = read_graph(open("artifacts/dscnn_tiny/model_int8.tflite", "rb").read())  # doctest: +SKIP
>>> [op.name for op in graph.operators][:2]                                          # doctest: +SKIP
['TRANSPOSE', 'PAD']
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._opnames import BUILTIN_OPERATORS, TENSOR_TYPES

__all__ = ["Graph", "Operator", "Tensor", "read_graph"]

_CUSTOM = 32  # BuiltinOperator.CUSTOM


@dataclass(frozen=True)
class Tensor:
    """One tensor of subgraph 0; ``buffer_bytes`` is the size of its constant data (0 if none)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer_bytes: int


@dataclass(frozen=True)
class Operator:
    """One operator; ``inputs``/``outputs`` are tensor indices (-1 for an absent optional input).

    ``options`` holds the scalar fields of the builtin options table that the MAC counter uses
    (``adj_x``/``adj_y`` for BATCH_MATMUL, ``filter_width``/``filter_height`` for pooling).
    """

    name: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict


@dataclass(frozen=True)
class Graph:
    """Subgraph 0 of a model, plus the total constant-buffer bytes of the whole file."""

    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    constant_bytes: int
    subgraphs: int


class _Buf:
    """Flatbuffer primitives over a bytes object (little endian, offsets relative to position)."""

    def __init__(self, data: bytes):
        self.data = data

    def u8(self, pos: int) -> int:
        return self.data[pos]

    def u16(self, pos: int) -> int:
        return struct.unpack_from("<H", self.data, pos)[0]

    def i32(self, pos: int) -> int:
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.data, pos)[0]

    def u64(self, pos: int) -> int:
        return struct.unpack_from("<Q", self.data, pos)[0]

    def field(self, table: int, slot: int) -> int:
        """Absolute position of field ``slot`` of the table at ``table``, or 0 when absent."""
        vtable = table - self.i32(table)
        vt_size = self.u16(vtable)
        entry = 4 + 2 * slot
        if entry >= vt_size:
            return 0
        off = self.u16(vtable + entry)
        return table + off if off else 0

    def table(self, table: int, slot: int) -> int:
        pos = self.field(table, slot)
        return pos + self.u32(pos) if pos else 0

    def vector(self, table: int, slot: int) -> tuple[int, int]:
        """(start of the elements, length) of a vector field; (0, 0) when absent."""
        pos = self.field(table, slot)
        if not pos:
            return 0, 0
        vec = pos + self.u32(pos)
        return vec + 4, self.u32(vec)

    def tables(self, table: int, slot: int) -> list[int]:
        start, n = self.vector(table, slot)
        return [start + 4 * i + self.u32(start + 4 * i) for i in range(n)]

    def ints(self, table: int, slot: int) -> tuple[int, ...]:
        start, n = self.vector(table, slot)
        return struct.unpack_from(f"<{n}i", self.data, start) if n else ()

    def string(self, table: int, slot: int) -> str:
        start, n = self.vector(table, slot)
        return self.data[start:start + n].decode("utf-8", "replace") if n else ""

    def scalar(self, table: int, slot: int, kind: str, default: int = 0) -> int:
        pos = self.field(table, slot)
        return struct.unpack_from("<" + kind, self.data, pos)[0] if pos else default


def read_graph(data: bytes) -> Graph:
    """Parse a ``.tflite`` flatbuffer; raise ``ValueError`` if it is not one."""
    data = bytes(data)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        return _read(_Buf(data))
    except (struct.error, IndexError) as exc:
        raise ValueError(f"truncated or corrupt TFLite flatbuffer ({exc})") from None


def _read(b: _Buf) -> Graph:
    model = b.u32(0)
    # Model: 1 operator_codes, 2 subgraphs, 4 buffers
    codes = []
    for c in b.tables(model, 1):
        # OperatorCode: 0 deprecated_builtin_code (int8), 1 custom_code, 2 version, 3 builtin_code
        code = max(b.scalar(c, 0, "b"), b.scalar(c, 3, "i"))
        name = f"CUSTOM:{b.string(c, 1)}" if code == _CUSTOM else (
            BUILTIN_OPERATORS[code] if 0 <= code < len(BUILTIN_OPERATORS) else f"BUILTIN_{code}")
        codes.append((name, b.scalar(c, 2, "i", 1)))
    buffer_sizes = []
    for buf in b.tables(model, 4):
        # Buffer: 0 data (inline), 1 offset, 2 size (data stored after the flatbuffer, >2 GB models)
        buffer_sizes.append(b.vector(buf, 0)[1] or b.scalar(buf, 2, "Q"))
    subgraphs = b.tables(model, 2)
    if not subgraphs:
        raise ValueError("TFLite model has no subgraph")
    sub = subgraphs[0]
    tensors = []
    for t in b.tables(sub, 0):
        # Tensor: 0 shape, 1 type, 2 buffer, 3 name
        dtype_code = b.scalar(t, 1, "b")
        buffer = b.scalar(t, 2, "I")
        tensors.append(Tensor(
            name=b.string(t, 3),
            shape=tuple(b.ints(t, 0)),
            dtype=TENSOR_TYPES[dtype_code].lower() if 0 <= dtype_code < len(TENSOR_TYPES) else f"type{dtype_code}",
            buffer_bytes=buffer_sizes[buffer] if 0 < buffer < len(buffer_sizes) else 0,
        ))
    operators = []
    for op in b.tables(sub, 3):
        # Operator: 0 opcode_index, 1 inputs, 2 outputs, 3 builtin_options_type, 4 builtin_options
        name, version = codes[b.scalar(op, 0, "I")]
        operators.append(Operator(name, version, tuple(b.ints(op, 1)), tuple(b.ints(op, 2)),
                                  _options(b, op, name)))
    return Graph(tensors=tuple(tensors), operators=tuple(operators), inputs=tuple(b.ints(sub, 1)),
                 outputs=tuple(b.ints(sub, 2)), constant_bytes=sum(buffer_sizes), subgraphs=len(subgraphs))


def _options(b: _Buf, op: int, name: str) -> dict:
    opts = b.table(op, 4)
    if not opts:
        return {}
    if name == "BATCH_MATMUL":  # BatchMatMulOptions: 0 adj_x, 1 adj_y
        return {"adj_x": bool(b.scalar(opts, 0, "B")), "adj_y": bool(b.scalar(opts, 1, "B"))}
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
        # Pool2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 filter_width, 4 filter_height
        return {"filter_width": b.scalar(opts, 3, "i"), "filter_height": b.scalar(opts, 4, "i")}
    return {}
