"""Artifact files: atomic directory replacement, deterministic ``.npz``, hashes."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from torch import nn

from wearable._staging import staged_dir

from ._types import ExportError

__all__ = ["check_target", "staging", "write_npz", "manifest_json", "file_sha256", "bytes_sha256", "array_sha256",
           "weights_sha256"]


def check_target(out_dir: Path, overwrite: bool) -> None:
    """Fail early, creating nothing, if ``out_dir`` exists (without overwrite) or cannot be made."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists (use overwrite=True / --force to replace it)")
    probe = out_dir.absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot create {out_dir}: {probe} is not a writable directory")


@contextlib.contextmanager
def staging(out_dir: Path, overwrite: bool) -> Iterator[Path]:
    """A temp dir next to ``out_dir``, renamed to it if the block succeeds; on failure the temp
    dir and any parent directories made for it are removed, and an existing ``out_dir`` is left as
    it was. The old ``out_dir`` is replaced only at the very end; staging dirs that killed exports
    left behind are swept first (``wearable._staging`` gives the rule)."""
    with staged_dir(out_dir, overwrite=overwrite) as tmp:
        yield tmp


def write_npz(path: Path, arrays: Mapping[str, np.ndarray], *, compress: bool = False) -> None:
    """``np.savez`` (``compress``: ``np.savez_compressed``) with fixed zip timestamps, so that
    the bytes depend only on the arrays."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = method
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def manifest_json(data: Mapping[str, Any]) -> str:
    """The text of ``manifest.json``: sorted keys, two-space indent, strict JSON.

    NaN and infinity are no JSON numbers (readers refuse them) and a NaN figure or gate means
    something upstream went wrong, so they raise ``ExportError`` naming the field instead of
    being written.
    """
    try:
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError:
        raise ExportError(f"the manifest would hold a non-finite number at {_nonfinite(data)}; "
                          "nothing was written") from None


def _nonfinite(value: Any, where: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or '(top)'} ({value})"
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _nonfinite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def file_sha256(path: Path) -> str:
    return bytes_sha256(path.read_bytes())


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_sha256(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def weights_sha256(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
