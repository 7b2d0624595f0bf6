"""Convert a ``wearable.models.streaming.StreamingModel`` (input block + state tensors) to TFLite.

Same converter as ``quantize.backends.litert`` (litert-torch), with several inputs: the block
and one tensor per state. litert-torch names them ``args_<k>`` / ``output_<k>`` in the signature
and sorts them as strings (``args_10`` before ``args_2``), so every mapping here goes by name,
never by position. Quantization is ``quantize.stream_export``'s (ranges of the window model).

Int8 states: the step reads state ``k`` (input) and writes its successor (output); the runtime
feeds one back as the other, so both must carry the same scale and zero point. Ranges moved
from the window model give both the range of the tensor they hold; ``tie_state_scales`` makes
them equal where the quantizer still left them apart.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import torch

from ._quiet import quiet
from ._strip import _AlignedBuilder
from .backends.litert import _no_progress

__all__ = ["step_to_float", "signature_order", "tie_state_scales"]

_SIGNATURE = "serving_default"


def step_to_float(step: torch.nn.Module) -> bytes:
    """Float32 flatbuffer of the step model traced with zero inputs."""
    example = (torch.zeros(1, int(step.in_channels), step.block_samples), *step.initial_states())
    with _no_progress(), quiet("litert-torch conversion"):
        import litert_torch

        return bytes(litert_torch.convert(step.eval(), example).model_content())


def signature_order(model: bytes) -> tuple[list[int], list[int]]:
    """Tensor indices of the step's inputs and outputs in argument order (``args_0``, ``args_1``, ...).

    Read from the graph's input/output tensor names, not the signature map: ai-edge-quantizer
    appends a QUANTIZE op to some outputs (``output_7_output_quantized``) and leaves the
    signature pointing at the tensor before it. An output that is another tensor passed through
    keeps that tensor's name (a state holding exactly the input block is the input ``args_0``
    itself); such an output takes its place from the signature map, which names it there.
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    signature = interp._get_full_signature_list().get(_SIGNATURE, {})

    def ordered(details: list, pattern: str, signature_map: dict[str, int]) -> list[int]:
        named = sorted((int(key.rsplit("_", 1)[1]), int(i)) for key, i in signature_map.items())
        keyed: dict[int, int] = {}
        for d in details:
            index, match = int(d["index"]), re.search(pattern, d["name"])
            if match is None:  # passed through: the first signature position naming this tensor not yet taken
                free = [k for k, i in named if i == index and k not in keyed]
                if not free:
                    raise ValueError(f"unexpected graph tensor name {d['name']!r}")
                keyed[free[0]] = index
            else:
                keyed[int(match.group(1))] = index
        if sorted(keyed) != list(range(len(details))):
            raise ValueError(f"graph tensors are not numbered 0..{len(details) - 1}: {sorted(keyed)}")
        return [keyed[k] for k in range(len(keyed))]

    return (ordered(interp.get_input_details(), r"args_(\d+)$", signature.get("inputs", {})),
            ordered(interp.get_output_details(), r"output_(\d+)_output(_quantized)?$", signature.get("outputs", {})))


def tie_state_scales(model: bytes, n_outputs: int) -> tuple[bytes, int]:
    """Make every state output carry the scale and zero point of its state input; ``(model, n_changed)``.

    State ``k`` is input ``args_{k+1}`` and output ``output_{n_outputs + k}``. Where they differ,
    the requantization moves into the graph: a state output made by a QUANTIZE op (the quantizer
    appends one to some outputs) gets the input's parameters; a state input read only by ops that
    requantize their inputs (QUANTIZE, ADD, SUB) gets the output's; otherwise a QUANTIZE op is
    appended to the output. Parameters of tensors read by same-scale ops (CONCATENATION, SLICE:
    TFLite Micro requires equal scales there) are never changed.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    ins, outs = signature_order(model)
    m = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    g = m.subgraphs[0]
    tensors = g.tensors
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
    op = schema.BuiltinOperator
    producer = {int(o.outputs[0]): o for o in g.operators}
    readers: dict[int, list] = {}
    for o in g.operators:
        for t in o.inputs:
            readers.setdefault(int(t), []).append(o)
    requantizing = (op.QUANTIZE, op.ADD, op.SUB)

    def free(t: int) -> bool:  # every op reading t takes any input parameters
        return all(codes[r.opcodeIndex] in requantizing for r in readers.get(t, []))

    changed = 0
    for k in range(len(ins) - 1):
        i, o = ins[k + 1], outs[n_outputs + k]
        qi, qo = tensors[i].quantization, tensors[o].quantization
        if list(qi.scale) == list(qo.scale) and list(qi.zeroPoint) == list(qo.zeroPoint):
            continue
        changed += 1
        made_by = producer.get(o)  # None: the output is a graph input passed through (signature_order)
        if made_by is not None and codes[made_by.opcodeIndex] == op.QUANTIZE and free(o):
            tensors[o].quantization = copy.deepcopy(qi)
        elif free(i):
            tensors[i].quantization = copy.deepcopy(qo)
        elif made_by is None:
            raise ValueError(f"state {k} is the graph input tensor {o} passed through, with parameters other than "
                             f"its state input's; they cannot be tied")
        else:  # producer -> hidden (old parameters, read by the graph) -> QUANTIZE -> state output
            hidden = copy.deepcopy(tensors[o])
            hidden.name = None
            tensors.append(hidden)
            h = len(tensors) - 1
            for r in [made_by, *readers.get(o, [])]:
                r.inputs = [h if int(t) == o else int(t) for t in r.inputs]
            made_by.outputs = [h if int(t) == o else int(t) for t in made_by.outputs]
            tensors[o].quantization = copy.deepcopy(qi)
            quant = schema.OperatorT()
            quant.opcodeIndex = _opcode(m, codes, op.QUANTIZE)
            quant.inputs, quant.outputs = [h], [o]
            g.operators.insert(g.operators.index(made_by) + 1, quant)
    for buffer in m.buffers or []:
        if buffer.data is not None:
            buffer.data = np.frombuffer(bytes(buffer.data), dtype=np.uint8)
    builder = _AlignedBuilder(len(model) + 4096)  # weight buffers 16-byte aligned, as quantize.export writes them
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), changed


def _opcode(m, codes: list[int], builtin: int) -> int:
    if builtin in codes:
        return codes.index(builtin)
    from ai_edge_litert import schema_py_generated as schema

    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    m.operatorCodes.append(code)
    codes.append(builtin)
    return len(codes) - 1
