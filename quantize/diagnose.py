"""Per-layer quantization error of an int8 model: ``python -m quantize.diagnose ARTIFACT``.

Prints the tensors with the lowest SQNR (float TFLite vs dequantized int8, on calibration
windows) worst first, and writes a PNG bar chart of the SQNR of every tensor in graph order.
With an artifact directory it reads the ``diagnosis.json`` the export wrote; with
``--checkpoint PATH`` it converts the checkpoint itself (nothing else is written), which is
how to look inside a model whose export the accuracy gate refused.

Exit codes: 0 done; 2 bad input (missing artifact or checkpoint, no data): one ``error:`` line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "plot_diagnosis"]

log = logging.getLogger("quantize")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m quantize.diagnose", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("artifact", nargs="?", type=Path, metavar="ARTIFACT",
                   help="artifact directory written by python -m quantize.export")
    p.add_argument("--checkpoint", type=Path, metavar="PATH", help="diagnose a checkpoint instead (converts it)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory for --checkpoint")
    p.add_argument("--windows", type=int, default=64, metavar="N", help="calibration windows (--checkpoint)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows to print, worst first (0: all)")
    p.add_argument("--png", type=Path, metavar="PATH",
                   help="bar chart path (default: ARTIFACT/diagnosis.png, or <model>.diagnosis.png here)")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if (args.artifact is None) == (args.checkpoint is None):
        return _fail("give an artifact directory or --checkpoint PATH (one of them)")
    if args.top < 0 or args.windows < 1:
        return _fail("--top must be >= 0 and --windows >= 1")
    try:
        if args.artifact is not None:
            name, errors, windows = _from_artifact(args.artifact)
            png = args.png or args.artifact / "diagnosis.png"
        else:
            name, errors, windows = _from_checkpoint(args.checkpoint, args.data_dir, args.windows)
            png = args.png or Path(f"{name}.diagnosis.png")
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    from ._diagnose import format_table

    print(f"{name}: per-tensor SQNR, float TFLite vs int8, over {windows} calibration windows (worst first)")
    print(format_table(errors, args.top or None))
    try:
        plot_diagnosis(errors, png, title=f"{name}: int8 quantization error per tensor")
    except ImportError:
        return _fail("matplotlib is needed for the PNG (pip install matplotlib)")
    except OSError as exc:
        return _fail(f"cannot write {png}: {exc}")
    print(f"wrote {png}")
    return 0


def plot_diagnosis(errors: list[Any], path: Path, *, title: str) -> None:
    """Horizontal bars of SQNR per tensor in graph order; the three worst in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._diagnose import worst

    ordered = sorted(errors, key=lambda e: e.order)
    bad = {e.order for e in worst(errors, 3)}
    finite = [e.sqnr_db for e in ordered if not math.isinf(e.sqnr_db)]
    cap = (max(finite) if finite else 60.0) + 5.0  # exact tensors drawn at the right edge
    values = [cap if math.isinf(e.sqnr_db) else e.sqnr_db for e in ordered]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(ordered) + 1.2))
    ax.barh(range(len(ordered)), values, color=["tab:red" if e.order in bad else "tab:blue" for e in ordered])
    ax.set_yticks(range(len(ordered)), [f"#{e.order} {e.op}" for e in ordered], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("SQNR, dB (higher is better; red: worst three)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _from_artifact(directory: Path) -> tuple[str, list[Any], int]:
    from ._diagnose import TensorError

    path = directory / "diagnosis.json"
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory")
    if not path.is_file():
        raise ValueError(f"{path} not found (artifacts exported before the diagnosis existed: re-export them)")
    try:
        data = json.loads(path.read_text())
        name = json.loads((directory / "manifest.json").read_text())["model"]["name"]
        errors = [TensorError(**{**t, "shape": tuple(t["shape"]),
                                 "sqnr_db": math.inf if t["sqnr_db"] is None else t["sqnr_db"]})
                  for t in data["tensors"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{directory}: unreadable diagnosis or manifest ({exc})") from None
    return name, errors, int(data["windows"])


def _from_checkpoint(path: Path, data_dir: Path | None, n: int) -> tuple[str, list[Any], int]:
    from wearable.data import load_windows
    from wearable.training import load_checkpoint

    from ._diagnose import tensor_errors
    from ._fold import fold_batchnorm
    from ._quiet import quiet
    from .backends import get_backend

    ckpt = load_checkpoint(path)
    spec = dict(ckpt.data)
    if not spec.get("source"):
        raise ValueError(f"checkpoint {path} has no data source to calibrate with")
    if data_dir is not None:
        spec["data_dir"] = str(data_dir)
    x = load_windows(**spec, split="train", limit=n).x
    folded, _ = fold_batchnorm(ckpt.build().eval())
    conv = get_backend("litert")
    print(f"{ckpt.model_name}: converting ({len(x)} calibration windows)...", file=sys.stderr, flush=True)
    with quiet("conversion"):
        float_tflite = conv.to_float(folded, x)
        int8_tflite = conv.float_to_int8(float_tflite, x)
    return ckpt.model_name, tensor_errors(float_tflite, int8_tflite, x), len(x)


def _fail(message: str) -> int:
    print(f"error: {message.strip().splitlines()[0] if message.strip() else 'failed'}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
