"""ECG-CL backbone and continual learning: masks isolate tasks, pruning hits its ratio, a pruned task exports.

Tiny configs and a few dozen synthetic windows; the two tasks are learned once per module.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from wearable.continual import ContinualNet, LearnConfig, magnitude_prune, task_export, task_learn  # noqa: E402
from wearable.data import load_windows  # noqa: E402
from wearable.models import create  # noqa: E402
from wearable.models.ecgcl import ECGCLConfig  # noqa: E402

W = 128
TINY = ECGCLConfig(window_samples=W, channels=(4, 6, 8, 8), hidden=8)
RATIO = 0.6


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    kw = dict(sampling_rate_hz=100.0, window_samples=W, limit=48)
    return {"waves": load_windows("synthetic", "waves", split="train", **kw),
            "rhythm": load_windows("synthetic", "rhythm", split="train", **kw)}


def _learn(isolation: bool, data) -> tuple[ContinualNet, dict]:
    torch.manual_seed(0)
    net = ContinualNet(TINY, isolation=isolation)
    cfg = LearnConfig(epochs=1, finetune_epochs=1, prune_ratio=RATIO, batch_size=16)
    log = {}
    net.task_add("waves", "segmentation", data["waves"].labels)
    log["stats1"] = task_learn(net, "waves", data["waves"], config=cfg)
    x = torch.from_numpy(data["waves"].x[:6])
    with torch.no_grad():
        log["before"] = net.eval()(x, "waves").clone()
    log["kernels1"] = {n: net.backbone.get_submodule(n).weight.detach().clone() for n in net.masked}
    log["owners1"] = {n: net.owner(n).clone() for n in net.masked}
    net.task_add("rhythm", "classification", data["rhythm"].labels)
    log["stats2"] = task_learn(net, "rhythm", data["rhythm"], config=cfg)
    with torch.no_grad():
        log["after"] = net.eval()(x, "waves")
    return net, log


@pytest.fixture(scope="module")
def learned(data):
    return _learn(True, data)


# --------------------------------------------------------------------------- backbone

@pytest.mark.parametrize("name, shape", [("ecgcl_tiny", (2, 5)), ("ecgcl_seg_tiny", (2, 2, 256))])
def test_backbone_outputs(name, shape):
    model = create(name).eval()
    assert tuple(model(torch.randn(2, 1, 256)).shape) == shape
    kinds = {type(m) for m in model.modules()}
    assert nn.ConvTranspose1d in kinds and nn.Upsample not in kinds and nn.GELU not in kinds
    assert len(model.config.channels) == 4


def test_segmentation_output_length_equals_input():
    model = create("ecgcl_seg_tiny", window_samples=W, channels=(4, 6, 8, 8), num_classes=4).eval()
    assert tuple(model(torch.randn(3, 1, W)).shape) == (3, 4, W)


def test_config_rejects_bad_windows_and_heads():
    with pytest.raises(ValueError, match="multiple of 16"):
        create("ecgcl_tiny", window_samples=100)
    with pytest.raises(ValueError, match="head"):
        create("ecgcl_tiny", head="detection")


# --------------------------------------------------------------------------- masks

def test_frozen_weight_gradients_are_zero(learned, data):
    net, _ = learned
    net.task("rhythm").phase = "train"  # pretend to keep learning: frozen and owned weights must get no gradient
    try:
        net.train()
        x, y = torch.from_numpy(data["rhythm"].x[:8]), torch.from_numpy(data["rhythm"].y[:8])
        for n in net.masked:
            net.backbone.get_submodule(n).weight.grad = None
        nn.functional.cross_entropy(net(x, "rhythm"), y).backward()
        net.gradients_mask("rhythm")
        free_grads = 0.0
        for n in net.masked:
            grad, owner = net.backbone.get_submodule(n).weight.grad, net.owner(n)
            if grad is None:  # a merge this head does not use (the segmentation output's)
                continue
            assert torch.count_nonzero(grad[owner > 0]) == 0
            free_grads += float(grad[owner == 0].abs().sum())
        assert free_grads > 0  # the free weights do learn
    finally:
        net.task("rhythm").phase = "frozen"
        net.eval()


def test_earlier_task_outputs_bit_identical(learned):
    net, log = learned
    assert torch.equal(log["before"], log["after"])
    for n in net.masked:  # the weights task 1 kept did not move by one bit
        kept = log["owners1"][n] == 1
        assert torch.equal(net.backbone.get_submodule(n).weight[kept], log["kernels1"][n][kept])


def test_plain_finetuning_forgets(data):
    _, log = _learn(False, data)
    assert not torch.equal(log["before"], log["after"])


def test_pruning_ratio_achieved(learned):
    net, log = learned
    for stats in (log["stats1"], log["stats2"]):
        assert stats.released + stats.kept == stats.free_before
        assert abs(stats.ratio - RATIO) < 0.01
    # task 2 had exactly the weights task 1 released, and released RATIO of them per kernel
    for n in net.masked:
        owner = net.owner(n)
        released1 = int((log["owners1"][n] == 0).sum())
        assert released1 == round(RATIO * owner.numel())
        assert int((owner == 0).sum()) == round(RATIO * released1)
        assert torch.count_nonzero(net.backbone.get_submodule(n).weight[owner == 0]) == 0  # released = zero
    assert log["stats2"].free_before == log["stats1"].released


def test_prune_twice_and_bad_ratio_rejected(learned):
    net, _ = learned
    with pytest.raises(ValueError, match="already pruned"):
        magnitude_prune(net, "waves", 0.5)
    with pytest.raises(ValueError, match="prune_ratio"):
        LearnConfig(prune_ratio=1.0)


def test_task_export_equals_task_and_hides_later_weights(learned, data):
    net, log = learned
    x = torch.from_numpy(data["waves"].x[:6])
    model = task_export(net, "waves")
    assert model.config.head == "segmentation" and model.config.num_classes == 4
    with torch.no_grad():
        assert torch.equal(model(x), log["before"])
    exported = dict(model.backbone.named_modules())
    assert "heads.low" not in exported  # the classification merge is not part of a segmentation model
    for n in set(net.masked) & set(exported):  # only task 1's weights survive in its export
        w = exported[n].weight
        assert torch.count_nonzero(w[net.owner(n) != 1]) == 0


def test_exported_task_checkpoint_round_trip(learned, tmp_path):
    from wearable.training import load_checkpoint, save_checkpoint

    net, _ = learned
    model = task_export(net, "rhythm")
    path = save_checkpoint(tmp_path / "ecgcl_tiny.pt", model, model_name="ecgcl_tiny",
                           data={"source": "synthetic", "task": "rhythm", "sampling_rate_hz": 100.0,
                                 "window_samples": W}, labels=list(net.task("rhythm").labels), metrics={}, seed=0)
    rebuilt = load_checkpoint(path).build()
    x = torch.randn(3, 1, W)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


@pytest.mark.slow
def test_pruned_task_exports_full_int8(learned, data, tmp_path):
    quantize = pytest.importorskip("quantize")
    pytest.importorskip("litert_torch")
    net, _ = learned
    windows = data["waves"]
    # Gates sized for a 1-epoch toy on 16 holdout windows; TFLite Micro's reference kernels round
    # up to one step differently per op, which adds up over the backbone's depth.
    gates = quantize.Thresholds(min_agreement_pct=90.0, max_error_ratio=0.3, max_tflm_diff=8, max_metric_drop=5.0)
    manifest = quantize.export_model(task_export(net, "waves"), tmp_path / "waves", calibration=windows.x[:32],
                                     holdout=windows.x[32:], holdout_labels=windows.y[32:],
                                     labels=list(windows.labels), task="waves", thresholds=gates)
    info = manifest.data
    assert info["model"]["name"] == "ecgcl" and info["model"]["config"]["head"] == "segmentation"
    assert info["tflm"]["arena_bytes"] > 0 and "tflite_micro" in info["verified_runtimes"]
    assert {op["name"] for op in info["ops"]} <= {"ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "RELU", "RESHAPE",
                                                   "TRANSPOSE", "TRANSPOSE_CONV"}


# --------------------------------------------------------------------------- scenario command

def test_scenario_command_prints_matrix(capsys, tmp_path):
    import json

    from wearable.continual.run import main

    rc = main(["--scenario", "synthetic", "--epochs", "1", "--train-limit", "32", "--test-limit", "16",
               "--window-samples", "128", "--quiet", "--json", str(tmp_path / "m.json"),
               "--checkpoint-dir", str(tmp_path / "ckpt")])
    out = capsys.readouterr().out
    assert rc == 0 and "packnet" in out and "finetune" in out and "after rhythm" in out
    result = json.loads((tmp_path / "m.json").read_text())["results"]
    packnet, finetune = result
    assert packnet["matrix"][0][0] == packnet["matrix"][0][1]  # isolation: task 1 unchanged by task 2
    assert packnet["matrix"][1][0] is None and finetune["method"] == "finetune"
    assert abs(packnet["prune_ratios"][0] - 0.5) < 0.01
    from wearable.training import load_checkpoint
    ckpt = load_checkpoint(tmp_path / "ckpt" / "waves.pt")
    assert ckpt.model_name == "ecgcl_seg_tiny" and ckpt.labels == ["background", "p", "qrs", "t"]


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "nope"], "invalid choice"),
    (["--scenario", "synthetic", "--epochs", "0"], "--epochs"),
    (["--scenario", "synthetic", "--window-samples", "100"], "multiple of 16"),
    (["--scenario", "synthetic", "--prune-ratio", "1.5"], "prune_ratio"),
])
def test_scenario_command_bad_input_exits_2(argv, message, capsys):
    from wearable.continual.run import main

    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and err.startswith("error:")


# --------------------------------------------------------------------------- deployment

@pytest.mark.parametrize("name", ["ecgcl_tiny", "ecgcl_seg_tiny"])
def test_channels_prune_shrinks_and_rebuilds_from_config(name):
    from wearable.continual.structured import channels_prune

    model = create(name, window_samples=W, num_classes=3).eval()
    pruned = channels_prune(model, 0.5)
    assert pruned.config.channels == (4, 8, 12, 16)
    assert sum(p.numel() for p in pruned.parameters()) < 0.4 * sum(p.numel() for p in model.parameters())
    x = torch.randn(2, 1, W)
    assert pruned(x).shape == model(x).shape
    rebuilt = create(name, **{**pruned.config.__dict__})  # the registered config alone describes it
    rebuilt.load_state_dict(pruned.state_dict())
    with pytest.raises(ValueError, match="ratio"):
        channels_prune(model, 1.0)


def test_qrs_peaks_and_detection_score():
    from wearable.continual.qrs import detections_score, qrs_peaks

    mask = np.zeros(1000, dtype=np.int64)
    for c in (100, 300, 305, 600):  # 305 is inside the refractory period of 300
        mask[c - 4:c + 5] = 1
    mask[800] = 1  # a one-sample blip is not a QRS
    peaks = qrs_peaks(mask, sampling_rate=100.0)
    assert peaks.tolist() == [100, 300, 600] or peaks.tolist() == [100, 302, 600]
    score = detections_score(np.array([102, 310, 450, 900]), peaks, sampling_rate=100.0)
    assert score == {"tp": 2, "fn": 2, "fp": 1}


def test_prune_report_command(learned, tmp_path, capsys):
    from wearable.continual.prune_report import main
    from wearable.training import save_checkpoint

    net, _ = learned
    path = save_checkpoint(tmp_path / "waves.pt", task_export(net, "waves"), model_name="ecgcl_seg_tiny",
                           data={"source": "synthetic", "task": "waves", "sampling_rate_hz": 100.0,
                                 "window_samples": W}, labels=list(net.task("waves").labels), metrics={}, seed=0)
    rc = main(["--checkpoint", str(path), "--ratios", "0.5", "--epochs", "1", "--train-limit", "32",
               "--test-limit", "16", "--no-export", "--quiet", "--json", str(tmp_path / "rows.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "MACs/window" in out
    import json
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["ratio"] for r in rows] == [0.0, 0.5] and rows[1]["params"] < rows[0]["params"]
    assert main(["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "error:" in capsys.readouterr().err


def test_mitdb_qrs_task_masks_the_beats(data_dir):
    ws = load_windows("mitdb", "qrs", split="val", sampling_rate_hz=100.0, window_samples=256, data_dir=data_dir,
                      limit=50)
    assert ws.labels == ("background", "qrs") and ws.y.shape == (50, 256) and ws.x.shape == (50, 1, 256)
    assert 0.05 < ws.y.mean() < 0.3  # ~1 beat per second, 11 samples (110 ms) each
