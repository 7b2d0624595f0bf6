"""Beat classification (AAMI N, S, V, F) on MIT-BIH, de Chazal inter-patient protocol, float and int8.

    python -m wearable.continual.beat --data-dir ../shared/data --out runs/beat

Trains an ``ecgcl_tiny`` on DS1 (minus the validation records ``MITDB_VAL``), keeps the epoch
with the best validation score (mean F1 of S and V on the DS1 hold-out records) and scores
every beat of DS2: per-class sensitivity Se and positive predictivity +P, gross over the
records. The default task ``beat_rr`` adds the RR channel (intervals relative to the record's
running mean RR, see ``wearable.data._tasks_mitdb``) to the ECG window; ``--pool flatten``
keeps the position of the features in the classification decoder, so the model tells the
centre beat from its neighbours. The loss weights the classes by inverse frequency
(``--class-power``), N beats may be subsampled (``--n-limit``), the ECG channel is augmented
(gain, offset, noise, shift). With ``--out`` the model is saved as a checkpoint and exported
to full int8 through ``quantize.export_model`` (the path of every ECG-CL task) and the int8
model is scored on DS2 too: about 7 minutes on one thread of this machine.
Exit codes: 0 done, 1 the export failed its gates, 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from wearable.cli_util import UsageError, check_writable_dir
from wearable.data import DataError, load_windows
from wearable.data.windows import WindowSet
from wearable.metrics import classification_report
from wearable.models.ecgcl import ECGCL, ECGCLConfig
from wearable.training import save_checkpoint
from wearable.training.loop import class_weights, predict

from ._cli import Parser

__all__ = ["BeatConfig", "beat_windows", "n_subsample", "beat_train", "main"]

log = logging.getLogger(__name__)
NSVF = ("N", "S", "V", "F")


@dataclass(frozen=True)
class BeatConfig:
    epochs: int = 2
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0
    # augmentation of the ECG channel: the test patients differ from the training ones in gain,
    # noise and baseline, and the morphology memorised from 19 training patients overfits fast
    amplitude_jitter: float = 0.2  # scaled by U(1 - j, 1 + j)
    noise: float = 0.03  # Gaussian noise, mV
    baseline: float = 0.1  # constant offset U(-b, b), mV
    shift: int = 3  # whole window (both channels) rolled by up to this many samples
    class_power: float = 1.0  # loss weight (inverse class frequency) ** power: 1 balances fully
    select: str = "sv"  # best epoch by validation "sv" (mean F1 of S and V: val has 16 F beats) or "macro"


def beat_windows(task: str, split: str, *, data_dir, window_samples: int = 256, sampling_rate_hz: float = 100.0,
                 seed: int = 0) -> WindowSet:
    """All N/S/V/F beat windows of ``split`` (``beat``: Q beats dropped; ``beat_rr`` has no Q)."""
    ws = load_windows("mitdb", task, split=split, sampling_rate_hz=sampling_rate_hz, window_samples=window_samples,
                      data_dir=data_dir, seed=seed)
    if tuple(ws.labels) == NSVF:
        return ws
    keep = np.isin(np.asarray(ws.labels)[ws.y], NSVF)
    return WindowSet(x=ws.x[keep], y=ws.y[keep], labels=NSVF, sampling_rate_hz=ws.sampling_rate_hz,
                     source=ws.source, task=ws.task, records=ws.records)


def n_subsample(ws: WindowSet, n_limit: int | None, seed: int) -> WindowSet:
    """At most ``n_limit`` windows of class 0 (N), every window of the other classes, in order."""
    idx = np.flatnonzero(ws.y == 0)
    if n_limit is None or idx.size <= n_limit:
        return ws
    drop = np.setdiff1d(idx, np.random.default_rng(seed).choice(idx, size=n_limit, replace=False))
    keep = np.setdiff1d(np.arange(len(ws.y)), drop)
    return WindowSet(x=ws.x[keep], y=ws.y[keep], labels=ws.labels, sampling_rate_hz=ws.sampling_rate_hz,
                     source=ws.source, task=ws.task, records=ws.records)


def _augment(xb: torch.Tensor, config: BeatConfig, gen: torch.Generator) -> torch.Tensor:
    n = len(xb)
    xb[:, 0] *= 1.0 + config.amplitude_jitter * (2 * torch.rand(n, 1, generator=gen) - 1)
    xb[:, 0] += config.baseline * (2 * torch.rand(n, 1, generator=gen) - 1)
    xb[:, 0] += config.noise * torch.randn(xb[:, 0].shape, generator=gen)
    if config.shift:
        xb = torch.roll(xb, int(torch.randint(-config.shift, config.shift + 1, (1,), generator=gen)), dims=-1)
    return xb


def _selection_score(report: dict, select: str) -> float:
    if select == "macro":
        return report["macro_f1"]
    return (report["per_class"]["S"]["f1"] + report["per_class"]["V"]["f1"]) / 2


def beat_train(model: nn.Module, train: WindowSet, val: WindowSet, *, config: BeatConfig = BeatConfig(),
               progress: bool = False) -> tuple[nn.Module, list[dict]]:
    """Train ``model``; return the weights of the epoch with the best validation score, and the history."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    x = torch.from_numpy(np.ascontiguousarray(train.x, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(train.y, dtype=np.int64))
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(train.y, len(train.labels), config.class_power))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = max(1, -(-len(x) // config.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps)
    best, best_state, history = -1.0, copy.deepcopy(model.state_dict()), []
    bar = tqdm(total=config.epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True)
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        running = 0.0
        for s in range(steps):
            idx = order[s * config.batch_size:(s + 1) * config.batch_size]
            xb = _augment(x[idx].clone(), config, gen)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
            bar.update(1)
        report = classification_report(val.y, predict(model, val.x).argmax(axis=1), val.labels)
        score = _selection_score(report, config.select)
        history.append({"epoch": epoch + 1, "loss": running / steps, "val_macro_f1": report["macro_f1"],
                        "val_score": score})
        log.info("epoch %d: loss %.4f, val macro F1 %.4f, selection score %.4f", epoch + 1, running / steps,
                 report["macro_f1"], score)
        bar.set_postfix(val_f1=f"{report['macro_f1']:.3f}")
        if score > best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    bar.close()
    model.load_state_dict(best_state)
    return model.eval(), history


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m wearable.continual.beat", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="PhysioNet data folder (default: $WEARABLE_DATA_DIR)")
    p.add_argument("--task", choices=("beat_rr", "beat"), default="beat_rr", help="mitdb task (beat: ECG only)")
    p.add_argument("--pool", choices=("flatten", "mean"), default="flatten", help="classification decoder pooling")
    p.add_argument("--epochs", type=int, default=2, help="the DS1 hold-out peaks within 1-2 epochs, then overfits")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--class-power", type=float, default=1.0,
                   help="loss weights = (inverse class frequency) ** power (1: fully balanced)")
    p.add_argument("--dropout", type=float, default=0.3, help="classification decoder dropout")
    p.add_argument("--n-limit", type=int, help="N beats kept for training (default: all; S, V, F are all kept)")
    p.add_argument("--test-limit", type=int, help="score only this many DS2 beats (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, metavar="DIR", help="write DIR/beat.pt and the int8 export DIR/int8")
    p.add_argument("--max-tflm-diff", type=int, default=8, metavar="STEPS", help="export gate (see prune_report)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _per_class(y, pred, labels) -> dict:
    return classification_report(y, pred, labels)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO if args.quiet else logging.WARNING)  # epochs in the log when there is no bar
    torch.set_num_threads(1)
    try:
        limits = [n for n in (args.n_limit, args.test_limit) if n is not None]
        if args.epochs < 1 or min(limits, default=1) < 1:
            raise UsageError("--epochs, --n-limit and --test-limit must be >= 1")
        for path in (args.out, args.json.parent if args.json else None):
            if path is not None:
                check_writable_dir(path)
        kw = dict(data_dir=args.data_dir, seed=args.seed)
        train = n_subsample(beat_windows(args.task, "train", **kw), args.n_limit, args.seed)
        val = beat_windows(args.task, "val", **kw)
        test = beat_windows(args.task, "test", **kw)
    except (UsageError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.test_limit is not None and args.test_limit < len(test.y):
        pick = np.sort(np.random.default_rng(args.seed).choice(len(test.y), size=args.test_limit, replace=False))
        test = WindowSet(x=test.x[pick], y=test.y[pick], labels=test.labels, sampling_rate_hz=test.sampling_rate_hz,
                         source=test.source, task=test.task, records=test.records)
    config = ECGCLConfig(in_channels=train.x.shape[1], num_classes=len(NSVF), pool=args.pool, dropout=args.dropout)
    torch.manual_seed(args.seed)  # the initial weights too: runs differ by several S points between inits
    model, history = beat_train(ECGCL(config), train, val, progress=not args.quiet,
                                config=BeatConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                                                  class_power=args.class_power, seed=args.seed))
    result = {"task": args.task, "pool": args.pool, "train_counts": np.bincount(train.y, minlength=4).tolist(),
              "test_counts": np.bincount(test.y, minlength=4).tolist(), "history": history,
              "params": int(sum(p.numel() for p in model.parameters())),
              "float": _per_class(test.y, predict(model, test.x).argmax(axis=1), NSVF)}
    rc = 0
    if args.out:
        rc = _export(model, args, train, val, test, result)
    _print(result, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return rc


def _export(model, args, train, val, test, result: dict) -> int:
    from quantize import CheckFailed, ExportError, Thresholds, export_model

    from .prune_report import int8_predictor

    data = {"source": "mitdb", "task": args.task, "sampling_rate_hz": 100.0, "window_samples": 256,
            "data_dir": None, "seed": args.seed}
    f = result["float"]
    save_checkpoint(args.out / "beat.pt", model, model_name="ecgcl_tiny", data=data, labels=list(NSVF),
                    metrics={f"test_{c}_{m}_pct": 100.0 * f["per_class"][c][m] for c in NSVF for m in ("se", "ppv")},
                    seed=args.seed)
    rng = np.random.default_rng(args.seed)  # calibration: a class-mixed draw of training beats
    calib = train.x[np.sort(rng.choice(len(train.y), size=min(500, len(train.y)), replace=False))]
    # the gate's hold-out: every S, V and F beat of the validation records and 1000 N beats.
    # A random draw holds a handful of S and one or two F beats, which makes the task-metric
    # gate (macro F1 drop <= 0.5 point) a coin toss on single beats
    n_beats = np.flatnonzero(val.y == 0)
    hold = np.sort(np.concatenate([np.flatnonzero(val.y > 0),
                                   rng.choice(n_beats, size=min(1000, n_beats.size), replace=False)]))
    try:
        manifest = export_model(model, args.out / "int8", calibration=calib, holdout=val.x[hold],
                                holdout_labels=val.y[hold], labels=list(NSVF), task=args.task,
                                thresholds=Thresholds(max_tflm_diff=args.max_tflm_diff), overwrite=True).data
    except (CheckFailed, ExportError) as exc:
        result["export_error"] = str(exc).split("; worst tensors")[0]
        return 1
    tflite = args.out / "int8" / "model_int8.tflite"
    result["int8"] = _per_class(test.y, int8_predictor(tflite)(test.x).argmax(axis=1), NSVF)
    result["flash_bytes"] = tflite.stat().st_size
    result["arena_bytes"] = manifest["tflm"]["arena_bytes"]
    return 0


def _print(result: dict, args) -> None:
    print(f"mitdb {result['task']} (pool {result['pool']}), {result['params']} params; train DS1 minus val "
          f"{result['train_counts']} (N/S/V/F), test DS2 {result['test_counts']}")
    print("model | " + " | ".join(f"{c} Se/+P %" for c in NSVF) + " | macro F1 %")
    for kind in ("float", "int8"):
        if kind in result:
            r = result[kind]
            print(f"{kind} | " + " | ".join(f"{100 * r['per_class'][c]['se']:.1f}/{100 * r['per_class'][c]['ppv']:.1f}"
                                           for c in NSVF) + f" | {100 * r['macro_f1']:.1f}")
    if "flash_bytes" in result:
        print(f"int8: flash {result['flash_bytes']} B, TFLM arena {result['arena_bytes']} B")
    if "export_error" in result:
        print(f"int8 export failed: {result['export_error']}")


if __name__ == "__main__":
    sys.exit(main())
