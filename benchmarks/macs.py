"""Multiply-accumulates per inference, counted per operator from a TFLite graph.

Counting rules (``N`` = number of elements; shapes are the graph's static shapes):

================================ ============================================ ==============
op                               MACs                                         kind
================================ ============================================ ==============
CONV_2D                          N(output) × KH × KW × Cin_filter             conv
DEPTHWISE_CONV_2D                N(output) × KH × KW                          depthwise
TRANSPOSE_CONV                   N(input) × KH × KW × Cout                    conv
FULLY_CONNECTED                  N(output) × in_features                      fc
BATCH_MATMUL                     N(output) × K (K after ``adj_x``)            fc
AVERAGE/MAX/L2_POOL_2D           N(output) × filter_h × filter_w              pool
MEAN, SUM, REDUCE_*              N(input)                                     pool
ADD, SUB, MUL, … (elementwise)   N(output)                                    elementwise
activations, SOFTMAX, QUANTIZE   N(output)                                    elementwise
RESHAPE, PAD, TRANSPOSE, …       0 (data movement: N(output) bytes moved)     move
================================ ============================================ ==============

Elementwise, pooling and reduction ops are not multiply-accumulates strictly; they are counted
as one "MAC-equivalent" per element so that the latency model can give them a cost. ``kind``
groups ops that run on the same kind of kernel; the latency estimate has one coefficient per kind.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from math import prod

from .tflite_graph import Graph

__all__ = ["OpCount", "KINDS", "count_macs", "macs_by_type", "macs_by_kind"]

KINDS = ("conv", "depthwise", "fc", "pool", "elementwise", "move", "other")

_ELEMENTWISE = {
    "ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "RELU", "RELU6", "RELU_N1_TO_1",
    "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "LOGISTIC", "TANH", "HARD_SWISH", "GELU", "EXP", "LOG", "SQRT", "RSQRT",
    "ABS", "NEG", "SOFTMAX", "LOG_SOFTMAX", "QUANTIZE", "DEQUANTIZE", "ELU", "SQUARE", "POW", "FLOOR", "CEIL",
    "ROUND", "SIN", "COS", "SELECT", "SELECT_V2", "LESS", "GREATER", "EQUAL", "NOT_EQUAL", "LESS_EQUAL",
    "GREATER_EQUAL", "L2_NORMALIZATION", "ADD_N", "SIGN",
}
_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL", "ARG_MAX", "ARG_MIN"}
_POOL = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"}
_MOVE = {
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PAD", "PADV2", "MIRROR_PAD", "TRANSPOSE", "CONCATENATION", "SPLIT",
    "SPLIT_V", "SLICE", "STRIDED_SLICE", "GATHER", "GATHER_ND", "PACK", "UNPACK", "TILE", "BROADCAST_TO",
    "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "SPACE_TO_BATCH_ND",
    "BATCH_TO_SPACE_ND", "SHAPE", "CAST", "ZEROS_LIKE", "FILL",
}


@dataclass(frozen=True)
class OpCount:
    """MACs of one operator; ``elements`` = output elements (bytes moved for int8 ``move`` ops)."""

    index: int
    op: str
    kind: str
    macs: int
    elements: int


def _n(shape: tuple[int, ...]) -> int:
    # A -1 (dynamic) dimension is taken as 1: our models have batch 1.
    return prod(max(int(d), 1) for d in shape) if shape else 1


def count_macs(graph: Graph) -> list[OpCount]:
    """One ``OpCount`` per operator of subgraph 0, in execution order."""
    counts = []
    for i, op in enumerate(graph.operators):
        shape = lambda k: graph.tensors[op.inputs[k]].shape  # noqa: E731
        out = graph.tensors[op.outputs[0]].shape if op.outputs else ()
        n_out = _n(out)
        name = op.name
        if name == "CONV_2D":  # filter [Cout, KH, KW, Cin/groups]
            _, kh, kw, cin = shape(1)
            kind, macs = "conv", n_out * kh * kw * cin
        elif name == "DEPTHWISE_CONV_2D":  # filter [1, KH, KW, Cout]
            _, kh, kw, _ = shape(1)
            kind, macs = "depthwise", n_out * kh * kw
        elif name == "TRANSPOSE_CONV":  # inputs: output_shape, filter [Cout, KH, KW, Cin], input
            cout, kh, kw, _ = shape(1)
            kind, macs = "conv", _n(shape(2)) * kh * kw * cout
        elif name == "FULLY_CONNECTED":  # weights [units, in_features]
            kind, macs = "fc", n_out * shape(1)[-1]
        elif name == "BATCH_MATMUL":
            a = shape(0)
            k = a[-2] if op.options.get("adj_x") else a[-1]
            kind, macs = "fc", n_out * k
        elif name in _POOL:
            kind = "pool"
            macs = n_out * op.options.get("filter_width", 1) * op.options.get("filter_height", 1)
        elif name in _REDUCE:
            kind, macs = "pool", _n(shape(0))
        elif name in _ELEMENTWISE:
            kind, macs = "elementwise", n_out
        elif name in _MOVE:
            kind, macs = "move", 0
        else:
            kind, macs = "other", 0
        counts.append(OpCount(i, name, kind, int(macs), int(n_out)))
    return counts


def macs_by_type(counts: list[OpCount]) -> "OrderedDict[str, dict]":
    """``{op: {"count": ops, "macs": MACs}}``, largest MAC total first (ties by name)."""
    table: dict[str, dict] = {}
    for c in counts:
        row = table.setdefault(c.op, {"count": 0, "macs": 0, "kind": c.kind})
        row["count"] += 1
        row["macs"] += c.macs
    return OrderedDict(sorted(table.items(), key=lambda kv: (-kv[1]["macs"], kv[0])))


def macs_by_kind(counts: list[OpCount]) -> dict[str, int]:
    """Total MACs per kernel kind (every kind of ``KINDS`` present, 0 if unused)."""
    totals = dict.fromkeys(KINDS, 0)
    for c in counts:
        totals[c.kind] += c.macs if c.kind != "move" else c.elements
    return totals
