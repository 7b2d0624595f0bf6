"""Read a ``.tflite`` flatbuffer: operator list with versions, and the full-integer check.

Parsing uses the schema module shipped in ai-edge-litert (no TensorFlow needed).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TfliteSummary", "NotFullIntegerError", "summarize_tflite", "check_full_int8"]

# Tensor types that mean "this op computes in floating point".
_FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16")


class NotFullIntegerError(ValueError):
    """The model has float tensors on an operator, or non-int8 model inputs/outputs."""


@dataclass(frozen=True)
class TfliteSummary:
    """What the flatbuffer says about a model (subgraph 0 for inputs and outputs)."""

    operators: tuple[str, ...]  # op name per operator, in execution order (all subgraphs)
    opcodes: tuple[tuple[str, int], ...]  # distinct (op name, version) pairs, sorted
    float_ops: tuple[str, ...]  # "index:NAME (float32)" for each op with a float input or output
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]

    @property
    def op_count(self) -> int:
        return len(self.operators)


def summarize_tflite(model: bytes) -> TfliteSummary:
    """Operators, opcode versions and float-tensor usage of a ``.tflite`` flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    try:
        m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ValueError(f"not a TFLite flatbuffer ({type(exc).__name__}: {exc})") from None

    def opcode_name(code) -> str:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            return f"CUSTOM:{custom}"
        return op_names.get(builtin, f"BUILTIN_{builtin}")

    codes = [(opcode_name(c), int(c.version)) for c in (m.operatorCodes or [])]
    operators, float_ops = [], []
    for g, sub in enumerate(m.subgraphs or []):
        tensors = sub.tensors or []
        for i, op in enumerate(sub.operators or []):
            name = codes[op.opcodeIndex][0]
            operators.append(name)
            touched = [t for t in [*(op.inputs if op.inputs is not None else []),
                                   *(op.outputs if op.outputs is not None else [])] if t >= 0]
            floats = sorted({type_names.get(tensors[t].type, "?") for t in touched} & set(_FLOAT_TYPES))
            if floats:
                where = f"{g}/{i}" if g else str(i)
                float_ops.append(f"{where}:{name} ({'/'.join(f.lower() for f in floats)})")
    main = m.subgraphs[0]
    return TfliteSummary(
        operators=tuple(operators),
        opcodes=tuple(sorted(set(codes))),
        float_ops=tuple(float_ops),
        input_types=tuple(type_names.get(main.tensors[t].type, "?").lower() for t in main.inputs),
        output_types=tuple(type_names.get(main.tensors[t].type, "?").lower() for t in main.outputs),
    )


def check_full_int8(model: bytes) -> TfliteSummary:
    """Raise ``NotFullIntegerError`` naming the offending ops unless the model is full int8.

    Full int8: no operator consumes or produces a float tensor, and every model input and
    output is int8 (int32 biases and shape tensors are fine).
    """
    summary = summarize_tflite(model)
    problems = []
    if summary.float_ops:
        more = len(summary.float_ops) - 12
        shown = ", ".join(summary.float_ops[:12]) + (f", … {more} more" if more > 0 else "")
        problems.append(f"{len(summary.float_ops)} op(s) use float tensors: {shown}")
    for kind, types in (("input", summary.input_types), ("output", summary.output_types)):
        if any(t != "int8" for t in types):
            problems.append(f"model {kind} types are {list(types)}, expected int8")
    if problems:
        raise NotFullIntegerError("not a full-int8 model: " + "; ".join(problems))
    return summary
