"""A short, seeded fuzz of the manifest readers: a valid manifest.json of a small artifact is mutated
(values swapped for hostile ones, keys dropped, bytes flipped, text cut, deep nesting, NaN tokens)
and ``load_artifact`` must either load it or raise the documented ``ArtifactError``, never
another exception. Standard library and numpy only; a few seconds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from wearable.runtime._fake import fake_artifact
from wearable.runtime.artifact import Artifact, ArtifactError, load_artifact

ROUNDS = 800
_HOSTILE: list[Any] = [None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63, 10 ** 300, -(10 ** 300), 1e308, -1e308, 5e-324,
                       0.5, "", "x", "../../etc/passwd", "/etc/passwd", "a" * 5000, "\ud800", "nul\u0000", "é",
                       [], {}, [None], [[]], {"": None}, {"sha256": "0" * 64}, {"sha256": "0" * 64, "bytes": -1},
                       {"sha256": "0" * 64, "bytes": 10 ** 12}, ["model_int8.tflite"], [1, 2]]


def _artifact(root: Path) -> tuple[Path, dict]:
    """A manifest-shaped artifact (the ``dual`` fake's manifest) with real files and their sha256."""
    root.mkdir()
    files = {"model_int8.tflite": bytes(range(256)) * 4, "golden.npz": b"PK\x05\x06" + bytes(18)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    manifest = json.loads(json.dumps(fake_artifact("dual").manifest))
    manifest["model"] = {"name": "fuzz_model", "version": "1", "config": {"window_samples": 200}}
    manifest["in_channels"] = 1
    manifest["tflm"] = {"arena_bytes": 4096}
    manifest["files"] = {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                         for name, data in files.items()}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return root, manifest


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        out += _paths(item, prefix + (key,))
    return out


def _mutate_tree(manifest: dict, rng: random.Random) -> str:
    m = json.loads(json.dumps(manifest))
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(m)[1:])
        parent = m
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.25 and isinstance(parent, dict):
            parent[rng.choice(["files", "labels", "extra", "../x", ""])] = copy.deepcopy(rng.choice(_HOSTILE))
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(_HOSTILE))
    return json.dumps(m, ensure_ascii=rng.random() < 0.5)


def _mutate_text(text: str, rng: random.Random) -> bytes:
    data = bytearray(text.encode("utf-8"))
    kind = rng.randrange(6)
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # cut
        del data[rng.randrange(len(data)):]
    elif kind == 2:  # a number becomes a token strict JSON refuses
        digits = [i for i, b in enumerate(data) if chr(b).isdigit()]
        i = rng.choice(digits)
        data[i:i + 1] = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-0", b"1" * 5000])
    elif kind == 3:  # a value nested deeper than any parser's stack
        i = data.index(b": ") + 2
        depth = rng.choice([500, 990, 5000, 200_000])
        data[i:i] = b"[" * depth + b"]" * depth + b", \"pad\": "
    elif kind == 4:  # bytes that are not UTF-8, a byte-order mark, or a second document
        data = rng.choice([b"\xff\xfe", b"\xef\xbb\xbf", b""]) + data + rng.choice([b"", b"{}", b"\x80"])
    else:  # a stretch duplicated
        i, j = sorted(rng.randrange(len(data)) for _ in range(2))
        data[j:j] = data[i:j]
    return bytes(data)


def test_mutated_manifests_load_or_raise_artifact_error(tmp_path):
    root, manifest = _artifact(tmp_path / "art")
    assert isinstance(load_artifact(root, all_files=True), Artifact)  # the unmutated one loads
    rng = random.Random(20240607)
    text = json.dumps(manifest, indent=2, sort_keys=True)
    outcomes = {"loaded": 0, "refused": 0}
    for round_ in range(ROUNDS):
        data = _mutate_tree(manifest, rng).encode("utf-8", "surrogatepass") if round_ % 2 else _mutate_text(text, rng)
        (root / "manifest.json").write_bytes(data)
        for kwargs in ({"all_files": True}, {"verify": False}):
            try:
                load_artifact(root, **kwargs)
                outcomes["loaded"] += 1
            except ArtifactError:
                outcomes["refused"] += 1
            except Exception as exc:  # noqa: BLE001 - the point of the test
                pytest.fail(f"round {round_} ({kwargs}): {type(exc).__name__}: {str(exc)[:200]} "
                            f"for manifest {data[:300]!r}")
    assert outcomes["loaded"] > 50 and outcomes["refused"] > 500, outcomes


@pytest.mark.parametrize("case", ["deep", "files_null"])
def test_what_the_fuzz_found_is_refused_in_one_error(tmp_path, case):
    """A manifest nested deeper than the JSON parser's stack (RecursionError before) and a ``files``
    field that is null (AttributeError before)."""
    root, manifest = _artifact(tmp_path / "art")
    if case == "deep":
        text = json.dumps(manifest).replace('"data": ', '"data": ' + "[" * 100_000 + "]" * 100_000 + ', "x": ', 1)
    else:
        text = json.dumps({**manifest, "files": None})
    (root / "manifest.json").write_text(text)
    message = "nested too deeply" if case == "deep" else "files must be an object"
    with pytest.raises(ArtifactError, match=message):
        load_artifact(root)
