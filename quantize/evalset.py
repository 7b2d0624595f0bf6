"""Shipped calibration + held-out windows for a checkpoint: ``python -m quantize.evalset CHECKPOINT``.

A checkpoint trained on PhysioNet records must export on a machine without the records (the
README's one-command set-up has none). This command cuts the calibration windows (split
"train") and the held-out windows (split "val" or "test") from the data once, with the
checkpoint's own data spec, and saves them next to the checkpoint as
``<name>.evalset.npz``; ``python -m quantize.export`` uses that file whenever no
``--data-dir`` is given. Signals are stored as float16 (0.5 µV steps at 1 mV, far below one
int8 input step), labels as int64 / float32; ``meta`` records the spec, splits and records.

Exit codes: 0 written; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._files import bytes_sha256

__all__ = ["EvalSet", "evalset_path", "save_evalset", "load_evalset", "main"]


@dataclass(frozen=True)
class EvalSet:
    calibration_x: np.ndarray
    calibration_y: np.ndarray
    holdout_x: np.ndarray
    holdout_y: np.ndarray
    labels: tuple[str, ...]
    meta: dict[str, Any]
    sha256: str
    calibration_mask: np.ndarray | None = None  # per-sample second target (WindowSet.mask), if any
    holdout_mask: np.ndarray | None = None


def evalset_path(checkpoint: str | Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".evalset.npz")


def save_evalset(path: str | Path, calibration: Any, holdout: Any, meta: dict[str, Any]) -> Path:
    """Write window sets (``x``, ``y``, ``labels``, ``records``) deterministically (no zip timestamps)."""
    from ._files import write_npz

    arrays = {"calibration_x": calibration.x.astype(np.float16), "calibration_y": _compact(calibration.y),
              "holdout_x": holdout.x.astype(np.float16), "holdout_y": _compact(holdout.y),
              "labels": np.array([str(s) for s in holdout.labels]),
              **{f"{name}_mask": _compact(ws.mask) for name, ws in (("calibration", calibration), ("holdout", holdout))
                 if getattr(ws, "mask", None) is not None},
              "meta": np.array(json.dumps({**meta, "calibration_records": list(calibration.records)[:200],
                                           "holdout_records": list(holdout.records)[:200]}, sort_keys=True))}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write_npz(tmp, arrays, compress=True)
    tmp.replace(path)
    return path


def load_evalset(path: str | Path) -> EvalSet:
    """Read a file written by ``save_evalset``; ``ValueError`` if it is not one."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data["meta"].reshape(-1)[0]))  # 0-d or 1-element, by writer version
        out = EvalSet(calibration_x=data["calibration_x"].astype(np.float32),
                      calibration_y=_widen(data["calibration_y"]), holdout_x=data["holdout_x"].astype(np.float32),
                      holdout_y=_widen(data["holdout_y"]),
                      labels=tuple(str(s) for s in data["labels"]), meta=meta,
                      sha256=bytes_sha256(raw), calibration_mask=_widen(data.get("calibration_mask")),
                      holdout_mask=_widen(data.get("holdout_mask")))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable evaluation set ({exc})") from None
    for what, x in (("calibration", out.calibration_x), ("holdout", out.holdout_x)):
        if x.ndim != 3 or len(x) == 0:
            raise ValueError(f"{path}: {what} windows must be (n>=1, C, W), got {x.shape}")
    return out


def _compact(y: np.ndarray) -> np.ndarray:
    """Class ids as int8 (per-sample masks would be 8x larger as int64); other labels unchanged."""
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and (y.size == 0 or (y.min() >= -128 and y.max() <= 127)):
        return y.astype(np.int8)
    return y


def _widen(y: np.ndarray | None) -> np.ndarray | None:
    return y.astype(np.int64) if y is not None and y.dtype == np.int8 else y


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quantize.evalset", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data-dir", type=Path, help="data directory (default: the checkpoint's)")
    p.add_argument("--calibration-windows", type=int, default=256, metavar="N")
    p.add_argument("--holdout-windows", type=int, default=512, metavar="N")
    p.add_argument("--holdout-split", choices=("val", "test"), default="val")
    p.add_argument("--out", type=Path, help="output file (default: next to the checkpoint)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from wearable.data import load_windows
    from wearable.training import load_checkpoint

    try:
        if min(args.calibration_windows, args.holdout_windows) < 1:
            raise ValueError("window counts must be >= 1")
        ckpt = load_checkpoint(args.checkpoint)
        spec = dict(ckpt.data)
        if args.data_dir is not None:
            spec["data_dir"] = str(args.data_dir)
        cal = load_windows(**spec, split="train", limit=args.calibration_windows)
        hold = load_windows(**spec, split=args.holdout_split, limit=args.holdout_windows)
        meta = {"model": ckpt.model_name, "source": spec["source"], "task": spec["task"],
                "seed": spec.get("seed", 0), "calibration_split": "train", "holdout_split": args.holdout_split,
                "calibration_limit": args.calibration_windows, "holdout_limit": args.holdout_windows}
        out = save_evalset(args.out or evalset_path(args.checkpoint), cal, hold, meta)
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size} bytes: {len(cal.x)} calibration + {len(hold.x)} held-out windows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
