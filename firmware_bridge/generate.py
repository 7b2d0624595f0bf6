"""``python -m firmware_bridge.generate ARTIFACT_DIR``: the command line of ``firmware_bridge.generate``.

Import ``firmware_bridge.generate`` (the function) from the package, not this module.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._context import ARENA_MARGIN_PERCENT, FirmwareError
from ._generate import generate

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware_bridge.generate ARTIFACT_DIR``: exit 0 written, 2 bad input (one ``error:`` line)."""
    p = _Parser(prog="python -m firmware_bridge.generate",
                description="Write TFLite Micro firmware sources (model array, settings, op resolver, golden test "
                            "vectors, ring buffer and preprocessing C99 sources) for an exported model.")
    p.add_argument("artifact_dir", type=Path, metavar="ARTIFACT_DIR",
                   help="an export directory (model_int8.tflite, manifest.json, golden.npz)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: ARTIFACT_DIR/firmware)")
    p.add_argument("--arena-margin-percent", type=int, default=ARENA_MARGIN_PERCENT, metavar="PCT",
                   help="margin added to the measured TFLite Micro arena size (default: %(default)s)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = generate(args.artifact_dir, out_dir=args.out, arena_margin_percent=args.arena_margin_percent)
    except FirmwareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
