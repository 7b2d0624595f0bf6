"""Training loop, checkpoint format and the training CLI."""

from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wearable.models import create  # noqa: E402
from wearable.training import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from wearable.training.loop import TrainConfig, evaluate, fit  # noqa: E402


@dataclass
class _Windows:
    x: np.ndarray
    y: np.ndarray
    labels: tuple


def _toy(n, seed):
    """Two classes that differ by dominant frequency: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(128) / 64.0
    freq = np.where(y == 0, 2.0, 9.0)[:, None]
    x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3, (n, 1))) + 0.2 * rng.standard_normal((n, 128))
    return _Windows(x[:, None, :].astype(np.float32), y.astype(np.int64), ("slow", "fast"))


def _tiny_model():
    return create("dscnn_tiny", window_samples=128, num_classes=2, stem_channels=8,
                  blocks=((8, 2), (16, 2)), dropout=0.0)


def test_fit_learns_and_is_reproducible():
    train, val = _toy(256, 0), _toy(128, 1)
    reports, weights = [], []
    for _ in range(2):
        torch.manual_seed(3)
        model = _tiny_model()
        reports.append(fit(model, train, val, config=TrainConfig(epochs=4, batch_size=32, lr=1e-2, seed=3),
                           progress=False))
        weights.append(model.state_dict())
    assert reports[0]["accuracy"] > 0.9, reports[0]
    assert reports[0] == reports[1]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_fit_rejects_segmentation_targets_for_a_classifier():
    data = _toy(8, 0)
    data.y = np.zeros((8, 128), np.int64)
    with pytest.raises(ValueError, match="segmentation"):
        fit(_tiny_model(), data, data, config=TrainConfig(epochs=1), progress=False)


def test_checkpoint_round_trip_is_byte_stable(tmp_path):
    model = _tiny_model()
    kw = dict(model_name="dscnn_tiny", data={"source": "synthetic", "task": "rhythm"}, labels=["slow", "fast"],
              metrics={"val_macro_f1": 0.5}, seed=1)
    a = save_checkpoint(tmp_path / "a.pt", model, **kw).read_bytes()
    b = save_checkpoint(tmp_path / "b.pt", model, **kw).read_bytes()
    assert a == b
    ckpt = load_checkpoint(tmp_path / "a.pt")
    rebuilt = ckpt.build()
    x = torch.randn(3, 1, 128)
    assert torch.equal(rebuilt(x), model.eval()(x))
    assert ckpt.labels == ["slow", "fast"] and ckpt.config["blocks"] == [[8, 2], [16, 2]]


def test_missing_and_corrupt_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(CheckpointError, match="not a wearable checkpoint"):
        load_checkpoint(other)


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _tiny_model(), model_name="dscnn_tiny", data={}, labels=["a", "b"],
                           metrics={}, seed=0)
    raw = torch.load(path, weights_only=True)
    raw["config"]["blocks"] = [[8, 2]]  # weights no longer fit the config
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path)


def test_evaluate_reports_per_class():
    data = _toy(64, 2)
    report = evaluate(_tiny_model(), data)
    assert set(report["per_class"]) == {"slow", "fast"}
    assert 0.0 <= report["macro_f1"] <= 1.0


def test_diverging_fit_stops_with_training_diverged():
    from wearable.training.loop import TrainingDiverged

    data = _toy(64, 3)
    with pytest.raises(TrainingDiverged, match="loss is nan"):
        fit(_tiny_model(), data, data, config=TrainConfig(epochs=2, batch_size=8, lr=1e20), progress=False)
    for lr, decay in ((float("inf"), 1e-4), (float("nan"), 1e-4), (0.0, 1e-4), (1e-3, float("nan"))):
        with pytest.raises(ValueError, match="must be a finite number"):
            TrainConfig(lr=lr, weight_decay=decay)


def test_weights_that_turn_nan_stop_training_after_the_epoch(monkeypatch):
    """A last step can leave NaN weights behind a finite loss: the epoch's weight check catches it."""
    from wearable.training.loop import TrainingDiverged

    step = torch.optim.AdamW.step

    def poisoning_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoning_step)
    data = _toy(16, 4)
    with pytest.raises(TrainingDiverged, match="NaN or infinite after epoch 1"):
        fit(_tiny_model(), data, data, config=TrainConfig(epochs=1, batch_size=16), progress=False)


def test_checkpoints_with_nan_weights_are_neither_saved_nor_loaded(tmp_path):
    model = _tiny_model()
    kw = dict(model_name="dscnn_tiny", data={}, labels=["a", "b"], metrics={}, seed=0)
    path = save_checkpoint(tmp_path / "c.pt", model, **kw)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(CheckpointError, match="NaN or infinite weights"):
        save_checkpoint(tmp_path / "bad.pt", model, **kw)
    assert not (tmp_path / "bad.pt").exists()
    raw = torch.load(path, weights_only=True)  # written by something else: refused on load
    name = next(iter(raw["state_dict"]))
    raw["state_dict"][name] = torch.full_like(raw["state_dict"][name], float("nan"))
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=f"NaN or infinite weights in {name}"):
        load_checkpoint(path)
