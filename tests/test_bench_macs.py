"""MAC counter and pure-Python .tflite reader, against hand-computed counts for a tiny graph.

``benchmarks/testdata/tiny_ops.tflite`` is made by ``benchmarks/testdata/make_tiny_ops.py``;
the expected counts below are worked out from the layers in that script, not from the graph.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from benchmarks.macs import count_macs, macs_by_kind, macs_by_type
from benchmarks.tflite_graph import read_graph

FIXTURE = Path(__file__).resolve().parents[1] / "benchmarks" / "testdata" / "tiny_ops.tflite"

# Conv2d(3->8, 3x3) on 8x8: 8*8*8 outputs x 27; depthwise 3x3: 512 x 9; AvgPool 2x2: 128 outputs x 4;
# y*y and +y: 128 each; mean over 4x4x8: 128 inputs; Linear(8->4): 32; matmul (2x2)@(2x2): 4 outputs x K=2.
EXPECTED = {"CONV_2D": 13_824, "DEPTHWISE_CONV_2D": 4_608, "AVERAGE_POOL_2D": 512, "MUL": 128, "ADD": 128,
            "MEAN": 128, "FULLY_CONNECTED": 32, "BATCH_MATMUL": 8, "TRANSPOSE": 0, "RESHAPE": 0}


@pytest.fixture(scope="module")
def graph():
    return read_graph(FIXTURE.read_bytes())


def test_macs_per_op_type_match_hand_counts(graph):
    by_type = macs_by_type(count_macs(graph))
    assert {op: row["macs"] for op, row in by_type.items()} == EXPECTED
    assert sum(c.macs for c in count_macs(graph)) == 19_368
    assert by_type["TRANSPOSE"]["count"] == 2 and by_type["RESHAPE"]["count"] == 2


def test_macs_by_kind(graph):
    kinds = macs_by_kind(count_macs(graph))
    assert kinds["conv"] == 13_824 and kinds["depthwise"] == 4_608 and kinds["fc"] == 40
    assert kinds["pool"] == 512 + 128 and kinds["elementwise"] == 256
    assert kinds["move"] == 192 + 128 + 4 + 4  # elements moved by the transposes and reshapes


def test_reader_shapes_and_options(graph):
    conv = next(op for op in graph.operators if op.name == "CONV_2D")
    assert graph.tensors[conv.inputs[1]].shape == (8, 3, 3, 3)
    assert graph.tensors[conv.outputs[0]].shape == (1, 8, 8, 8)
    pool = next(op for op in graph.operators if op.name == "AVERAGE_POOL_2D")
    assert pool.options == {"filter_width": 2, "filter_height": 2}
    assert graph.tensors[graph.inputs[0]].shape == (1, 3, 8, 8)
    assert graph.constant_bytes > 4 * (8 * 27 + 8 * 9)  # float weights of conv + depthwise at least


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="needs ai-edge-litert's schema")
def test_reader_agrees_with_the_official_schema(graph):
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(bytearray(FIXTURE.read_bytes()), 0)
    sub = m.subgraphs[0]
    assert [tuple(int(d) for d in t.shape) for t in sub.tensors] == [t.shape for t in graph.tensors]
    assert [tuple(op.inputs) for op in sub.operators] == [op.inputs for op in graph.operators]


@pytest.mark.parametrize("data", [b"", b"garbage!", b"\x10\x00\x00\x00TFL3" + b"\x00" * 4])
def test_reader_rejects_non_tflite(data):
    with pytest.raises(ValueError):
        read_graph(data)
