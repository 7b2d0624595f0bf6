"""Output directories written all or nothing: stage next to the destination, publish at the end.

``staged_dir(dest)`` yields an empty staging directory ``.NAME.tmp-PID-XXXXXXXX`` (``NAME`` is
``dest``'s name, ``PID`` the writing process) on the file system of ``dest``. The caller writes
every file there; only when the block ends without an exception are they published:

* ``dest`` missing: the staging directory is renamed to ``dest`` (one atomic rename);
* ``dest`` replaced whole (the default): ``dest`` is renamed aside into
  ``.NAME.old-PID-XXXXXXXX/previous``, the staging directory is renamed in, then the old one is
  deleted; should the second rename fail, the old one is put back;
* ``keep_others=True`` (a directory the user named, which may hold files of their own): the
  staging directory is made inside ``dest`` and each file is renamed over its namesake, whose
  previous version waits in ``dest/.NAME.old-PID-XXXXXXXX`` until all are in (and comes back
  if a rename fails); the other files stay. Each rename is atomic, the set is not: a kill
  between two of them leaves some files of each set (the sweep puts a file set aside back
  where no new one came).

An exception in the block removes the staging directory (and the parent directories made for
it): ``dest`` is as it was. A process killed while staging leaves its directory behind, so every
staging of ``NAME`` first sweeps the ones whose writer is gone. The rule: a ``.NAME.tmp-*`` or
``.NAME.old-*`` directory is stale when the PID in its name runs no process on this machine and
no process holds the ``flock`` its writer keeps on it (the lock covers a writer in another PID
namespace sharing the directory; the kernel drops it when the writer dies); a name without a
PID, from before this rule, is stale once unlocked and ``LEGACY_STALE_S`` old. A stale
``.NAME.old-*`` found while ``dest`` is missing holds the previous ``dest`` (its writer died
between the two renames): it is renamed back, not deleted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # not on Windows: the PID rule alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["staged_dir", "sweep_stale", "LEGACY_STALE_S"]

LEGACY_STALE_S = 24 * 3600.0  # no export runs for a day
_PREVIOUS = "previous"


@contextlib.contextmanager
def staged_dir(dest: str | os.PathLike, *, overwrite: bool = True, keep_others: bool = False) -> Iterator[Path]:
    """An empty staging directory for ``dest``'s files, published when the block succeeds.

    ``overwrite=False`` refuses (``FileExistsError``) a ``dest`` that appeared meanwhile.

    >>> with staged_dir("out/report") as tmp:                    # doctest: +SKIP
    ...     (tmp / "report.json").write_text(text)
    """
    dest = Path(os.path.abspath(dest))
    if dest == dest.parent:
        raise IsADirectoryError(f"cannot stage {dest}: it has no parent directory")
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} exists and is not a directory")
    inside = keep_others and dest.is_dir()
    made = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    published = False
    try:
        sweep_stale(dest)
        with _owned_dir(dest if inside else dest.parent, dest.name, "tmp") as tmp:
            try:
                yield tmp
                os.chmod(tmp, 0o755)  # mkdtemp makes 0700
                if inside:
                    _move_files(tmp, dest)
                else:
                    _publish(tmp, dest, overwrite)
                published = True
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if not published:
            for parent in made:  # innermost first
                with contextlib.suppress(OSError):
                    parent.rmdir()


def sweep_stale(dest: str | os.PathLike) -> list[Path]:
    """Remove what dead writers of ``dest`` left (see the module docstring for the rule), restoring a
    previous ``dest`` found aside while ``dest`` is missing; returns the directories handled."""
    dest = Path(os.path.abspath(dest))
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(tmp|old)-(?:(\d+)-)?[a-z0-9_]+")
    found = []
    for home in (dest.parent, dest):
        with contextlib.suppress(OSError):  # a home that does not exist (yet)
            found += [(m[1], m[2], Path(e.path)) for e in os.scandir(home)
                      if (m := pattern.fullmatch(e.name)) and e.is_dir(follow_symlinks=False)]
    handled = []
    for kind, pid, path in sorted(found, key=lambda f: f[0] != "old"):  # a previous dest first
        if not _stale(path, pid):
            continue
        if kind == "old" and path.parent == dest:  # files set aside one by one: back where none came
            with contextlib.suppress(OSError):
                for name in os.listdir(path):
                    if not os.path.lexists(dest / name):
                        os.replace(path / name, dest / name)
        elif kind == "old" and not os.path.lexists(dest) and (path / _PREVIOUS).is_dir():
            try:
                os.replace(path / _PREVIOUS, dest)
            except OSError:
                continue  # never delete the only copy
        shutil.rmtree(path, ignore_errors=True)
        handled.append(path)
    return handled


@contextlib.contextmanager
def _owned_dir(home: Path, name: str, kind: str) -> Iterator[Path]:
    """A new ``home/.NAME.KIND-PID-XXXXXXXX`` locked (``flock``) for as long as the block runs."""
    path = Path(tempfile.mkdtemp(prefix=f".{name}.{kind}-{os.getpid()}-", dir=home))
    fd = os.open(path, os.O_RDONLY) if fcntl is not None else None
    try:
        if fd is not None:
            with contextlib.suppress(OSError):  # a file system without flock: the PID rule alone
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield path
    finally:
        if fd is not None:
            os.close(fd)


def _publish(tmp: Path, dest: Path, overwrite: bool) -> None:
    if not dest.exists():
        os.replace(tmp, dest)
        return
    if not overwrite:
        raise FileExistsError(f"{dest} appeared while it was being written; not replacing it")
    with _owned_dir(dest.parent, dest.name, "old") as old:
        done = False
        try:
            os.replace(dest, old / _PREVIOUS)
            try:
                os.replace(tmp, dest)
                done = True
            except BaseException:
                os.replace(old / _PREVIOUS, dest)
                raise
        finally:
            if done or not os.path.lexists(old / _PREVIOUS):  # else it holds the only copy of dest
                shutil.rmtree(old, ignore_errors=True)


def _move_files(tmp: Path, dest: Path) -> None:
    """Each file of ``tmp`` over its namesake in ``dest``; the ones replaced wait aside until all
    are in, and on a failure come back (and the new ones go)."""
    names = sorted(os.listdir(tmp))
    blocked = [n for n in names if (dest / n).is_dir() and not (dest / n).is_symlink()]
    if blocked:  # checked before the first rename, so that a refusal leaves dest as it was
        raise IsADirectoryError(f"{dest / blocked[0]} is a directory; not replacing it")
    with _owned_dir(dest, dest.name, "old") as old:
        aside, placed = [], []
        try:
            for name in names:
                if os.path.lexists(dest / name):
                    os.replace(dest / name, old / name)
                    aside.append(name)
                os.replace(tmp / name, dest / name)
                placed.append(name)
        except BaseException:
            for name in placed:
                with contextlib.suppress(OSError):
                    os.unlink(dest / name)
            for name in aside:
                with contextlib.suppress(OSError):
                    os.replace(old / name, dest / name)
            if not os.listdir(old):
                old.rmdir()
            raise
        shutil.rmtree(old, ignore_errors=True)


def _stale(path: Path, pid: str | None) -> bool:
    if pid is not None:
        if _running(int(pid)):
            return False
    else:
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime < LEGACY_STALE_S:
                return False
    return not _locked(path)


def _running(pid: int) -> bool:
    """Whether ``pid`` may be a live process here (unknown counts as live: never sweep a writer's files)."""
    if os.name != "posix" or pid == os.getpid():  # os.kill(pid, 0) is no probe on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: another user's live process
        return True
    return True


def _locked(path: Path) -> bool:
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # cannot look: leave it alone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
