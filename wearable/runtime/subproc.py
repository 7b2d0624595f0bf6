"""Run one of this checkout's modules in another Python and read the JSON line it prints.

The export replays golden windows in a tflite-runtime 2.14 interpreter (numpy < 2, another
virtual environment) and the benchmarks time each runtime in its own process; both go through
``run_json_module`` so the environment set-up and the parsing exist once.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

__all__ = ["run_json_module"]

_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding wearable/, benchmarks/ …


def run_json_module(python: str | os.PathLike, module: str, args: list[str], *,
                    timeout: float = 300) -> tuple[dict | None, str, str]:
    """``python -m module *args`` with this checkout on ``PYTHONPATH``.

    Returns ``(result, stdout, problem)``: ``result`` is the last stdout line that starts with
    ``{`` parsed as JSON (None when there is none), and ``problem`` a one-line reason when the
    process could not run or printed no JSON.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    cmd = [os.fspath(python), "-m", module, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, "", f"could not run {cmd[0]}: {exc}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, proc.stdout, f"exit {proc.returncode}: {tail[0]}"
    return json.loads(lines[-1]), proc.stdout + (proc.stderr or ""), ""
