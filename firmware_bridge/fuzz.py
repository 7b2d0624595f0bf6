"""Bounded fuzzing of the project-written C sources under AddressSanitizer and UndefinedBehaviorSanitizer.

``python -m firmware_bridge.fuzz --seconds 45`` builds ``fuzzers/wearable_fuzz.c`` with the ring
buffer and preprocessing sources and runs it for that long (the harness says what it checks).
The engine is libFuzzer (coverage-guided) when clang can build it (Debian: ``apt-get install
clang``), else a deterministic driver of seeded pseudo-random inputs built by gcc or clang with
``-fsanitize=address,undefined``; ``--engine`` forces one.

Exit codes: 0 no finding; 1 a finding (one ``error:`` line naming the check or sanitizer report
and the saved input); 2 bad input, or no compiler here builds with the sanitizers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._generate import C_SOURCE_DIR

__all__ = ["Fuzzer", "FuzzResult", "SanitizerUnavailable", "build_fuzzer", "run_fuzzer", "main", "HARNESS",
           "SANITIZE_FLAGS", "ENGINES"]

HARNESS = Path(__file__).resolve().parent / "fuzzers" / "wearable_fuzz.c"
ENGINES = ("auto", "libfuzzer", "driver")
# Every undefined-behaviour check aborts (no recovery), float-to-int overflow included; -O1 keeps
# the sanitizers' reports readable and the loop fast. -ffp-contract=off as in the host build.
SANITIZE_FLAGS = ("-std=c99", "-g", "-O1", "-fno-omit-frame-pointer", "-ffp-contract=off", "-Wall", "-Wextra",
                  "-fsanitize=address,undefined,float-cast-overflow,float-divide-by-zero",
                  "-fno-sanitize-recover=all")
# Leak checks find harness leaks only (the sources never allocate) and fail under ptrace. The driver
# saves the failing input on SIGABRT, so the sanitizers abort rather than exit.
_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1:abort_on_error=1"}
_REPORT = re.compile(r"(wearable_fuzz: check failed.*|ERROR: AddressSanitizer.*|runtime error:.*|"
                     r"ERROR: libFuzzer.*|SUMMARY: .*)")


class SanitizerUnavailable(RuntimeError):
    """No compiler here builds the fuzz target with the sanitizers (or libFuzzer, when asked for)."""


@dataclass(frozen=True)
class Fuzzer:
    path: Path
    engine: str  # "libfuzzer" or "driver"
    compiler: str


@dataclass(frozen=True)
class FuzzResult:
    engine: str
    compiler: str
    inputs: int
    seconds: float
    finding: str | None  # the first report line of a failure, None when clean
    crash: Path | None  # the saved failing input
    log: str


def build_fuzzer(out_dir: str | os.PathLike, *, engine: str = "auto", cc: str | None = None) -> Fuzzer:
    """Compile the fuzz target into ``out_dir``; raises ``SanitizerUnavailable`` with the compiler's message."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; accepted: {', '.join(ENGINES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = [str(HARNESS), *sorted(str(p) for p in C_SOURCE_DIR.glob("*.c"))]
    errors = []
    for kind, compiler in _candidates(engine, cc):
        flags = ["-fsanitize=fuzzer"] if kind == "libfuzzer" else ["-DWEARABLE_FUZZ_DRIVER"]
        path = out / f"wearable_fuzz_{kind}"
        cmd = [compiler, *SANITIZE_FLAGS, *flags, f"-I{C_SOURCE_DIR}", "-o", str(path), *sources, "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return Fuzzer(path=path, engine=kind, compiler=_version(compiler))
        errors.append(f"{compiler} ({kind}): {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
    raise SanitizerUnavailable("no compiler builds the fuzz target with the sanitizers: " + "; ".join(errors)
                               if errors else f"no C compiler found ({cc or 'clang or gcc'})")


def run_fuzzer(fuzzer: Fuzzer, *, seconds: float, seed: int = 1, crash_dir: str | os.PathLike,
               max_inputs: int = 0) -> FuzzResult:
    """Run ``fuzzer`` for ``seconds`` (or ``max_inputs`` inputs, when > 0); a failing input goes to ``crash_dir``."""
    crash_dir = Path(crash_dir)
    crash_dir.mkdir(parents=True, exist_ok=True)
    budget = max(1, int(round(seconds)))
    if fuzzer.engine == "libfuzzer":
        cmd = [str(fuzzer.path), f"-max_total_time={budget}", f"-seed={seed}", "-max_len=4096", "-detect_leaks=0",
               "-print_final_stats=1", f"-artifact_prefix={crash_dir}{os.sep}",
               *([f"-runs={max_inputs}"] if max_inputs > 0 else [])]
    else:
        cmd = [str(fuzzer.path), str(seconds), str(seed), str(max_inputs), str(crash_dir / "crash-driver")]
    env = {**os.environ, **_ENV}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=budget + 120, check=False)
    log = proc.stdout + proc.stderr
    stats = dict(re.findall(r"stat::(number_of_executed_units|seconds):\s*([\d.]+)", log))
    done = re.search(r"Done (\d+) runs in (\d+) second", log)  # libFuzzer's last line
    if done:
        stats.setdefault("number_of_executed_units", done[1])
        stats.setdefault("seconds", done[2])
    finding = None
    if proc.returncode != 0:
        found = _REPORT.search(log)
        finding = found.group(1).strip() if found else f"exit status {proc.returncode}"
    crashes = sorted(p for p in crash_dir.iterdir() if p.name.startswith("crash-"))
    return FuzzResult(engine=fuzzer.engine, compiler=fuzzer.compiler,
                      inputs=int(stats.get("number_of_executed_units", 0)),
                      seconds=float(stats.get("seconds", seconds)), finding=finding,
                      crash=crashes[0] if finding and crashes else None, log=log)


def _candidates(engine: str, cc: str | None) -> list[tuple[str, str]]:
    """(engine, compiler) pairs to try, best first."""
    compilers = [c for c in ([cc] if cc else ["clang", "gcc"]) if shutil.which(c)]
    pairs = []
    if engine in ("auto", "libfuzzer"):
        pairs += [("libfuzzer", c) for c in compilers if "clang" in Path(c).name]
    if engine in ("auto", "driver"):
        pairs += [("driver", c) for c in compilers]
    return pairs


def _version(compiler: str) -> str:
    proc = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout.splitlines() or [compiler])[0].strip()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware_bridge.fuzz``: exit 0 clean, 1 a finding, 2 bad input or no sanitizer build."""
    p = _Parser(prog="python -m firmware_bridge.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=45.0, help="fuzzing time (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of the inputs (default %(default)s)")
    p.add_argument("--engine", choices=ENGINES, default="auto")
    p.add_argument("--cc", metavar="COMPILER", help="compiler to use (default: clang, else gcc)")
    p.add_argument("--out", type=Path, metavar="DIR", help="build and crash directory (default: a temporary one)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not 0 < args.seconds <= 3600:
        print("error: --seconds must be in (0, 3600]", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="wearable_fuzz-"))
    try:
        fuzzer = build_fuzzer(out, engine=args.engine, cc=args.cc)
    except (SanitizerUnavailable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_fuzzer(fuzzer, seconds=args.seconds, seed=args.seed, crash_dir=out / "crashes")
    if result.finding:
        saved = f"; input saved to {result.crash}" if result.crash else ""
        print(f"error: fuzzing ({result.engine}) found: {result.finding}{saved}", file=sys.stderr)
        return 1
    print(f"fuzz ({result.engine}, {result.compiler}, ASan+UBSan): {result.inputs} inputs in {result.seconds:.1f} s, "
          f"seed {args.seed}, no finding")
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
