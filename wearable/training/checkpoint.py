"""Checkpoint format: one ``torch.save`` file holding the model name, its config, the data
spec it was trained on, labels, metrics and the weights.

The data spec is what export needs to rebuild calibration and held-out sets
(``wearable.data.load_windows(**spec, split=...)``).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wearable.models import config_class, create

__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "nonfinite_tensors", "FORMAT_VERSION"]

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or inconsistent."""


@dataclass
class Checkpoint:
    model_name: str
    config: dict[str, Any]
    data: dict[str, Any]  # kwargs of wearable.data.load_windows, minus split
    labels: list[str]
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    model_version: str = "1"
    format_version: int = FORMAT_VERSION

    def build(self) -> nn.Module:
        """The model with its weights loaded, in eval mode."""
        model = create(self.model_name, **self.config)
        model.load_state_dict(self.state_dict)
        return model.eval()


def nonfinite_tensors(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` that hold a NaN or an infinity."""
    return [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_checkpoint(path: str | Path, model: nn.Module, *, model_name: str, data: dict[str, Any],
                    labels: list[str], metrics: dict[str, float], seed: int, model_version: str = "1") -> Path:
    """Write a checkpoint; the bytes depend only on the arguments (no timestamps).

    Raises ``CheckpointError`` (nothing written) when a weight is NaN or infinite: such a model
    predicts nothing and crashed a TFLite delegate when exported.
    """
    bad = nonfinite_tensors(model.state_dict())
    if bad:
        raise CheckpointError(f"not saving {model_name}: {_nonfinite_text(bad)}")
    ckpt = Checkpoint(model_name=model_name, config=_plain(asdict(model.config)), data=_plain(data),
                      labels=list(labels), state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                      metrics={k: float(v) for k, v in metrics.items()}, seed=seed, model_version=model_version)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(asdict(ckpt), buf)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint; raise ``CheckpointError`` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a wearable checkpoint (format {FORMAT_VERSION})")
    try:
        ckpt = Checkpoint(**raw)
        config_class(ckpt.model_name)(**ckpt.config)
        ckpt.build()
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} does not match model {raw.get('model_name')!r}: {exc}") from None
    bad = nonfinite_tensors(ckpt.state_dict)
    if bad:
        raise CheckpointError(f"checkpoint {path}: {_nonfinite_text(bad)}")
    return ckpt


def _nonfinite_text(names: list[str]) -> str:
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"NaN or infinite weights in {', '.join(names[:3])}{more} (a diverged training run; retrain with a lower --lr)"


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so that configs survive JSON and weights_only loading."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
