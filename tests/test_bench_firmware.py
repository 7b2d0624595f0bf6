"""Firmware sizes in the benchmark report: measured when possible, otherwise the reason."""

from benchmarks.firmware import firmware_sizes
from benchmarks.report import _firmware


def test_missing_firmware_dir_is_reported_not_raised(tmp_path):
    assert "no firmware/" in firmware_sizes(tmp_path)["error"]
    assert "not measured (no firmware/" in _firmware(firmware_sizes(tmp_path))[-1]


def test_sizes_table_lists_every_file_and_the_total():
    fw = {"flags": ["-Os"], "files": {"b.c": {"text": 10, "data": 1, "bss": 2}, "a.c": {"text": 5, "data": 0, "bss": 0}},
          "total": {"text": 15, "data": 1, "bss": 2}}
    lines = _firmware(fw)
    assert lines[-3:] == ["| a.c | 5 | 0 | 0 |", "| b.c | 10 | 1 | 2 |", "| **total** | 15 | 1 | 2 |"]
