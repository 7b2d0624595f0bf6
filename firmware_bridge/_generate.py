"""Render the firmware sources of one exported artifact: ``generate(artifact_dir)``.

Templates live in ``templates/`` (jinja2), one context per model (``_context.load_context``);
the project-written C sources in ``c/`` are copied next to the generated ones so that
``<artifact>/firmware/`` is everything a firmware project needs. Output is a pure function of
the artifact: the same artifact gives byte-identical files.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from wearable._staging import staged_dir

from ._context import ARENA_MARGIN_PERCENT, FirmwareContext, FirmwareError, load_context

__all__ = ["generate", "GENERATED_FILES", "C_SOURCES", "C_SOURCE_DIR"]

log = logging.getLogger("firmware_bridge")

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
C_SOURCE_DIR = Path(__file__).resolve().parent / "c"
GENERATED_FILES = ("model_data.h", "model_data.c", "model_settings.h", "op_resolver.h", "test_vectors.h",
                   "test_vectors.c")
C_SOURCES = ("wearable_ring_buffer.h", "wearable_ring_buffer.c", "wearable_preprocess.h", "wearable_preprocess.c")
_BYTES_PER_LINE = 12
_INT8_PER_LINE = 16


def generate(artifact_dir: str | os.PathLike, *, out_dir: str | os.PathLike | None = None,
             arena_margin_percent: int = ARENA_MARGIN_PERCENT) -> Path:
    """Write the firmware sources for ``artifact_dir`` into ``out_dir`` (default ``<artifact_dir>/firmware``).

    Raises ``FirmwareError`` (a ``ValueError``) naming the problem when the artifact is not
    usable: missing files or manifest fields, float ops, non-int8 inputs or outputs, an op
    TFLite Micro lacks, golden vectors that do not match, or an output that cannot be written.
    Nothing is written then. Returns the output directory.

    All files are written into a staging directory first and published together at the end
    (``wearable._staging``), so a full disk leaves the output as it was: the default
    ``<artifact_dir>/firmware`` is replaced whole; in an ``out_dir`` of your own the generated
    files are replaced and your other files stay.

    >>> generate("artifacts/dscnn_tiny")                     # doctest: +SKIP
    PosixPath('artifacts/dscnn_tiny/firmware')
    """
    ctx = load_context(artifact_dir, arena_margin_percent=arena_margin_percent)
    out = Path(out_dir) if out_dir is not None else Path(artifact_dir) / "firmware"
    files = render(ctx)
    try:
        with staged_dir(out, keep_others=out_dir is not None) as tmp:
            for name, text in files.items():
                _write(tmp / name, text)
            for name in C_SOURCES:
                _write(tmp / name, (C_SOURCE_DIR / name).read_text())
    except OSError as exc:
        raise FirmwareError(f"cannot write {out}: {exc.strerror or exc}") from None
    log.info("wrote %d files to %s", len(files) + len(C_SOURCES), out)
    return out


def render(ctx: FirmwareContext) -> dict[str, str]:
    """File name -> text of every generated file."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["c_double"] = _c_double
    env.filters["c_string"] = _c_string
    # The model name is a plain name (load_context refuses anything else), so it may stand in comments.
    common = {"ctx": ctx, "m": ctx.macro, "c_name": _c_string(ctx.model_name), "comment_name": ctx.model_name,
              "n_vectors": len(ctx.golden_inputs[0])}
    extra = {
        "model_data.c": {"model_rows": _byte_rows(ctx.model_bytes)},
        "test_vectors.c": {"vectors": [(f"{kind}_{k}", [(_int8_rows(row), row.size) for row in arr])
                                       for kind, arrays in (("test_input", ctx.golden_inputs),
                                                            ("test_output", ctx.golden_outputs))
                                       for k, arr in enumerate(arrays)]},
    }
    out = {}
    for name in GENERATED_FILES:
        guard = f"{ctx.macro}_{name.replace('.', '_').upper()}_"
        text = env.get_template(f"{name}.j2").render(**common, filename=name, guard=guard, **extra.get(name, {}))
        out[name] = text
    return out


def _c_double(value: float) -> str:
    """A C double literal that reads back as exactly ``value`` (17 significant digits)."""
    if not math.isfinite(value):  # C would read the identifiers nan and inf
        raise FirmwareError(f"cannot write {value} as a C constant")
    text = f"{float(value):.17g}"
    return text if any(c in text for c in ".en") else f"{text}.0"


def _c_string(text: str) -> str:
    """Contents of a C string literal: escapes, and octal escapes for anything outside printable ASCII."""
    out = []
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?':  # '?' too: no trigraphs
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def _byte_rows(data: bytes) -> list[str]:
    return [", ".join(f"0x{b:02x}" for b in data[i:i + _BYTES_PER_LINE]) + ","
            for i in range(0, len(data), _BYTES_PER_LINE)]


def _int8_rows(values) -> list[str]:
    flat = [int(v) for v in values]
    lines = [", ".join(f"{v:4d}" for v in flat[i:i + _INT8_PER_LINE]) for i in range(0, len(flat), _INT8_PER_LINE)]
    return [line + ("," if i < len(lines) - 1 else "") for i, line in enumerate(lines)]


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    os.chmod(path, 0o644)
