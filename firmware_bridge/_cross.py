"""Cross-compile firmware sources for a Cortex-M4 and read the section sizes (``arm-none-eabi-size``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CORTEX_M4_FLAGS", "ToolchainMissing", "cross_compile_sizes"]

# The target the issue names (Cortex-M4F, hard float ABI, size-optimized), plus the warnings the
# host build uses: the same sources must build cleanly for both.
CORTEX_M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror")


class ToolchainMissing(RuntimeError):
    """arm-none-eabi-gcc or arm-none-eabi-size is not installed (Debian: apt-get install gcc-arm-none-eabi)."""


def cross_compile_sizes(firmware_dir: str | os.PathLike, *, defines: tuple[str, ...] = (),
                        cc: str = "arm-none-eabi-gcc", size: str = "arm-none-eabi-size") -> dict:
    """Compile every ``*.c`` in ``firmware_dir`` to an object file and return its Berkeley sizes.

    Returns ``{"compiler": version line, "flags": [...], "files": {name: {"text", "data", "bss"}},
    "total": {"text", "data", "bss"}}`` (bytes; ``text`` includes read-only data such as the model
    array, as ``arm-none-eabi-size`` counts it). Objects only: library routines pulled in at link
    time (e.g. libgcc's software double arithmetic for the preprocessing) are not counted.
    ``defines`` are extra ``-D`` names (e.g. ``("WEARABLE_PREPROCESS_FLOAT",)``).

    Raises ``ToolchainMissing`` without the toolchain, ``RuntimeError`` with the compiler's
    message when a source does not compile.
    """
    tools = {name: shutil.which(name) for name in (cc, size)}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        raise ToolchainMissing(f"{', '.join(missing)} not found (Debian/Ubuntu: apt-get install gcc-arm-none-eabi)")
    sources = sorted(Path(firmware_dir).glob("*.c"))
    if not sources:
        raise RuntimeError(f"no C sources in {firmware_dir}")
    flags = [*CORTEX_M4_FLAGS, *(f"-D{d}" for d in defines)]
    files = {}
    with tempfile.TemporaryDirectory(prefix="wearable_fw_arm_") as tmp:
        for src in sources:
            obj = Path(tmp) / f"{src.stem}.o"
            _run([tools[cc], *flags, "-c", str(src), "-o", str(obj)])
            line = _run([tools[size], "--format=berkeley", str(obj)]).splitlines()[1].split()
            files[src.name] = {"text": int(line[0]), "data": int(line[1]), "bss": int(line[2])}
    version = _run([tools[cc], "--version"]).splitlines()[0]
    total = {k: sum(f[k] for f in files.values()) for k in ("text", "data", "bss")}
    return {"compiler": version, "flags": flags, "files": files, "total": total}


def _run(cmd: list) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr.strip()}")
    return proc.stdout
