"""Load an exported artifact directory and check it against its manifest before running it.

``load_artifact(dir)`` reads ``manifest.json``, checks the size and sha256 of the int8 model
(``all_files=True``: of every file the manifest lists) against the manifest (a missing,
truncated or tampered file raises ``ArtifactError`` with the file's name) and returns an
``Artifact``. The streaming runtime and the benchmarks both load through it; a device may
carry only the model and its manifest, which is why the other files are optional here.

A manifest is input from outside: it may have been edited by hand or by an attacker.
``check_manifest`` refuses values that would be unsafe to act on (names that are not plain
identifiers, NaN or absurd rates and sizes, labels that do not fit the output, file entries
that are not plain names), and ``read_artifact_file`` reads a listed file only if it is a plain
file inside the artifact directory and not larger than ``MAX_FILE_BYTES``. The firmware bridge
reads and validates through the same functions.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["Artifact", "ArtifactError", "load_artifact", "read_manifest", "read_artifact_file", "check_manifest",
           "check_name", "MODEL_FILE", "MANIFEST_FILE", "GOLDEN_FILE", "MAX_FILE_BYTES", "MAX_MANIFEST_BYTES",
           "MAX_SAMPLING_RATE_HZ", "MAX_WINDOW_SAMPLES", "MAX_IN_CHANNELS", "MAX_ARENA_BYTES"]

MODEL_FILE = "model_int8.tflite"
MANIFEST_FILE = "manifest.json"
GOLDEN_FILE = "golden.npz"
# Bounds far above any wearable model, low enough that a tampered manifest cannot make a reader
# allocate gigabytes or emit C constants that overflow a 32-bit int.
MAX_FILE_BYTES = 128 * 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_SAMPLING_RATE_HZ = 100_000.0
MAX_WINDOW_SAMPLES = 1 << 20
MAX_IN_CHANNELS = 64
MAX_ARENA_BYTES = 1 << 28
# Model names, labels and file names become C comments and identifiers, paths and log lines:
# a plain name cannot close a comment, start a trigraph, continue a line or leave a directory.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        try:  # a link out of the artifact is no golden file of it
            inside = path.resolve(strict=True).is_relative_to(self.path.resolve(strict=True))
        except (OSError, RuntimeError):
            return None
        return path if inside and path.is_file() else None

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
    manifest = read_manifest(root)
    for key in ("schema_version", "sampling_rate_hz", "window_samples", "inputs", "outputs", "files"):
        if key not in manifest:
            raise ArtifactError(f"{mpath}: manifest has no {key!r}")
    if manifest["schema_version"] != 1:
        raise ArtifactError(f"{mpath}: schema_version {manifest['schema_version']} is not supported (1)")
    try:
        check_manifest(manifest)
    except ArtifactError as exc:
        raise ArtifactError(f"{mpath}: {exc}") from None
    files = manifest["files"]
    if not isinstance(files, dict):  # check_manifest lets an absent (null) field pass; this reader needs it
        raise ArtifactError(f"{mpath}: manifest field files must be an object")
    if verify and not isinstance(files.get(MODEL_FILE), dict):
        raise ArtifactError(f"{mpath}: no sha256 for {MODEL_FILE}")
    model = read_artifact_file(root, MODEL_FILE, files.get(MODEL_FILE) if verify else None)
    for name, entry in files.items() if verify and all_files else ():
        if name != MODEL_FILE:
            read_artifact_file(root, name, entry)
    return Artifact(path=root, manifest=manifest, model=model)


def read_manifest(root: str | PathLike) -> dict[str, Any]:
    """``root/manifest.json`` as a dict: at most ``MAX_MANIFEST_BYTES``, strict JSON (no NaN or
    Infinity, which ``json`` accepts by default and which no export writes)."""
    mpath = Path(root) / MANIFEST_FILE
    text = read_artifact_file(root, MANIFEST_FILE, limit=MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(text.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{mpath}: unreadable manifest ({exc})") from None
    except RecursionError:  # a few kilobytes of '[' exhaust the parser's stack
        raise ArtifactError(f"{mpath}: unreadable manifest (nested too deeply)") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{mpath}: manifest is not a JSON object")
    return manifest


def read_artifact_file(root: str | PathLike, name: str, entry: Any = None, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``root/name``; with a manifest ``entry``, checked against its size and sha256.

    ``name`` must be a plain file name (no separator, no ``..``), the file must stay inside
    ``root`` once symlinks are resolved, and it is not read when larger than ``limit`` (or than
    the size the manifest gives).
    """
    root = Path(root)
    check_name(name, "file name")
    path = root / name
    try:
        real = path.resolve(strict=True)
        inside = real.is_relative_to(root.resolve(strict=True))
    except (OSError, RuntimeError):
        raise ArtifactError(f"{path}: missing") from None
    if not inside:
        raise ArtifactError(f"{path}: a link to {real}, outside the artifact directory")
    if not real.is_file():
        raise ArtifactError(f"{path}: not a regular file")
    if entry is not None:
        _check_entry(name, entry)
    size = real.stat().st_size
    if size > limit:
        raise ArtifactError(f"{path}: {size} bytes, more than the {limit} an artifact file may have")
    if entry is not None and "bytes" in entry and size != entry["bytes"]:
        raise ArtifactError(f"{path}: {size} bytes does not match the manifest ({entry['bytes']} bytes): "
                            "file modified or from another export")
    with open(real, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArtifactError(f"{path}: more than the {limit} bytes an artifact file may have")
    if entry is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise ArtifactError(f"{path}: sha256 {digest[:12]}… does not match the manifest "
                                f"({entry['sha256'][:12]}…): file modified or from another export")
    return data


def check_name(value: Any, what: str) -> str:
    """``value`` if it is a plain name (1-64 of ``A-Z a-z 0-9 _ . -``, starting with a letter or digit)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ArtifactError(f"{what} must be 1-64 letters, digits, '_', '.' or '-' starting with a letter or "
                            f"digit, got {_short(value)}")
    return value


def check_manifest(manifest: dict[str, Any]) -> None:
    """Refuse manifest values that are unsafe to act on; fields that are absent are not required here
    (each reader says what it needs). Raises ``ArtifactError`` naming the field."""
    _number(manifest, "sampling_rate_hz", MAX_SAMPLING_RATE_HZ)
    _count(manifest, "window_samples", MAX_WINDOW_SAMPLES)
    _count(manifest, "hop_samples", MAX_WINDOW_SAMPLES)
    _count(manifest, "in_channels", MAX_IN_CHANNELS)
    model = manifest.get("model")
    if model is not None and not isinstance(model, dict):
        raise ArtifactError("manifest field model must be an object")
    if model and model.get("name") is not None:
        check_name(model["name"], "manifest field model.name")
    data = manifest.get("data")
    _names(manifest.get("labels"), "labels")
    _names(data.get("mask_labels") if isinstance(data, dict) else None, "data.mask_labels")
    labels, classes = manifest.get("labels"), _classes(manifest)
    if labels is not None and classes is not None and len(labels) != classes:
        raise ArtifactError(f"manifest has {len(labels)} labels for an output of {classes} classes "
                            "(outputs[0].shape[1])")
    tflm = manifest.get("tflm")
    if isinstance(tflm, dict):
        _count(tflm, "arena_bytes", MAX_ARENA_BYTES, where="tflm.")
    files = manifest.get("files")
    if files is not None:
        if not isinstance(files, dict):
            raise ArtifactError("manifest field files must be an object")
        for name, entry in files.items():
            _check_entry(name, entry)


def _check_entry(name: Any, entry: Any) -> None:
    check_name(name, "manifest files entry")
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or \
            not _SHA256.fullmatch(entry["sha256"]):
        raise ArtifactError(f"manifest files entry {name} has no sha256 (64 lower-case hex digits)")
    if "bytes" in entry:
        _count(entry, "bytes", MAX_FILE_BYTES, where=f"files.{name}.", low=0)


def _number(obj: dict, key: str, high: float) -> None:
    value = obj.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= high:
        raise ArtifactError(f"manifest field {key} must be a number in (0, {high:g}], got {_short(value)}")


def _count(obj: dict, key: str, high: int, *, where: str = "", low: int = 1) -> None:
    value = obj.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ArtifactError(f"manifest field {where}{key} must be an integer in [{low}, {high}], got {_short(value)}")


def _names(values: Any, key: str) -> None:
    if values is None:
        return
    if not isinstance(values, list) or not values:
        raise ArtifactError(f"manifest field {key} must be a non-empty list of names")
    for i, value in enumerate(values):
        check_name(value, f"manifest field {key}[{i}]")


def _classes(manifest: dict) -> int | None:
    outputs = manifest.get("outputs")
    if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], dict):
        return None
    shape = outputs[0].get("shape")
    if not isinstance(shape, list) or len(shape) < 2 or isinstance(shape[1], bool) or not isinstance(shape[1], int):
        return None
    return shape[1]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
