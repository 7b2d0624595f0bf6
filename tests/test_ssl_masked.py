"""Masked-reconstruction baseline (issue 5): the mask, the loss on masked patches only, pretraining."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wearable.models import create  # noqa: E402
from wearable.ssl.masked import masked_mse, masked_pretrain, patches_hide, patches_mask  # noqa: E402


def test_patches_mask_hides_the_asked_share_per_window():
    gen = torch.Generator().manual_seed(0)
    mask = patches_mask(50, 16, 0.25, gen)
    assert mask.shape == (50, 16) and mask.dtype == torch.bool
    assert (mask.sum(dim=1) == 4).all()
    assert len({tuple(row.tolist()) for row in mask}) > 1  # different patches per window
    assert (patches_mask(3, 4, 0.01, gen).sum(dim=1) == 1).all()  # at least one
    with pytest.raises(ValueError):
        patches_mask(2, 4, 1.0, gen)


def test_patches_hide_zeroes_exactly_the_masked_patches():
    x = torch.arange(1, 2 * 1 * 12 + 1, dtype=torch.float32).reshape(2, 1, 12)
    mask = torch.tensor([[True, False, False], [False, False, True]])
    hidden = patches_hide(x, mask, 4)
    assert (hidden[0, 0, :4] == 0).all() and torch.equal(hidden[0, 0, 4:], x[0, 0, 4:])
    assert (hidden[1, 0, 8:] == 0).all() and torch.equal(hidden[1, 0, :8], x[1, 0, :8])


def test_masked_mse_counts_masked_patches_only():
    torch.manual_seed(0)
    target = torch.randn(3, 5, 8)
    pred = torch.randn(3, 5, 8)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, 1] = mask[2, 4] = mask[2, 0] = True
    direct = np.mean([((pred[b, p] - target[b, p]) ** 2).mean().item() for b, p in ((0, 1), (2, 4), (2, 0))])
    assert masked_mse(pred, target, mask).item() == pytest.approx(direct, rel=1e-6)
    # any change on a visible patch leaves the loss alone; a change on a masked one does not
    wild = pred.clone()
    wild[~mask] = 1e3
    assert masked_mse(wild, target, mask).item() == pytest.approx(direct, rel=1e-6)
    wild[0, 1] += 1.0
    assert masked_mse(wild, target, mask).item() > direct
    # the gradient reaches masked patches only
    pred.requires_grad_(True)
    masked_mse(pred, target, mask).backward()
    assert (pred.grad[~mask] == 0).all() and (pred.grad[mask].abs().sum(dim=-1) > 0).all()


def test_masked_pretrain_learns_to_fill_in_a_sine():
    rng = np.random.default_rng(0)
    t = np.arange(128) / 64.0
    x = np.sin(2 * np.pi * rng.uniform(1.0, 2.0, (96, 1, 1)) * t + rng.uniform(0, 6.3, (96, 1, 1))).astype(np.float32)
    student = create("cmssl_student_ppg", window_samples=128)
    before = {k: v.clone() for k, v in student.encoder.state_dict().items()}
    hist = masked_pretrain(student, x, ratio=0.25, epochs=4, batch_size=32, lr=1e-2, progress=False)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[-1]["loss"] < hist[0]["loss"] and np.isfinite(hist[-1]["loss"])
    assert any(not torch.equal(before[k], v) for k, v in student.encoder.state_dict().items())
