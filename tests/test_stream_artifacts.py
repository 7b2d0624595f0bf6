"""benchmarks.stream_artifacts: bad input is one error line (a run on an export: test_ppg_dualstream)."""

from __future__ import annotations

from benchmarks.stream_artifacts import main


def test_missing_artifact_and_bad_numbers_are_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert main([str(tmp_path), "--records", "0"]) == 2
    assert "--records" in capsys.readouterr().err

