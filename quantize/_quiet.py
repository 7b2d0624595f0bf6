"""Keep converter chatter (C++ logs, tqdm bars, Python warnings) out of the caller's terminal."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator

__all__ = ["CapturedOutput", "capture_output", "quiet"]

log = logging.getLogger("quantize")


class CapturedOutput:
    text: str = ""


@contextlib.contextmanager
def capture_output() -> Iterator[CapturedOutput]:
    """Redirect the process-level stdout and stderr (file descriptors 1 and 2, so C/C++ output
    too) into a temporary file; the text is in ``.text`` after the block."""
    result = CapturedOutput()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield result
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            result.text = tmp.read().decode("utf-8", "replace")


@contextlib.contextmanager
def quiet(stage: str) -> Iterator[CapturedOutput]:
    """Capture all output of a noisy stage and log it at DEBUG level (WARNING if it fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with capture_output() as out:
                yield out
        except BaseException:
            if out.text.strip():
                log.warning("%s output:\n%s", stage, out.text.rstrip())
            raise
    if out.text.strip():
        log.debug("%s output:\n%s", stage, out.text.rstrip())
