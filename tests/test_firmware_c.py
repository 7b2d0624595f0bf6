"""Project-written C99 sources (ring buffer, preprocessing) against the Python reference.

The sources are compiled with ``gcc -std=c99 -Wall -Wextra -Werror -pedantic`` into a shared
library in a temporary directory and driven through ctypes (``firmware_bridge.host``). The
reference is the training pipeline itself: ``wearable.data.preprocess.signal_filter`` (causal
sosfilt, steady-state start), ``ecg_scale`` and ``wearable.runtime.quantize``. In double
precision the C code does the same float64 operations in the same order and rounds the same
way (half away from zero, TFLite's convention), so the int8 outputs must be bit-exact.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("scipy")
if shutil.which("gcc") is None:
    pytest.skip("gcc not found: the C host tests need it", allow_module_level=True)

from firmware_bridge.host import OVERWRITE_OLDEST, REJECT_NEW, Preprocessor, RingBuffer, build_host_library  # noqa: E402
from wearable.data.preprocess import ecg_scale, filter_sos, signal_filter  # noqa: E402
from wearable.runtime import quantize  # noqa: E402

RATE = 100.0
SCALE, ZERO = float(np.float32(0.01788405328989029)), -17  # the shipped dscnn_tiny input


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return build_host_library(tmp_path_factory.mktemp("fw_host"))


@pytest.fixture(scope="module")
def lib_f32(tmp_path_factory):
    return build_host_library(tmp_path_factory.mktemp("fw_host_f32"), single_precision=True)


class _PyRing:
    """The ring buffer contract in plain Python (what the C code must do)."""

    def __init__(self, capacity: int, policy: int):
        self.capacity, self.policy, self.data = capacity, policy, []
        self.total_pushed = self.total_dropped = 0

    def push(self, samples) -> int:
        samples = list(samples)
        self.total_pushed += len(samples)
        free = self.capacity - len(self.data)
        if self.policy == REJECT_NEW:
            dropped = max(0, len(samples) - free)
            self.data += samples[:free]
        else:
            self.data += samples
            dropped = max(0, len(self.data) - self.capacity)
            self.data = self.data[dropped:]
        self.total_dropped += dropped
        return dropped


def _ecg_like(n: int, seed: int) -> np.ndarray:
    """mV-scale test signal: baseline wander, sharp spikes beyond the clip, noise; float32 as an ADC gives."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    x = 0.8 * np.sin(2 * np.pi * 0.2 * t) + 0.3 * np.sin(2 * np.pi * 7.0 * t) + 0.05 * rng.standard_normal(n)
    x[rng.integers(0, n, n // 80)] += rng.choice([-9.0, 9.0], n // 80)  # beyond ECG_CLIP_MV
    return (x + 1.5).astype(np.float32)  # DC offset: the steady-state start matters


def _runtime():
    """``wearable.runtime``'s streaming ring buffer and preprocessing, when this checkout has them."""
    try:
        from wearable.runtime.preprocess import Preprocessor as PyPreprocessor
        from wearable.runtime.ringbuffer import RingBuffer as PyRingBuffer
    except ImportError:
        pytest.skip("wearable.runtime has no streaming ring buffer / preprocessing yet")
    return PyRingBuffer, PyPreprocessor


def _reference_int8(x: np.ndarray) -> np.ndarray:
    y = ecg_scale(signal_filter(x.astype(np.float64), sampling_rate=RATE, kind="ecg"))
    return quantize(y, {"dtype": np.int8, "quantization": (SCALE, ZERO)})


def _chunks(n: int, rng: np.random.Generator, high: int = 300):
    start = 0
    while start < n:
        size = int(rng.integers(1, high))
        yield slice(start, min(n, start + size))
        start += size


@pytest.mark.parametrize("policy", [OVERWRITE_OLDEST, REJECT_NEW])
@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_ring_buffer_matches_contract(lib, policy, dtype):
    rng = np.random.default_rng(policy * 10 + np.dtype(dtype).itemsize)
    capacity = 37
    c, ref = RingBuffer(lib, capacity, dtype=dtype, policy=policy), _PyRing(capacity, policy)
    for step in range(400):
        samples = (rng.standard_normal(int(rng.integers(0, 2 * capacity))) * 50).astype(dtype)
        assert c.push(samples) == ref.push(samples)
        assert (c.size, c.capacity, c.total_pushed, c.total_dropped) == (
            len(ref.data), capacity, ref.total_pushed, ref.total_dropped)
        if step < 200:
            assert c.size == c.total_pushed - c.total_dropped
        n = int(rng.integers(0, c.size + 1))
        np.testing.assert_array_equal(c.latest(n), np.asarray(ref.data[len(ref.data) - n:], dtype=dtype))
        if step == 200:  # e.g. a full REJECT_NEW buffer stays full until cleared
            c.clear()
            ref.data = []
    with pytest.raises(ValueError):
        c.latest(c.size + 1)


def test_ring_buffer_drop_counts(lib):
    over = RingBuffer(lib, 4, policy=OVERWRITE_OLDEST)
    assert over.push(np.arange(3)) == 0
    assert over.push(np.arange(3, 9)) == 5  # 3 held + the 2 oldest incoming no longer fit
    np.testing.assert_array_equal(over.latest(4), [5, 6, 7, 8])
    reject = RingBuffer(lib, 4, policy=REJECT_NEW)
    assert reject.push(np.arange(3)) == 0
    assert reject.push(np.arange(3, 9)) == 5  # only sample 3 fits
    np.testing.assert_array_equal(reject.latest(4), [0, 1, 2, 3])
    assert (reject.total_pushed, reject.total_dropped) == (9, 5)
    with pytest.raises(ValueError):
        RingBuffer(lib, 0)


def test_preprocessing_bit_exact_in_random_chunks(lib):
    x = _ecg_like(6000, seed=1)
    expected = _reference_int8(x)
    assert len(np.unique(expected)) > 50 and expected.min() == -128  # rounding and saturation both exercised
    pp = Preprocessor(lib, filter_sos("ecg", sampling_rate=RATE), scale=SCALE, zero_point=ZERO, clip=5.0)
    rng = np.random.default_rng(2)
    got = np.concatenate([pp.run(x[s]) for s in _chunks(len(x), rng)])
    np.testing.assert_array_equal(got, expected)
    pp.reset()  # a new stream starts at its own steady state again
    np.testing.assert_array_equal(pp.run(x[1000:3000]), _reference_int8(x[1000:3000]))


def test_single_precision_within_one_step(lib_f32):
    """float32 filter arithmetic (for FPUs without double): at most one int8 step from float64."""
    x = _ecg_like(6000, seed=3)
    expected = _reference_int8(x).astype(np.int16)
    pp = Preprocessor(lib_f32, filter_sos("ecg", sampling_rate=RATE), scale=SCALE, zero_point=ZERO, clip=5.0,
                      single_precision=True)
    got = pp.run(x).astype(np.int16)
    assert np.max(np.abs(got - expected)) <= 1


@pytest.mark.parametrize("hop", [250, 1000])
def test_streamed_windows_equal_offline_windows(lib, hop):
    """Preprocess + ring buffer fed in random chunks give the offline pipeline's int8 windows."""
    window = 1000
    x = _ecg_like(5200, seed=4)
    full = _reference_int8(x)
    ends = list(range(window, len(x) + 1, hop))
    expected = [full[e - window:e] for e in ends]
    pp = Preprocessor(lib, filter_sos("ecg", sampling_rate=RATE), scale=SCALE, zero_point=ZERO, clip=5.0)
    ring = RingBuffer(lib, window, policy=OVERWRITE_OLDEST)
    got, rng = [], np.random.default_rng(5)
    for s in _chunks(len(x), rng, high=700):
        q = pp.run(x[s])
        # split the chunk at window ends, as a firmware loop that runs inference per hop must
        pos = 0
        while pos < len(q):
            pushed = ring.total_pushed
            next_end = window if pushed < window else pushed + hop - (pushed - window) % hop
            take = min(len(q) - pos, next_end - pushed)
            ring.push(q[pos:pos + take])
            pos += take
            if ring.total_pushed >= window and (ring.total_pushed - window) % hop == 0:
                got.append(ring.latest(window))
    assert len(got) == len(expected)
    np.testing.assert_array_equal(np.array(got), np.array(expected))


@pytest.mark.parametrize("policy", [OVERWRITE_OLDEST, REJECT_NEW])
def test_ring_buffer_matches_the_python_runtime(lib, policy):
    PyRingBuffer, _ = _runtime()
    rng = np.random.default_rng(7 + policy)
    c = RingBuffer(lib, 50, dtype=np.float32, policy=policy)
    py = PyRingBuffer(50, dtype=np.float32, policy=("overwrite_oldest", "reject_new")[policy])
    for step in range(300):
        chunk = rng.standard_normal(int(rng.integers(0, 120))).astype(np.float32)
        assert c.push(chunk) == py.push(chunk)
        assert (c.size, c.total_pushed, c.total_dropped) == (py.size, py.total_pushed, py.dropped)
        np.testing.assert_array_equal(c.latest(c.size), py.latest(py.size))
        if step % 97 == 96:
            c.clear()
            py.clear()


@pytest.mark.parametrize("backend", ["scipy", "numpy"])
def test_streamed_int8_matches_the_python_runtime(lib, backend):
    """C preprocessing vs ``wearable.runtime.preprocess.Preprocessor`` + ``quantize``, same random chunks."""
    _, PyPreprocessor = _runtime()
    sos = filter_sos("ecg", sampling_rate=RATE)
    x = _ecg_like(6000, seed=8)
    c = Preprocessor(lib, sos, scale=SCALE, zero_point=ZERO, clip=5.0)
    py = PyPreprocessor([{"kind": "ecg", "sos": sos.tolist()}], model_rate=RATE, filter_backend=backend)
    got, want = [], []
    for s in _chunks(len(x), np.random.default_rng(9)):
        got.append(c.run(x[s]))
        want.append(quantize(py(x[s].astype(np.float64)[:, None])[:, 0], {"dtype": np.int8,
                                                                            "quantization": (SCALE, ZERO)}))
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))


def _hostile(n: int, seed: int) -> np.ndarray:
    """ECG-like float32 with NaN (one, runs, the very first sample) and +-inf throughout, FLT_MAX and
    1e30 spikes in the first sixth (the band-pass rings for thousands of samples after those)."""
    rng = np.random.default_rng(seed)
    x = _ecg_like(n, seed)
    x[0] = np.nan  # before any finite sample: held as 0
    for value in (np.nan, np.inf, -np.inf):
        x[rng.integers(1, n, n // 100)] = value
    for value in (np.finfo(np.float32).max, -np.finfo(np.float32).max, 1e30, -1e30):
        x[rng.integers(1, n // 6, 3)] = value
    start = int(rng.integers(n // 4, n // 2))
    x[start:start + 150] = np.nan  # a sensor that drops out for 1.5 s
    return x


def test_hostile_stream_matches_the_python_runtime(lib):
    """NaN, inf and huge values: the C preprocessing holds the last finite input like the Python
    runtime (``StreamRuntime.push``), so both give the same int8 samples, bit for bit, and recover
    after every glitch instead of pinning the output at the zero point."""
    from wearable.runtime import StreamRuntime
    from wearable.runtime._fake import ECG_SOS_100HZ, FakeInterpreter, fake_artifact

    art = fake_artifact("classification")
    params = art.manifest["inputs"][0]
    scale, zero = params["scale"], params["zero_point"]
    clip = art.manifest["data"]["preprocessing"]["ecg_clip_mv"]
    seen: list[np.ndarray] = []
    # The C preprocessing holds only non-finite input; the runtime also holds finite samples beyond
    # an ECG's range (PHYSICAL_RANGE), so here its bounds are float32's own (FLT_MAX sits on a rail).
    f32 = float(np.finfo(np.float32).max)
    py = StreamRuntime(art, interpreter=FakeInterpreter(art), on_samples=lambda n0, y: seen.append(y[:, 0].copy()),
                       rails=(-f32, f32))
    c = Preprocessor(lib, np.array(ECG_SOS_100HZ), scale=scale, zero_point=zero, clip=clip)
    x = _hostile(8000, seed=11)
    got = [c.run(x[s]) for s in _chunks(len(x), np.random.default_rng(12))]
    for s in _chunks(len(x), np.random.default_rng(13)):
        py.push(x[s])
    py.flush()
    want = quantize(np.concatenate(seen), {"dtype": np.int8, "quantization": (scale, zero)})
    got = np.concatenate(got)
    np.testing.assert_array_equal(got, want)
    assert (~np.isfinite(x)).sum() > 100
    assert len(np.unique(got[-1000:])) > 20  # still following the signal, not pinned at the zero point


def test_zero_length_push_and_copy_with_null_are_no_ops(lib, tmp_path):
    """``wearable_rb_push(&rb, NULL, 0)`` and ``wearable_rb_copy_latest(&rb, NULL, 0)`` do nothing;
    under UndefinedBehaviorSanitizer neither reports (a memcpy from NULL, even of 0 bytes, is UB)."""
    from firmware_bridge import C_SOURCE_DIR
    from firmware_bridge.fuzz import SANITIZE_FLAGS

    rb = RingBuffer(lib, 8, dtype=np.float32)
    rb.push(np.arange(3, dtype=np.float32))
    assert rb._lib.wearable_rb_push(rb._struct, None, 0) == 0
    assert rb._lib.wearable_rb_copy_latest(rb._struct, None, 0) == 0
    assert (rb.size, rb.total_pushed, rb.total_dropped) == (3, 3, 0)
    np.testing.assert_array_equal(rb.latest(3), np.arange(3, dtype=np.float32))
    main = tmp_path / "null_push.c"
    main.write_text("""#include <stdint.h>
#include "wearable_ring_buffer.h"
int main(void) {
  uint8_t storage[4];
  wearable_ring_buffer_t rb;
  if (wearable_rb_init(&rb, storage, 4, 1, WEARABLE_RB_OVERWRITE_OLDEST) != 0) return 3;
  if (wearable_rb_push(&rb, NULL, 0) != 0 || wearable_rb_copy_latest(&rb, NULL, 0) != 0) return 4;
  return wearable_rb_total_pushed(&rb) == 0 ? 0 : 5;
}
""")
    exe = tmp_path / "null_push"
    build = subprocess.run(["gcc", *SANITIZE_FLAGS, f"-I{C_SOURCE_DIR}", "-o", str(exe), str(main),
                            str(C_SOURCE_DIR / "wearable_ring_buffer.c")], capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"gcc cannot build with the sanitizers here: {build.stderr.strip().splitlines()[-1:]}")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "runtime error" not in proc.stderr, proc.stderr


def test_short_sanitizer_fuzz_finds_nothing(tmp_path):
    """A few seconds of ``firmware_bridge.fuzz`` (ASan + UBSan; libFuzzer when clang has it, else the
    seeded driver): no sanitizer report and no failed check. CI runs it longer (.ci/run)."""
    from firmware_bridge.fuzz import SanitizerUnavailable, build_fuzzer, run_fuzzer

    try:
        fuzzer = build_fuzzer(tmp_path / "build")
    except SanitizerUnavailable as exc:
        pytest.skip(str(exc))
    result = run_fuzzer(fuzzer, seconds=3, seed=7, crash_dir=tmp_path / "crashes")
    assert result.finding is None, result.log[-3000:]
    assert result.inputs > 1000, result.log[-3000:]
