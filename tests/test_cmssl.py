"""CM-SSL (issue 5): VQ quantizer health, tokenizer gradients, student shapes and pretraining,
downstream fit, and the student's int8 export through TFLite Micro. Tiny configs only."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wearable.models import create  # noqa: E402
from wearable.models.cmssl import VectorQuantizerEMA, VQTokenizer, VQTokenizerConfig, codebook_usage  # noqa: E402
from wearable.ssl import codes_predict, regression_fit, regression_mae, student_pretrain, tokenizer_train  # noqa: E402

WINDOW = 128  # 4 patches of 32 samples


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _paired(n: int, seed: int = 0) -> np.ndarray:
    """Sine 'ECG' and 'PPG' pairs at random rates and phases, (n, 2, WINDOW)."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW) / 64.0
    f = rng.uniform(0.8, 2.5, (n, 1))
    ph = rng.uniform(0, 2 * np.pi, (n, 1))
    ecg = np.sin(2 * np.pi * f * t + ph) ** 9
    ppg = np.sin(2 * np.pi * f * t + ph - 1.0)
    return np.stack([ecg, ppg], axis=1).astype(np.float32) + 0.05 * rng.standard_normal((n, 2, WINDOW)).astype(np.float32)


def test_codebook_usage_known_assignment():
    # 4 of 8 codes used, with probabilities 1/2, 1/4, 1/8, 1/8: H = 1.75 bits
    idx = np.array([0] * 4 + [1] * 2 + [2] + [5])
    usage = codebook_usage(idx, 8)
    assert usage["fraction_used"] == 0.5
    assert usage["perplexity"] == pytest.approx(2 ** 1.75)
    assert codebook_usage(np.arange(16), 16)["perplexity"] == pytest.approx(16.0)
    assert codebook_usage(np.zeros(10, int), 16) == {"fraction_used": 1 / 16, "perplexity": pytest.approx(1.0)}


def test_straight_through_gradient_reaches_encoder():
    torch.manual_seed(0)
    tok = VQTokenizer(VQTokenizerConfig(window_samples=WINDOW, num_codes=8, hidden=8, code_dim=4)).train()
    x = torch.from_numpy(_paired(16))
    recon, idx, commit = tok(x)
    assert recon.shape == x.shape and idx.shape == (16, WINDOW // 32)
    ((recon - x).pow(2).mean() + commit).backward()
    first_conv = tok.encoder[1]
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    assert all(b.grad is None for b in tok.quantizer.buffers())  # the codebook learns by EMA only


def test_ema_moves_used_codes_and_restarts_dead_ones():
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(3, 2, decay=0.5, dead_threshold=1.0).train()
    vq.initialized.fill_(True)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [100.0, -100.0]]))
    vq.embed_sum.copy_(vq.codebook)
    vq.cluster_size.fill_(1.0)
    # 8 vectors near (1, 1) and 8 near (9, 9): codes 0 and 1 are used, code 2 is not
    z = torch.cat([torch.full((8, 2), 1.0), torch.full((8, 2), 9.0)]) + 0.01 * torch.randn(16, 2)
    _, idx, _ = vq(z.t().unsqueeze(0))  # (1, D=2, T=16)
    assert set(idx.reshape(-1).tolist()) == {0, 1}
    # EMA with decay 0.5: code 0 -> (0.5 * 0 + 0.5 * 8 * 1) / (0.5 + 4) ~ 0.89, pulled toward 1
    assert 0.5 < vq.codebook[0, 0].item() < 1.0 and 9.0 < vq.codebook[1, 0].item() < 10.0
    # code 2's EMA count fell to 0.5 < 1: restarted onto a batch vector
    assert vq.restarts == 1
    assert torch.cdist(vq.codebook[2:], z).min().item() < 0.5
    with torch.no_grad():  # eval mode leaves the codebook alone
        before = vq.codebook.clone()
        vq.eval()(z.t().unsqueeze(0))
    assert torch.equal(before, vq.codebook)


def test_tokenizer_train_reports_usage_and_codes():
    tok = VQTokenizer(VQTokenizerConfig(window_samples=WINDOW, num_codes=8, hidden=16, code_dim=4))
    hist = tokenizer_train(tok, _paired(128), _paired(32, seed=1), epochs=3, batch_size=16, progress=False)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert 0 < hist[-1]["fraction_used"] <= 1 and 1 <= hist[-1]["perplexity"] <= 8
    assert hist[-1]["nmse_ch1"] < 1.0  # learns something of the PPG
    codes = codes_predict(tok, _paired(10, seed=2))
    assert codes.shape == (10, WINDOW // 32) and codes.dtype == np.int64 and codes.max() < 8


def test_student_forward_shapes_and_config():
    student = create("cmssl_student_ppg", window_samples=WINDOW, num_classes=3).eval()
    x = torch.randn(2, 1, WINDOW)
    assert student.config.patch_samples == 32
    assert student.encoder(x).shape == (2, student.config.feature_channels, WINDOW // 32)
    assert student(x).shape == (2, 3)
    with pytest.raises(ValueError):
        create("cmssl_student_ppg", window_samples=100)


def test_student_learns_code_targets():
    x = _paired(96)
    codes = (np.arange(WINDOW // 32)[None, :] + (x[:, 1, ::32] > 0)).astype(np.int64) % 4  # a learnable target
    student = create("cmssl_student_ppg", window_samples=WINDOW)
    hist = student_pretrain(student, x[:, 1:], codes, 4, val=(x[:, 1:], codes), epochs=4, batch_size=32,
                            lr=1e-2, progress=False)
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["code_accuracy"] > 0.4  # chance is ~0.25


def test_regression_fit_probe_freezes_encoder():
    x = _paired(64)[:, 1:]
    y = np.linspace(60, 120, 64).astype(np.float32)
    model = create("cmssl_student_ppg", window_samples=WINDOW)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    fit = regression_fit(model, (x, y), (x, y), mode="probe", steps=10, evals=2, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert fit["val_mae"] == pytest.approx(regression_mae(model, x, y), rel=1e-5)
    assert math.isfinite(fit["val_mae"])
    with pytest.raises(ValueError):
        regression_fit(model, (x, y), (x, y), mode="linear")


def test_student_exports_int8_and_runs_on_tflm(tmp_path):
    quantize = pytest.importorskip("quantize")
    torch.manual_seed(0)
    x = _paired(96)[:, 1:]
    y = (x[:, 0, ::32].mean(axis=1) > 0).astype(np.int64) + (np.abs(x[:, 0]).mean(axis=1) > 0.6)
    model = create("cmssl_student_ppg", window_samples=WINDOW, num_classes=3)
    # a few steps of training: a random network's near-constant activations are no export test
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        idx = torch.randint(0, 64, (32,))
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    manifest = quantize.export_model(model.eval(), tmp_path / "student", calibration=x, holdout=x[64:],
                                     labels=["a", "b", "c"],
                                     # gates are loose: 32 held-out windows of a 30-step toy model
                                     thresholds=quantize.Thresholds(min_agreement_pct=80.0, min_output_coverage=0.5))
    assert manifest.arena_bytes is not None and 0 < manifest.arena_bytes <= 96 * 1024
    assert (tmp_path / "student" / "model_int8.tflite").is_file()


def test_nt_xent_matches_direct_computation():
    from wearable.ssl.contrastive import nt_xent

    torch.manual_seed(0)
    z1, z2 = torch.randn(3, 4), torch.randn(3, 4)
    tau = 0.5
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).numpy().astype(np.float64)
    total = 0.0
    for i in range(6):  # anchor i, positive i +- 3, denominator over every k != i
        pos = (i + 3) % 6
        sims = {k: float(z[i] @ z[k]) / tau for k in range(6) if k != i}
        total += -sims[pos] + math.log(sum(math.exp(v) for v in sims.values()))
    assert nt_xent(z1, z2, tau).item() == pytest.approx(total / 6, rel=1e-5)
    # identical views with far-apart windows: near-zero loss
    eye = torch.eye(4)[:3] * 10
    assert nt_xent(eye, eye, 0.1).item() < 1e-3


def test_windows_augment_shape_and_randomness():
    from wearable.ssl.contrastive import windows_augment

    x = torch.from_numpy(_paired(4)[:, 1:])
    gen = torch.Generator().manual_seed(0)
    a, b = windows_augment(x, gen), windows_augment(x, gen)
    assert a.shape == x.shape and not torch.allclose(a, b) and torch.isfinite(a).all()


def test_run_cli_bad_input_exits_2(capsys, tmp_path):
    from wearable.ssl.run import main

    assert main(["--data-dir", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["--data-dir", str(tmp_path), "--methods", "scratch,magic"]) == 2
    assert "magic" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "--encoders", "plain,wide"]) == 2
    assert "wide" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "--mask-ratio", "1.5"]) == 2
    assert capsys.readouterr().err.startswith("error: --mask-ratio")
