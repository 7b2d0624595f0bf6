"""Tensor pairing for ``quantize.stream_export``: ranges of the window model moved onto another
conversion of the same network.

The step model carries the int8 parameters of the non-streaming int8 model: the window model is
calibrated as ``quantize.export`` does (``backends.litert.calibrate``), ``map_tensors`` pairs the
step graph's tensors with the window graph's (litert-torch names the two graphs' tensors
differently), and ``backends.litert.quantize_ranges`` quantizes the step graph from the moved ranges.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_windows", "map_tensors"]


def as_windows(calibration: np.ndarray, width: int) -> np.ndarray:
    x = np.asarray(calibration, dtype=np.float32)
    if x.ndim == 2:  # a signal (C, T): consecutive windows
        n = x.shape[1] // width
        if n < 1:
            raise ValueError(f"calibration signal shorter than one window ({x.shape[1]} < {width} samples)")
        x = x[:, :n * width].reshape(x.shape[0], n, width).transpose(1, 0, 2)
    if x.ndim != 3 or x.shape[-1] != width or len(x) < 1:
        raise ValueError(f"calibration must be windows (n, C, {width}) or a signal (C, T), got {np.shape(calibration)}")
    return np.ascontiguousarray(x)


# Ops whose output holds values of their first input (same int8 parameters in the quantizer).
_CARRIERS = {"RESHAPE", "TRANSPOSE", "SLICE", "STRIDED_SLICE", "PAD", "PADV2", "SQUEEZE", "EXPAND_DIMS"}
_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}  # weights are input 1


class _Graph:
    def __init__(self, model: bytes) -> None:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils

        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        m = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
        g = m.subgraphs[0]
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
        self.ops = [(names[codes[o.opcodeIndex]], [int(i) for i in o.inputs if i >= 0], [int(i) for i in o.outputs])
                    for o in g.operators]
        self.names = [t.name.decode() if isinstance(t.name, bytes) else t.name for t in g.tensors]
        data = [m.buffers[t.buffer].data for t in g.tensors]
        self.data = [None if d is None or len(d) == 0 else bytes(d) for d in data]  # None: an activation
        self.inputs = [int(i) for i in g.inputs]


def map_tensors(reference: bytes, target: bytes, *, tied: list[tuple[int, int]] = ()) -> dict[str, str | None]:
    """Pair every activation tensor of ``target`` with the ``reference`` tensor holding the same
    values, two float ``.tflite`` conversions of one network (e.g. a step model and the window
    model); returns target name -> reference name (None where no pair was found).

    Convolutions and fully connected ops pair by identical weights and paired inputs, other ops
    by type and paired inputs; layout ops, slices and pads carry their input's partner; a
    concatenation of one partner (a state and the new frames of a tensor) carries it to its
    state inputs. ``tied``: (input, output) tensor indices of the same state, paired alike.
    """
    ref, tgt = _Graph(reference), _Graph(target)
    canon: dict[int, int] = {}  # reference tensor -> the tensor whose values it carries
    for op, ins, outs in ref.ops:
        for o in outs:
            canon[o] = canon.get(ins[0], ins[0]) if op in _CARRIERS else o
    c = lambda t: canon.get(t, t)  # noqa: E731
    by_key: dict[tuple, list[int]] = {}
    for op, ins, outs in ref.ops:
        if op in _CARRIERS:
            continue
        dyn = [c(i) for i in ins if ref.data[i] is None]
        weights = ref.data[ins[1]] if op in _WEIGHTED else None
        by_key.setdefault((op, weights, tuple(sorted(dyn))), []).append(outs[0])
    pair = {tgt.inputs[0]: c(ref.inputs[0])}
    for _ in range(len(tied) + 2):  # a state pairs through its partner, which may come later in the graph
        for a, b in tied:
            if a in pair and b not in pair:
                pair[b] = pair[a]
            elif b in pair and a not in pair:
                pair[a] = pair[b]
        for op, ins, outs in tgt.ops:
            dyn = [i for i in ins if tgt.data[i] is None]
            if outs[0] in pair or not dyn:
                continue
            known = {pair[i] for i in dyn if i in pair}
            if op in _CARRIERS and dyn[0] in pair:
                pair[outs[0]] = pair[dyn[0]]
            elif op == "CONCATENATION" and len(known) == 1 and all(i in pair or i in tgt.inputs for i in dyn):
                for i in dyn:  # along time: a state and the frames it precedes
                    pair.setdefault(i, next(iter(known)))
                pair[outs[0]] = next(iter(known))
            elif all(i in pair for i in dyn):
                weights = tgt.data[ins[1]] if op in _WEIGHTED else None
                found = by_key.get((op, weights, tuple(sorted(pair[i] for i in dyn))), [])
                if len(found) == 1:
                    pair[outs[0]] = found[0]
    used = {t for _, ins, outs in tgt.ops for t in (*ins, *outs) if tgt.data[t] is None}
    return {tgt.names[t]: ref.names[pair[t]] if t in pair else None for t in sorted(used)}
