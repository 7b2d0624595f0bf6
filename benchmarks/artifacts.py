"""Find and check exported artifact directories (``manifest.json`` + ``model_int8.tflite``)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

# One loader for every consumer (streaming runtime, benchmarks): it checks each listed file's
# size and sha256 with the standard library alone, so it runs on a Raspberry Pi.
from wearable.runtime.artifact import MANIFEST_FILE as MANIFEST
from wearable.runtime.artifact import Artifact, ArtifactError, load_artifact

__all__ = ["Artifact", "ArtifactError", "find_artifacts", "load_artifact"]


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
