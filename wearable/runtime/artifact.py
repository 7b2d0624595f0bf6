"""Load an exported artifact directory and check it against its manifest before running it.

``load_artifact(dir)`` reads ``manifest.json``, checks the size and sha256 of the int8 model
(``all_files=True``: of every file the manifest lists) against the manifest (a missing,
truncated or tampered file raises ``ArtifactError`` with the file's name) and returns an
``Artifact``. The streaming runtime and the benchmarks both load through it; a device may
carry only the model and its manifest, which is why the other files are optional here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["Artifact", "ArtifactError", "load_artifact", "MODEL_FILE", "MANIFEST_FILE", "GOLDEN_FILE"]

MODEL_FILE = "model_int8.tflite"
MANIFEST_FILE = "manifest.json"
GOLDEN_FILE = "golden.npz"


class ArtifactError(ValueError):
    """An artifact directory is missing, incomplete, or does not match its manifest."""


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: manifest fields plus the model bytes (read once, hash checked)."""

    path: Path
    manifest: dict[str, Any]
    model: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.manifest.get("model", {}).get("name", self.path.name))

    @property
    def golden(self) -> Path | None:
        path = self.path / GOLDEN_FILE
        return path if path.is_file() else None

    @property
    def sampling_rate(self) -> float:
        return float(self.manifest["sampling_rate_hz"])

    @property
    def window(self) -> int:
        return int(self.manifest["window_samples"])

    @property
    def hop(self) -> int:
        return int(self.manifest.get("hop_samples") or self.window)

    @property
    def labels(self) -> list[str]:
        n = self.manifest["outputs"][0]["shape"][1]
        return list(self.manifest.get("labels") or [str(i) for i in range(n)])

    @property
    def mask_labels(self) -> list[str]:
        """Names of a second, per-sample output's ids (``data.mask_labels``); empty without one."""
        return list((self.manifest.get("data") or {}).get("mask_labels") or [])

    @property
    def channel_kinds(self) -> list[str]:
        """``kind`` of each input channel ("ecg", "ppg", ...), from ``data.preprocessing``."""
        return [str(ch.get("kind", "ecg")) for ch in self.channels]

    @property
    def channels(self) -> list[dict[str, Any]]:
        """Per input channel: ``{"kind", "sos", ...}`` from ``data.preprocessing``."""
        return list(self.manifest.get("data", {}).get("preprocessing", {}).get("channels", []))

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.manifest.get("data", {}).get("preprocessing", {}))


def load_artifact(path: str | PathLike, *, verify: bool = True, all_files: bool = False) -> Artifact:
    """Read ``path/manifest.json`` and ``path/model_int8.tflite``; with ``verify``, check the model's
    sha256 (and with ``all_files`` every listed file's) against the manifest."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root}: artifact directory not found")
    mpath = root / MANIFEST_FILE
    if not mpath.is_file():
        raise ArtifactError(f"{root}: no manifest.json (not an exported artifact)")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{mpath}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{mpath}: manifest is not a JSON object")
    for key in ("schema_version", "sampling_rate_hz", "window_samples", "inputs", "outputs", "files"):
        if key not in manifest:
            raise ArtifactError(f"{mpath}: manifest has no {key!r}")
    if manifest["schema_version"] != 1:
        raise ArtifactError(f"{mpath}: schema_version {manifest['schema_version']} is not supported (1)")
    model_path = root / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: missing")
    model = model_path.read_bytes()
    if verify:
        files = manifest["files"]
        if not isinstance(files, dict) or not isinstance(files.get(MODEL_FILE), dict):
            raise ArtifactError(f"{mpath}: no sha256 for {MODEL_FILE}")
        _check_file(model_path, model, files[MODEL_FILE], mpath)
        for name, entry in files.items() if all_files else ():
            path = root / name
            if not path.is_file():
                raise ArtifactError(f"{path}: listed in the manifest but missing")
            if name != MODEL_FILE:
                _check_file(path, path.read_bytes(), entry, mpath)
    return Artifact(path=root, manifest=manifest, model=model)


def _check_file(path: Path, data: bytes, entry: Any, mpath: Path) -> None:
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise ArtifactError(f"{mpath}: no sha256 for {path.name}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"] or len(data) != entry.get("bytes", len(data)):
        raise ArtifactError(f"{path}: sha256 {digest[:12]}… does not match the manifest "
                            f"({str(entry['sha256'])[:12]}…): file modified or from another export")
