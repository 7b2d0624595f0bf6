"""What a rhythm model looked at: Grad-CAM over one recording, drawn as a PNG.

    python -m wearable.explain wearable/checkpoints/dscnn_tiny.pt --record ../shared/data/challenge2017/A00004
    python -m wearable.explain CHECKPOINT --record ecg.csv --sampling-rate 250 --out a.png

The recording is preprocessed as the runtime does it (resampled to the model rate, band-passed
causally, clipped), cut into the record decision's windows (``wearable.runtime.record``: every half
window plus one ending at the last sample), and every window is classified by the float model of
the checkpoint. For each window, Grad-CAM (Selvaraju et al., ICCV 2017) on the last 1-D
convolution weighs its feature maps by the gradient of the recording's decided class (the window's
own class when the recording is inconclusive); the ReLU of that sum, stretched to the window and
averaged where windows overlap, is the saliency. The PNG shows the trace with the saliency as a
colour band under it, each window's label as a bar above it, and the record decision in the title.
A recording shorter than one window is refused (exit 2): there is no window to explain.

Exit codes: 0 written; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["main", "grad_cam"]


def grad_cam(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Grad-CAM ``(n, W)`` in [0, 1] per window of ``x`` ``(n, C, W)`` for ``classes`` ``(n,)``,
    on the model's last ``Conv1d``."""
    import torch
    from torch import nn

    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    if not convs:
        raise ValueError("the model has no 1-D convolution to explain")
    store: dict = {}
    handle = convs[-1].register_forward_hook(lambda _m, _i, out: store.update(act=out))
    try:
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        logits = model(xt)
        act = store["act"]
        picked = logits.gather(1, torch.from_numpy(np.asarray(classes, dtype=np.int64))[:, None]).sum()
        (grads,) = torch.autograd.grad(picked, act)
    finally:
        handle.remove()
    cam = torch.relu((grads.mean(dim=-1, keepdim=True) * act).sum(dim=1)).detach().numpy()  # (n, T')
    width = x.shape[-1]
    out = np.stack([np.interp(np.linspace(0, c.size - 1, width), np.arange(c.size), c) for c in cam])
    peak = out.max(axis=1, keepdims=True)
    return np.where(peak > 0, out / np.maximum(peak, 1e-12), 0.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.explain", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a rhythm model's checkpoint (.pt)")
    p.add_argument("--record", required=True, help="WFDB record path without extension, or a .csv")
    p.add_argument("--sampling-rate", type=float, metavar="HZ", help="sensor rate (required for CSV)")
    p.add_argument("--channel", help="WFDB signal name (default: lead II, else the record's only ECG lead)")
    p.add_argument("--column", type=int, default=0, help="CSV column (default 0)")
    p.add_argument("--seconds", type=float, default=60.0, help="explain at most the first S seconds (default 60)")
    p.add_argument("--out", type=Path, help="PNG path (default: <record name>.explain.png)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from wearable.data import ecg_model_input
    from wearable.runtime.record import record_decide, record_window_starts
    from wearable.stream import read_record
    from wearable.training import load_checkpoint

    if not np.isfinite(args.seconds) or args.seconds <= 0:
        raise ValueError(f"--seconds must be a positive number, got {args.seconds}")
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.build()
    cfg = ckpt.config
    rate, window = float(cfg["sampling_rate_hz"]), int(cfg["window_samples"])
    hop = int(ckpt.data.get("hop_samples") or window // 2)
    if int(cfg.get("in_channels", 1)) != 1 or len(ckpt.labels) < 2:
        raise ValueError(f"{args.checkpoint}: not a single-lead classification model")
    raw, fs, desc = read_record(args.record, sampling_rate=args.sampling_rate, channel=args.channel,
                                column=args.column, kind="ecg")
    raw = np.nan_to_num(np.asarray(raw[: int(round(args.seconds * fs))], dtype=np.float64))
    x = ecg_model_input(raw, sampling_rate=fs, target_rate=rate)
    starts = record_window_starts(x.size, window_samples=window, hop_samples=hop)
    if not starts.size:
        raise ValueError(f"{desc}: {x.size / rate:.1f} s is shorter than one window ({window / rate:g} s): "
                         "nothing to explain")
    windows = np.stack([x[a:a + window] for a in starts])[:, None, :].astype(np.float32)
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(windows)), dim=-1).numpy()
    labels = tuple(ckpt.labels)
    decision = record_decide(probs, labels, n_samples=x.size, window_samples=window)
    own = probs.argmax(axis=1)
    target = np.full(len(starts), labels.index(decision["label"])) if decision["label"] in labels else own
    cam = grad_cam(model, windows, target)
    saliency, count = np.zeros(x.size), np.zeros(x.size)
    for a, c in zip(starts, cam):
        saliency[a:a + window] += c
        count[a:a + window] += 1
    saliency /= np.maximum(count, 1)
    out = args.out or Path(f"{Path(args.record).name}.explain.png")
    _draw(out, x, rate, saliency, starts, window, [labels[k] for k in own], probs.max(axis=1), decision,
          title=f"{ckpt.model_name} on {desc}")
    why = f" ({decision['reason']})" if decision.get("reason") else f" (p {decision['p']:.2f})"
    print(f"{desc}: record {decision['label']}{why} over {len(starts)} windows; plot: {out}", file=sys.stderr)
    return 0


def _draw(path: Path, x: np.ndarray, rate: float, saliency: np.ndarray, starts: np.ndarray, window: int,
          window_labels: list[str], window_p: np.ndarray, decision: dict, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(x.size) / rate
    fig, (top, ax) = plt.subplots(2, 1, figsize=(14, 4.8), sharex=True, height_ratios=(1, 5))
    colours = {"normal": "tab:green", "af": "tab:red", "other": "tab:orange", "noisy": "tab:gray"}
    for row, (a, label, p) in enumerate(zip(starts, window_labels, window_p)):
        y = row % 2
        top.barh(y, window / rate, left=a / rate, height=0.8, color=colours.get(label, "tab:blue"), alpha=0.7)
        top.text((a + window / 2) / rate, y, f"{label} {p:.2f}", ha="center", va="center", fontsize=7)
    top.set(yticks=[], ylabel="windows")
    lo, hi = float(x.min()), float(x.max())
    ax.imshow(saliency[None, :], aspect="auto", cmap="magma", alpha=0.55, extent=(0, x.size / rate, lo, hi),
              vmin=0, vmax=1, origin="lower")
    ax.plot(t, x, color="k", lw=0.6)
    ax.set(xlabel="time (s)", ylabel="model input (mV, band-passed)", ylim=(lo, hi))
    verdict = decision["label"] + (f" (p {decision['p']:.2f})" if decision.get("p") is not None else "")
    fig.suptitle(f"{title}: record {verdict}; Grad-CAM of the decided class (bright = looked at)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
