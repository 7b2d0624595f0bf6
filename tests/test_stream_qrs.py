"""benchmarks.stream_qrs: bad input is one error line (the measurement itself is a benchmark)."""

from __future__ import annotations

import pytest

pytest.importorskip("wfdb")
from benchmarks.stream_qrs import main  # noqa: E402


def test_missing_artifact_is_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "none"), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_bad_chunk_is_exit_2(tmp_path, capsys):
    assert main([str(tmp_path), "--data-dir", str(tmp_path), "--chunk", "0"]) == 2
    assert "--chunk" in capsys.readouterr().err
