"""Build the project-written C sources for this machine and drive them from Python (ctypes).

Used by the host tests to prove the C ring buffer and preprocessing match the Python runtime;
useful to anyone who wants to replay a recording through the exact firmware code path.

>>> lib = build_host_library(tmp_dir)                                   # doctest: +SKIP
>>> pp = Preprocessor(lib, sos, scale=0.0179, zero_point=-17, clip=5.0)  # doctest: +SKIP
>>> pp.run(samples)                                                      # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ._generate import C_SOURCE_DIR

__all__ = ["HOST_CFLAGS", "build_host_library", "RingBuffer", "Preprocessor", "OVERWRITE_OLDEST", "REJECT_NEW"]

# What the issue asks the sources to pass; -O2 like a release build. -ffp-contract=off is
# what -std=c99 implies in GCC: spelled out because fused multiply-adds would change results.
HOST_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-ffp-contract=off", "-fPIC", "-shared")
OVERWRITE_OLDEST = 0
REJECT_NEW = 1
# The C structs stay opaque to Python: generous, malloc-aligned storage for them.
_STRUCT_BYTES = 256


def build_host_library(out_dir: str | os.PathLike, *, single_precision: bool = False, cc: str = "gcc") -> Path:
    """Compile ``c/*.c`` into a shared library in ``out_dir``; raises ``RuntimeError`` with the compiler output."""
    if shutil.which(cc) is None:
        raise RuntimeError(f"C compiler {cc!r} not found")
    out = Path(out_dir) / ("libwearable_fw_f32.so" if single_precision else "libwearable_fw.so")
    sources = sorted(str(p) for p in C_SOURCE_DIR.glob("*.c"))
    cmd = [cc, *HOST_CFLAGS, *(["-DWEARABLE_PREPROCESS_FLOAT"] if single_precision else []), "-o", str(out),
           *sources, "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return out


def _load(path: str | os.PathLike) -> ctypes.CDLL:
    lib = ctypes.CDLL(os.fspath(path))
    size_t, vp = ctypes.c_size_t, ctypes.c_void_p
    lib.wearable_rb_init.argtypes = [vp, vp, size_t, size_t, ctypes.c_int]
    lib.wearable_rb_push.argtypes = [vp, vp, size_t]
    lib.wearable_rb_push.restype = size_t
    lib.wearable_rb_copy_latest.argtypes = [vp, vp, size_t]
    for name, restype in (("size", size_t), ("capacity", size_t), ("total_pushed", ctypes.c_uint64),
                          ("total_dropped", ctypes.c_uint64)):
        fn = getattr(lib, f"wearable_rb_{name}")
        fn.argtypes, fn.restype = [vp], restype
    lib.wearable_rb_clear.argtypes = [vp]
    lib.wearable_pp_reset.argtypes = [vp]
    lib.wearable_pp_run.argtypes = [vp, vp, vp, size_t]
    return lib


class RingBuffer:
    """``wearable_ring_buffer`` through ctypes; samples are numpy arrays of ``dtype``."""

    def __init__(self, library: str | os.PathLike, capacity: int, *, dtype=np.int8, policy: int = OVERWRITE_OLDEST):
        self._lib = _load(library)
        self.dtype = np.dtype(dtype)
        self._struct = ctypes.create_string_buffer(_STRUCT_BYTES)
        self._storage = ctypes.create_string_buffer(max(1, capacity) * self.dtype.itemsize)
        if self._lib.wearable_rb_init(self._struct, self._storage, capacity, self.dtype.itemsize, policy) != 0:
            raise ValueError(f"wearable_rb_init rejected capacity={capacity}, policy={policy}")

    def push(self, samples: np.ndarray) -> int:
        a = np.ascontiguousarray(samples, dtype=self.dtype)
        return int(self._lib.wearable_rb_push(self._struct, a.ctypes.data, a.size))

    def latest(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=self.dtype)
        if self._lib.wearable_rb_copy_latest(self._struct, out.ctypes.data, n) != 0:
            raise ValueError(f"only {self.size} samples held, {n} asked for")
        return out

    def clear(self) -> None:
        """Forget the held samples; the counters keep counting."""
        self._lib.wearable_rb_clear(self._struct)

    size = property(lambda self: int(self._lib.wearable_rb_size(self._struct)))
    capacity = property(lambda self: int(self._lib.wearable_rb_capacity(self._struct)))
    total_pushed = property(lambda self: int(self._lib.wearable_rb_total_pushed(self._struct)))
    total_dropped = property(lambda self: int(self._lib.wearable_rb_total_dropped(self._struct)))


class Preprocessor:
    """``wearable_preprocess`` through ctypes: float32 samples in, int8 out, state kept across calls.

    ``zi`` defaults to ``scipy.signal.sosfilt_zi(sos)``; ``clip`` is symmetric (None: no clip).
    """

    def __init__(self, library: str | os.PathLike, sos: np.ndarray, *, scale: float, zero_point: int,
                 clip: float | None = None, zi: np.ndarray | None = None, single_precision: bool = False):
        self._lib = _load(library)
        real = ctypes.c_float if single_precision else ctypes.c_double
        self._np_real = np.float32 if single_precision else np.float64
        sos = np.ascontiguousarray(sos, dtype=self._np_real)
        if zi is None:
            from scipy.signal import sosfilt_zi

            zi = sosfilt_zi(np.asarray(sos, dtype=np.float64))
        self._sos, self._zi = sos, np.ascontiguousarray(zi, dtype=self._np_real)
        self._state = np.zeros_like(self._zi)
        self._struct = ctypes.create_string_buffer(_STRUCT_BYTES)
        lim = float("inf") if clip is None else float(clip)
        vp = ctypes.c_void_p
        self._lib.wearable_pp_init.argtypes = [vp, vp, vp, vp, ctypes.c_size_t, real, ctypes.c_int32, real, real]
        rc = self._lib.wearable_pp_init(self._struct, sos.ctypes.data, self._zi.ctypes.data, self._state.ctypes.data,
                                        len(sos), float(scale), int(zero_point), -lim, lim)
        if rc != 0:
            raise ValueError("wearable_pp_init rejected its arguments")

    def run(self, samples: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(samples, dtype=np.float32)
        out = np.empty(x.size, dtype=np.int8)
        self._lib.wearable_pp_run(self._struct, x.ctypes.data, out.ctypes.data, x.size)
        return out

    def reset(self) -> None:
        self._lib.wearable_pp_reset(self._struct)
