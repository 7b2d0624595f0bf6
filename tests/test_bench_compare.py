"""python -m benchmarks.compare: cost of registered models (one real conversion, the rest is fast)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("litert_torch")
pytest.importorskip("tflite_micro")

from benchmarks import _compare_cost, compare  # noqa: E402
from benchmarks.macs import count_macs, macs_by_type  # noqa: E402
from benchmarks.targets import load_targets  # noqa: E402
from benchmarks.tflite_graph import read_graph  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One real run: dscnn_tiny built untrained (empty checkpoint dir), two targets, .tflite kept."""
    out = tmp_path_factory.mktemp("compare")
    empty = tmp_path_factory.mktemp("no_checkpoints")
    rc = compare.main(["--model", "dscnn_tiny", "--target", "nrf52840", "--target", "stm32u5",
                       "--checkpoints", str(empty), "--out", str(out), "--keep-tflite", "--jobs", "1", "-q"])
    return rc, out


def test_figures_match_the_mac_counter_and_targets(run):
    rc, out = run
    assert rc == 0
    report = json.loads((out / "compare.json").read_text())
    (row,) = report["models"]
    tflite = (out / "dscnn_tiny_int8.tflite").read_bytes()
    counts = count_macs(read_graph(tflite))
    assert row["macs"] == sum(c.macs for c in counts) > 0
    assert row["macs_by_type"] == json.loads(json.dumps(dict(macs_by_type(counts))))
    assert row["model_bytes"] == len(tflite)
    assert row["params"] > 0 and row["arena_bytes"] > 0
    assert row["config_source"] == "default config (untrained)" and row["metric"] is None
    assert [r["target"] for r in row["targets"]] == ["nrf52840", "stm32u5"]
    for r in row["targets"]:
        assert r["measured"] is False and r["latency_ms"] > 0 and r["fits"] in (True, False)
        assert r["flash_bytes"] == len(tflite) + report["runtime_allowance"]["flash_bytes"]
    # same clock-scaled core model: the faster M33 target is estimated faster than the M4F
    lat = {r["target"]: r["latency_ms"] for r in row["targets"]}
    assert lat["stm32u5"] < lat["nrf52840"]
    md = (out / "compare.md").read_text()
    assert "| dscnn_tiny |" in md and "- (untrained)" in md and "estimates" in md


def test_table_lines(run):
    _, out = run
    report = json.loads((out / "compare.json").read_text())
    lines = compare.table_lines(report)
    assert lines[0].split()[:3] == ["model", "params", "MACs"] and "nrf52840 ms" in lines[0]
    assert lines[1].startswith("dscnn_tiny") and "(untrained)" in lines[1]


def test_failed_conversion_is_a_row(monkeypatch):
    def boom(model, seed=0):
        raise RuntimeError("no kernel for op FOO")

    monkeypatch.setattr(_compare_cost, "convert_int8", boom)
    (row,) = compare.compare_models(["dscnn_tiny"], list(load_targets().values())[:1])
    assert "no kernel for op FOO" in row["error"] and row["params"] > 0
    report = {"models": [row], "targets": [{"name": "nrf52840"}]}
    assert "FAILED: int8 conversion failed" in compare.table_lines(report)[1]


def test_shipped_metric(tmp_path):
    (tmp_path / "m.metrics.json").write_text(json.dumps({"data": {"source": "s", "task": "t"},
                                                         "validation": {"macro_f1": 0.5}}))
    got = _compare_cost.shipped_metric("m", tmp_path)
    assert got["value"] == 50.0 and "macro F1" in got["metric"] and got["task"] == "s/t"
    assert _compare_cost.shipped_metric("absent", tmp_path) is None


@pytest.mark.parametrize("argv, word", [(["--model", "no_such_model"], "unknown model"),
                                        (["--target", "no_such_chip"], "unknown target"),
                                        (["--target", "host"], "unknown target")])
def test_bad_input_exits_2(argv, word, tmp_path, capsys):
    assert compare.main([*argv, "--out", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and word in err[0]


def test_arena_worker_survives_a_crashing_model(run):
    """A model that kills the TFLite Micro worker gets its reason; the next model is still measured."""
    from benchmarks._compare_tflm import arenas

    _, out = run
    good = (out / "dscnn_tiny_int8.tflite").read_bytes()
    (bad_arena, why), (arena, none) = arenas([b"not a flatbuffer", good])
    assert bad_arena is None and "crashed" in why
    assert arena == json.loads((out / "compare.json").read_text())["models"][0]["arena_bytes"] and none is None
