"""Train a registered model: ``python -m wearable.train MODEL --data SOURCE --out DIR``.

Writes ``DIR/<model>.pt`` (weights, config, data spec, labels, metrics) and ``DIR/<model>.metrics.json``.
Exit codes: 0 trained; 1 training diverged (a NaN or infinite loss or weight, nothing written);
2 bad input (one-line message, nothing written).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

__all__ = ["main", "train"]

log = logging.getLogger("wearable.train")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="registered model name (see --list)", nargs="?")
    p.add_argument("--list", action="store_true", help="list registered models and data sources, then exit")
    p.add_argument("--data", default="synthetic", help="data source: synthetic, mitdb, bidmc")
    p.add_argument("--task", help="task of the source (default: the source's first task)")
    p.add_argument("--data-dir", type=Path, help="directory of the WFDB records (real sources only)")
    p.add_argument("--out", type=Path, help="output directory (default: runs/<model>)")
    p.add_argument("--sampling-rate", type=float, help="model input rate in Hz (default: the model's config)")
    p.add_argument("--window", type=int, help="window length in samples (default: the model's config)")
    p.add_argument("--train-windows", type=int, help="cap on training windows (default: the source's)")
    p.add_argument("--val-windows", type=int, help="cap on validation windows")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def train(model_name: str, *, source: str, task: str | None, data_dir: Path | None, out: Path,
          sampling_rate_hz: float | None, window_samples: int | None, train_windows: int | None,
          val_windows: int | None, epochs: int, batch_size: int, lr: float, seed: int,
          progress: bool = True) -> dict:
    """Train and save; return ``{"checkpoint": path, "metrics": {...}}``."""
    from wearable import data
    from wearable.cli_util import UsageError, check_writable_dir
    from wearable.models import config_class, create
    from wearable.runtime.artifact import MAX_SAMPLING_RATE_HZ
    from wearable.training import save_checkpoint
    from wearable.training.loop import TrainConfig, fit, seed_everything

    defaults = config_class(model_name)()
    rate = defaults.sampling_rate_hz if sampling_rate_hz is None else sampling_rate_hz
    window = defaults.window_samples if window_samples is None else window_samples
    # NaN fails every comparison, so each bound is written as the condition that must hold.
    if not (0 < rate <= MAX_SAMPLING_RATE_HZ):
        raise UsageError(f"sampling rate must be > 0 Hz and at most {MAX_SAMPLING_RATE_HZ:g} Hz, got {rate:g}")
    if window <= 0 or epochs <= 0 or batch_size <= 0:
        raise UsageError("--window, --epochs and --batch-size must be > 0")
    if not (math.isfinite(lr) and lr > 0):
        raise UsageError(f"--lr must be a finite number > 0, got {lr:g}")
    tasks = data.list_tasks()
    if source not in tasks:
        raise UsageError(f"unknown data source {source!r}; known: {', '.join(sorted(tasks))}")
    task = task or tasks[source][0]
    out = check_writable_dir(out)
    spec = {"source": source, "task": task, "sampling_rate_hz": rate, "window_samples": window,
            "data_dir": None if data_dir is None else str(data_dir), "seed": seed}
    train_set = data.load_windows(**spec, split="train", limit=train_windows)
    val_set = data.load_windows(**spec, split="val", limit=val_windows)
    log.info("%s/%s: %d train and %d val windows of %d samples at %g Hz", source, task,
             len(train_set), len(val_set), window, rate)
    seed_everything(seed)  # weight init
    model = create(model_name, sampling_rate_hz=rate, window_samples=window,
                   in_channels=train_set.x.shape[1], num_classes=len(train_set.labels))
    report = fit(model, train_set, val_set, progress=progress,
                 config=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed))
    metrics = {"val_accuracy": report["accuracy"], "val_macro_f1": report["macro_f1"],
               "train_windows": len(train_set), "val_windows": len(val_set)}
    path = save_checkpoint(out / f"{model_name}.pt", model.eval(), model_name=model_name, data=spec,
                           labels=list(train_set.labels), metrics=metrics, seed=seed)
    (out / f"{model_name}.metrics.json").write_text(json.dumps({"model": model_name, "data": spec, "validation": report},
                                                 indent=2, sort_keys=True) + "\n")
    return {"checkpoint": path, "metrics": metrics, "report": report}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    from wearable import data
    from wearable.models import UnknownModelError, list_models
    from wearable.training.loop import TrainingDiverged

    if args.list:
        print("models:", ", ".join(list_models()))
        for source, tasks in sorted(data.list_tasks().items()):
            print(f"data {source}: tasks {', '.join(tasks)}")
        return 0
    if not args.model:
        print("error: a model name is required (see --list)", file=sys.stderr)
        return 2
    try:
        result = train(args.model, source=args.data, task=args.task, data_dir=args.data_dir,
                       out=args.out or Path("runs") / args.model, sampling_rate_hz=args.sampling_rate,
                       window_samples=args.window, train_windows=args.train_windows,
                       val_windows=args.val_windows, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, seed=args.seed, progress=not args.quiet)
    except TrainingDiverged as exc:
        print(f"error: {exc}; no checkpoint written", file=sys.stderr)
        return 1
    except (UnknownModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = result["report"]
    print(f"checkpoint: {result['checkpoint']}")
    print(f"validation: accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f}")
    for name, m in report["per_class"].items():
        print(f"  {name:>10}: Se {m['se']:.3f}  +P {m['ppv']:.3f}  n={m['support']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
