"""Find and check exported artifact directories (``manifest.json`` + ``model_int8.tflite``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

__all__ = ["Artifact", "ArtifactError", "find_artifacts", "load_artifact"]

MANIFEST = "manifest.json"
TFLITE = "model_int8.tflite"
GOLDEN = "golden.npz"


class ArtifactError(ValueError):
    """An artifact directory is missing, has no manifest, or a file does not match its sha256."""


@dataclass(frozen=True)
class Artifact:
    """One checked export: its directory, manifest and int8 model bytes."""

    path: Path
    manifest: dict
    model: bytes

    @property
    def name(self) -> str:
        return str(self.manifest.get("model", {}).get("name", self.path.name))

    @property
    def golden(self) -> Path | None:
        p = self.path / GOLDEN
        return p if p.is_file() else None


def find_artifacts(paths: list[str | PathLike]) -> list[Path]:
    """Artifact directories named by ``paths``: each is one export or a folder of exports."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ArtifactError(f"artifact directory {p} does not exist (make one with python -m quantize.export)")
        if not p.is_dir():
            raise ArtifactError(f"{p} is not a directory")
        if (p / MANIFEST).is_file():
            found.append(p)
            continue
        subs = sorted(q.parent for q in p.glob(f"*/{MANIFEST}"))
        if not subs:
            raise ArtifactError(f"{p} has no {MANIFEST} (and no */{MANIFEST}): not an export directory")
        found.extend(subs)
    return found


def load_artifact(path: str | PathLike) -> Artifact:
    """Read ``manifest.json`` and ``model_int8.tflite``; check every listed file's size and sha256."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} has no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path / MANIFEST} is not readable JSON: {exc}") from None
    files = manifest.get("files")
    if not isinstance(files, dict) or TFLITE not in files:
        raise ArtifactError(f"{path / MANIFEST} does not list {TFLITE}")
    for name, entry in files.items():
        f = path / name
        if not f.is_file():
            raise ArtifactError(f"{f} is listed in the manifest but missing")
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        if digest != entry.get("sha256"):
            raise ArtifactError(f"{f}: sha256 {digest[:12]}… does not match the manifest ({str(entry.get('sha256'))[:12]}…)")
    for key in ("window_samples", "hop_samples", "sampling_rate_hz", "inputs"):
        if key not in manifest:
            raise ArtifactError(f"{path / MANIFEST} is missing field {key!r}")
    return Artifact(path=path, manifest=manifest, model=(path / TFLITE).read_bytes())
