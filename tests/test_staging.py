"""``wearable._staging``: outputs published all or nothing, a writer killed or failing at each stage
leaves the old output intact or the new one complete, and what dead writers leave is swept.

Kills are real: a child Python process stages a directory and SIGKILLs itself at a hook (while
writing, once everything is written, after the old directory went aside, after the new one came
in). Standard library only, so the module runs in a second or two.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wearable._staging import LEGACY_STALE_S, staged_dir, sweep_stale

REPO = Path(__file__).resolve().parents[1]
OLD = {"manifest.json": "old manifest", "model.bin": "old model", "firmware/model_data.c": "old c"}
NEW = {"manifest.json": "new manifest", "model.bin": "new model", "extra.txt": "new",
       "firmware/model_data.c": "new c"}

# The child: writes NEW into a staging directory for argv[1], dying by SIGKILL at stage argv[2].
_CHILD = r"""
import os, signal, sys
from pathlib import Path
from wearable._staging import staged_dir

dest, stage, files = Path(sys.argv[1]), sys.argv[2], eval(sys.argv[3])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real_replace, renames = os.replace, []

def replace(src, dst):
    real_replace(src, dst)
    renames.append(dst)
    if (stage, len(renames)) in (("aside", 1), ("swapped", 2)):
        die()

os.replace = replace
with staged_dir(dest) as tmp:
    for k, (name, text) in enumerate(sorted(files.items())):
        if stage == "writing" and k == 2:
            die()
        (tmp / name).parent.mkdir(exist_ok=True)
        (tmp / name).write_text(text)
    if stage == "written":  # e.g. inside the firmware generator, the last step before the swap
        die()
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _read(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def _kill_at(dest: Path, stage: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(dest), stage, repr(NEW)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("stage, after_kill", [("writing", OLD), ("written", OLD), ("aside", None),
                                               ("swapped", NEW)])
def test_a_killed_writer_leaves_old_or_new_whole_and_the_next_one_sweeps(tmp_path, stage, after_kill):
    dest = tmp_path / "dscnn_tiny"
    _write(dest, OLD)
    _kill_at(dest, stage)
    if after_kill is None:  # killed between the two renames: the old one waits aside
        assert not dest.exists()
    else:
        assert _read(dest) == after_kill
    assert _leftovers(tmp_path)  # the dead writer's staging (or old) directory
    handled = sweep_stale(dest)
    assert handled and _leftovers(tmp_path) == []
    assert _read(dest) == (OLD if after_kill is None else after_kill)  # the previous one put back
    with staged_dir(dest) as tmp:  # and the next writer publishes as usual
        _write(tmp, NEW)
    assert _read(dest) == NEW and _leftovers(tmp_path) == []


def test_the_next_staging_sweeps_by_itself(tmp_path):
    dest = tmp_path / "a"
    _write(dest, OLD)
    _kill_at(dest, "aside")
    with pytest.raises(RuntimeError):
        with staged_dir(dest) as tmp:  # restores the previous one first, then fails
            _write(tmp, NEW)
            raise RuntimeError("disk full")
    assert _read(dest) == OLD and _leftovers(tmp_path) == []


@pytest.mark.parametrize("keep_others", [False, True])
def test_a_failure_at_each_stage_leaves_the_old_output(tmp_path, monkeypatch, keep_others):
    dest = tmp_path / "out"
    _write(dest, {**OLD, "mine.txt": "user file"})
    before = _read(dest)
    for k in range(len(NEW)):  # fail while writing the k-th file
        with pytest.raises(OSError):
            with staged_dir(dest, keep_others=keep_others) as tmp:
                for i, (name, text) in enumerate(sorted(NEW.items())):
                    if i == k:
                        raise OSError(28, "No space left on device")
                    _write(tmp, {name: text})
        assert _read(dest) == before and _leftovers(tmp_path) == [] and _leftovers(dest) == []
    real_replace = os.replace
    calls = []

    def second_rename_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_rename_fails)
    with pytest.raises(OSError):
        with staged_dir(dest, keep_others=keep_others) as tmp:
            _write(tmp, NEW)
    monkeypatch.setattr(os, "replace", real_replace)
    assert _read(dest) == before  # what went aside came back
    assert _leftovers(tmp_path) == [] and _leftovers(dest) == []


def test_keep_others_replaces_only_its_own_files(tmp_path):
    dest = tmp_path / "report"
    _write(dest, {"report.md": "old", "notes.txt": "mine"})
    with staged_dir(dest, keep_others=True) as tmp:
        _write(tmp, {"report.md": "new", "report.json": "{}"})
    assert _read(dest) == {"notes.txt": "mine", "report.json": "{}", "report.md": "new"}
    (dest / "report.json").unlink()
    (dest / "report.json").mkdir()  # a directory where a file goes: refused before any rename
    with pytest.raises(IsADirectoryError):
        with staged_dir(dest, keep_others=True) as tmp:
            _write(tmp, {"report.md": "newer", "report.json": "{}"})
    assert (dest / "report.md").read_text() == "new" and _leftovers(dest) == []


def test_new_parents_are_removed_on_failure_and_overwrite_is_honoured(tmp_path):
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError):
        with staged_dir(dest):
            raise RuntimeError("gate failed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileExistsError, match="appeared"):
        with staged_dir(dest, overwrite=False) as tmp:
            _write(tmp, NEW)
            _write(dest, OLD)  # someone else's export finished first
    assert _read(dest) == OLD


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_live_or_locked_writers_are_left_alone(tmp_path):
    dest = tmp_path / "m"
    dead, live = _dead_pid(), os.getppid()
    own = tmp_path / f".m.tmp-{os.getpid()}-aaaaaaaa"
    running = tmp_path / f".m.tmp-{live}-bbbbbbbb"
    locked = tmp_path / f".m.tmp-{dead}-cccccccc"  # a writer in another PID namespace holds its lock
    gone = tmp_path / f".m.tmp-{dead}-dddddddd"
    other = tmp_path / f".mm.tmp-{dead}-eeeeeeee"  # another destination's
    legacy_new, legacy_old = tmp_path / ".m.tmp-ffffffff", tmp_path / ".m.old-gggggggg"
    for d in (own, running, locked, gone, other, legacy_new, legacy_old):
        d.mkdir()
    (legacy_old / "junk").write_text("x")
    day_ago = time.time() - LEGACY_STALE_S - 60
    os.utime(legacy_old, (day_ago, day_ago))
    fd = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        handled = sweep_stale(dest)
    finally:
        os.close(fd)
    assert sorted(p.name for p in handled) == sorted([gone.name, legacy_old.name])
    assert sorted(_leftovers(tmp_path)) == sorted(p.name for p in (own, running, locked, other, legacy_new))
    assert [p.name for p in sweep_stale(dest)] == [locked.name]  # its writer let go
