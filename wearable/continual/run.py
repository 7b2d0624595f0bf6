"""Run an ECG-CL continual-learning scenario end to end and print the task x stage metric matrix.

    python -m wearable.continual.run --scenario domain --data-dir ../shared/data

Runs the scenario twice: PackNet parameter isolation (masks, prune, freeze) and plain
fine-tuning of the same network (shared weights, one decoder per task), which forgets.
Exit codes: 0 done, 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from wearable.cli_util import UsageError, check_writable_dir
from wearable.data import DataError
from wearable.models.ecgcl import ECGCLConfig
from wearable.training import save_checkpoint

from ._cli import Parser
from .export import TASK_MODELS, task_export
from .packnet import LearnConfig
from .scenarios import SCENARIOS, ScenarioResult, scenario_run

__all__ = ["main", "matrix_format"]


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m wearable.continual.run", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS), help="which scenario to run")
    p.add_argument("--data-dir", type=Path, help="PhysioNet data folder (default: $WEARABLE_DATA_DIR)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs per task")
    p.add_argument("--finetune-epochs", type=int, default=1, help="fine-tuning epochs after pruning")
    p.add_argument("--prune-ratio", type=float, default=0.5, help="fraction of a task's free weights released")
    p.add_argument("--train-limit", type=int, default=4000, help="training windows per task")
    p.add_argument("--test-limit", type=int, default=2000, help="test windows per task")
    p.add_argument("--window-samples", type=int, default=256, help="window length at 100 Hz (multiple of 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baseline", action="store_true", help="skip the plain fine-tuning run")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the matrices as JSON")
    p.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                   help="write each PackNet task, exported on its own, as DIR/<task>.pt (wearable checkpoint)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def matrix_format(result: ScenarioResult) -> str:
    """The matrix as a text table: one row per task, one column per stage."""
    head = f"{'method':<9} {'task':<10}" + "".join(f" {'after ' + t:>16}" for t in result.tasks)
    lines = [head] if result.method == "packnet" else []
    for i, (task, row) in enumerate(zip(result.tasks, result.matrix)):
        cells = "".join(f" {'-' if v is None else f'{v:.1f}':>16}" for v in row)
        lines.append(f"{result.method if i == 0 else '':<9} {task:<10}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)  # small models: one thread is fastest and leaves the other cores alone
    try:
        if args.epochs < 1 or args.finetune_epochs < 0 or min(args.train_limit, args.test_limit) < 1:
            raise UsageError("--epochs, --train-limit and --test-limit must be >= 1, --finetune-epochs >= 0")
        if args.json:
            check_writable_dir(args.json.parent)
        if args.checkpoint_dir:
            check_writable_dir(args.checkpoint_dir)
        try:
            config = ECGCLConfig(window_samples=args.window_samples)
            learn = LearnConfig(epochs=args.epochs, finetune_epochs=args.finetune_epochs,
                                prune_ratio=args.prune_ratio, seed=args.seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        results = []
        for isolation in (True,) if args.no_baseline else (True, False):
            results.append(scenario_run(args.scenario, config=config, learn=learn, isolation=isolation,
                                        data_dir=args.data_dir, train_limit=args.train_limit,
                                        test_limit=args.test_limit, progress=not args.quiet))
    except (UsageError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"scenario {args.scenario}: {results[0].metric}; {args.train_limit} train windows per task, "
          f"{args.epochs}+{args.finetune_epochs} epochs, prune ratio {args.prune_ratio}")
    for r in results:
        print(matrix_format(r))
    for r in results:
        print(f"{r.method}: forgetting (learned - final) " +
              ", ".join(f"{t} {f:+.1f}" for t, f in zip(r.tasks, r.forgetting())))
    for r in results:
        for task, report in r.final.items():
            print(f"{r.method} {task} per class (Se/+P %): " + ", ".join(
                f"{c} {v['se'] * 100:.1f}/{v['ppv'] * 100:.1f}" for c, v in report["per_class"].items()))
    if args.json:
        args.json.write_text(json.dumps({"scenario": args.scenario, "results": [
            {"method": r.method, "tasks": r.tasks, "metric": r.metric, "matrix": r.matrix,
             "prune_ratios": r.prune_ratios, "final": r.final} for r in results]}, indent=1) + "\n")
    if args.checkpoint_dir:
        _checkpoints_write(results[0], args)
    return 0


def _checkpoints_write(result: ScenarioResult, args) -> None:
    net = result.net
    for i, (name, td) in enumerate(zip(result.tasks, SCENARIOS[args.scenario])):
        info = net.task(name)
        # data_dir None: whoever rebuilds the data passes --data-dir or sets $WEARABLE_DATA_DIR
        data = {"source": td.source, "task": td.task, "sampling_rate_hz": net.config.sampling_rate_hz,
                "window_samples": net.config.window_samples, "data_dir": None, "seed": args.seed}
        path = save_checkpoint(args.checkpoint_dir / f"{name}.pt", task_export(net, name),
                               model_name=TASK_MODELS[info.head], data=data, labels=list(info.labels),
                               metrics={"test_macro_f1_pct": result.matrix[i][-1]}, seed=args.seed)
        metrics = {"model": TASK_MODELS[info.head], "data": data, "labels": list(info.labels),
                   "scenario": args.scenario, "train_windows": args.train_limit, "test_windows": args.test_limit,
                   "epochs": args.epochs, "finetune_epochs": args.finetune_epochs, "prune_ratio": args.prune_ratio,
                   "test_macro_f1_pct_by_stage": result.matrix[i][i:]}
        path.with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
