"""``firmware_bridge.generate`` on a real export: files, stamps, determinism, C validity, golden
vectors through TFLite Micro, bad input, and the Cortex-M4 cross-compile.

One artifact is exported from the shipped dscnn_tiny checkpoint with its shipped evaluation set
(about 20 s) and shared by the module.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("jinja2")
pytest.importorskip("scipy")

import firmware_bridge  # noqa: E402
from firmware_bridge import GENERATED_FILES, FirmwareError, c_identifier, generate, quantize_multiplier  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc not found")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    from quantize.export import main

    out = tmp_path_factory.mktemp("fw_export")
    # the whole shipped evaluation set: the export gates hold on it, not on a few dozen windows
    rc = main(["dscnn_tiny", "--out", str(out)])
    assert rc == 0
    return out / "dscnn_tiny"


@pytest.fixture(scope="module")
def firmware(artifact) -> Path:
    return generate(artifact)


@pytest.fixture(scope="module")
def manifest(artifact) -> dict:
    return json.loads((artifact / "manifest.json").read_text())


def _compile_shared(tmp_path: Path, sources: list[Path], extra: str = "") -> ctypes.CDLL:
    files = list(sources)
    if extra:
        (tmp_path / "extra.c").write_text(extra)
        files.append(tmp_path / "extra.c")
    lib = tmp_path / "libgen.so"
    cmd = [GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared", "-o", str(lib),
           *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


def test_writes_stamped_files_deterministically(artifact, firmware, manifest, tmp_path):
    assert firmware == artifact / "firmware"
    sha = manifest["files"]["model_int8.tflite"]["sha256"]
    for name in GENERATED_FILES:
        head = (firmware / name).read_text().splitlines()[:3]
        assert "generated" in head[0] and "do not edit" in head[0] and sha in head[2], name
    again = generate(artifact, out_dir=tmp_path / "again")
    for name in (*GENERATED_FILES, *firmware_bridge.C_SOURCES):
        assert (again / name).read_bytes() == (firmware / name).read_bytes(), name


def test_settings_and_resolver_follow_the_manifest(firmware, manifest):
    settings = (firmware / "model_settings.h").read_text()
    arena = manifest["tflm"]["arena_bytes"]
    assert f"DSCNN_TINY_TENSOR_ARENA_MEASURED_BYTES {arena}\n" in settings
    padded = int(re.search(r"DSCNN_TINY_TENSOR_ARENA_BYTES (\d+)", settings).group(1))
    assert padded % 16 == 0 and padded >= arena * (100 + firmware_bridge.ARENA_MARGIN_PERCENT) / 100
    assert '{ "normal", "af", "other", "noisy" }' in settings
    resolver = (firmware / "op_resolver.h").read_text()
    ops = sorted({op["name"] for op in manifest["ops"]})
    assert f"#define DSCNN_TINY_OP_COUNT {len(ops)}\n" in resolver
    assert re.findall(r"; /\* (\w+) \*/", resolver) == ops
    assert "resolver.AddDepthwiseConv2D()" in resolver and "resolver.AddConv2D()" in resolver


@needs_gcc
def test_generated_c_compiles_and_holds_exact_values(firmware, artifact, manifest, tmp_path):
    """Model bytes, alignment, scales, SOS and steady-state coefficients read back from compiled C."""
    probe = """
#include "model_settings.h"
#include "test_vectors.h"
const double probe_scale[2] = { DSCNN_TINY_INPUT_0_SCALE, DSCNN_TINY_OUTPUT_0_SCALE };
const long probe_int[7] = { DSCNN_TINY_INPUT_0_ZERO_POINT, DSCNN_TINY_OUTPUT_0_ZERO_POINT,
    DSCNN_TINY_INPUT_0_MULTIPLIER, DSCNN_TINY_INPUT_0_SHIFT, DSCNN_TINY_WINDOW_SAMPLES, DSCNN_TINY_TEST_VECTOR_COUNT,
    DSCNN_TINY_TEST_TOLERANCE };
const double probe_sos[DSCNN_TINY_FILTER_0_SECTIONS][6] = DSCNN_TINY_FILTER_0_SOS;
const double probe_zi[DSCNN_TINY_FILTER_0_SECTIONS][2] = DSCNN_TINY_FILTER_0_ZI;
"""
    lib = _compile_shared(tmp_path, [firmware / "model_data.c", firmware / "test_vectors.c"],
                          f'#include "{firmware}/model_data.h"\n' + probe.replace('"model_settings.h"',
                          f'"{firmware}/model_settings.h"').replace('"test_vectors.h"', f'"{firmware}/test_vectors.h"'))
    model = (artifact / "model_int8.tflite").read_bytes()
    n = ctypes.c_uint.in_dll(lib, "dscnn_tiny_model_data_len").value
    data = (ctypes.c_ubyte * n).in_dll(lib, "dscnn_tiny_model_data")
    assert bytes(data) == model and ctypes.addressof(data) % 16 == 0
    inp, out = manifest["inputs"][0], manifest["outputs"][0]
    scales = list((ctypes.c_double * 2).in_dll(lib, "probe_scale"))
    assert scales == [float(np.float32(inp["scale"])), float(np.float32(out["scale"]))]
    ints = list((ctypes.c_long * 7).in_dll(lib, "probe_int"))
    assert ints[:2] == [inp["zero_point"], out["zero_point"]] and ints[4:6] == [manifest["window_samples"], 8]
    assert ints[6] == manifest["tflm"]["max_abs_diff"]  # the self-test tolerance is the measured one
    assert ints[2] * 2.0 ** (ints[3] - 31) == pytest.approx(scales[0], rel=1e-9)
    sos = np.asarray(manifest["data"]["preprocessing"]["channels"][0]["sos"])
    np.testing.assert_array_equal(np.ctypeslib.as_array((ctypes.c_double * 12).in_dll(lib, "probe_sos")),
                                  sos.ravel())
    from scipy.signal import sosfilt_zi

    np.testing.assert_array_equal(np.ctypeslib.as_array((ctypes.c_double * 4).in_dll(lib, "probe_zi")),
                                  sosfilt_zi(sos).ravel())


@needs_gcc
@pytest.mark.tflm
def test_golden_vectors_replay_in_tflite_micro(firmware, tmp_path):
    """The C arrays (model and vectors) run through the TFLite Micro interpreter give the C expected outputs."""
    pytest.importorskip("tflite_micro")
    from quantize._runtimes import run_tflm

    lib = _compile_shared(tmp_path, [firmware / "model_data.c", firmware / "test_vectors.c"])
    n = ctypes.c_uint.in_dll(lib, "dscnn_tiny_model_data_len").value
    model = bytes((ctypes.c_ubyte * n).in_dll(lib, "dscnn_tiny_model_data"))
    manifest = json.loads((firmware.parent / "manifest.json").read_text())
    w, k = manifest["window_samples"], manifest["outputs"][0]["shape"][1]
    inputs = np.ctypeslib.as_array((ctypes.c_int8 * (8 * w)).in_dll(lib, "dscnn_tiny_test_input_0"))
    expected = np.ctypeslib.as_array((ctypes.c_int8 * (8 * k)).in_dll(lib, "dscnn_tiny_test_output_0"))
    (got,), _arena = run_tflm(model, inputs.reshape(8, 1, w).copy())
    np.testing.assert_array_equal(got.reshape(8, k), expected.reshape(8, k))


def _tflm_stub(root: Path) -> Path:
    """Stub TFLM headers with the interface the generated code and the example use."""
    micro = root / "tensorflow/lite/micro"
    micro.mkdir(parents=True)
    methods = "\n".join(f"  TfLiteStatus {m}() {{ return n++ < N ? kTfLiteOk : kTfLiteError; }}"
                        for m in sorted(set(firmware_bridge._context.TFLM_OPS.values())))
    (micro / "micro_mutable_op_resolver.h").write_text(
        "#pragma once\nenum TfLiteStatus { kTfLiteOk, kTfLiteError };\nnamespace tflite {\n"
        f"template <unsigned N> struct MicroMutableOpResolver {{\n  unsigned n = 0;\n{methods}\n}};\n}}\n")
    (micro / "micro_interpreter.h").write_text("""#pragma once
#include <cstddef>
#include <cstdint>
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
namespace tflite {
struct Model {};
inline const Model *GetModel(const void *) { return nullptr; }
struct TensorData { int8_t *int8; };
struct TfLiteTensor { TensorData data; };
class MicroInterpreter {
 public:
  template <class R> MicroInterpreter(const Model *, const R &, uint8_t *, size_t) {}
  TfLiteStatus AllocateTensors() { return kTfLiteOk; }
  TfLiteStatus Invoke() { return kTfLiteOk; }
  TfLiteTensor *input(size_t) { return nullptr; }
  TfLiteTensor *output(size_t) { return nullptr; }
};
}  // namespace tflite
""")
    return root


def _gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    return gxx


def test_op_resolver_is_valid_cpp_against_the_tflm_interface(firmware, tmp_path):
    """op_resolver.h compiles as C++ against a stub with MicroMutableOpResolver's interface."""
    gxx = _gxx()
    _tflm_stub(tmp_path)
    main = tmp_path / "main.cc"
    main.write_text(f'#include "{firmware}/op_resolver.h"\nint main() {{ dscnn_tiny_op_resolver_t r;\n'
                    "  return dscnn_tiny_register_ops(r) == kTfLiteOk && r.n == DSCNN_TINY_OP_COUNT ? 0 : 1; }\n")
    exe = tmp_path / "resolver"
    proc = subprocess.run([gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), str(main), "-o",
                           str(exe)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(exe)], check=False).returncode == 0


def test_readme_main_loop_example_compiles(firmware, tmp_path):
    """firmware_bridge/examples/main_loop.cc (the README's integration example) against the generated headers."""
    gxx = _gxx()
    example = Path(firmware_bridge.__file__).parent / "examples" / "main_loop.cc"
    cmd = [gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", str(_tflm_stub(tmp_path)), "-I", str(firmware),
           "-c", str(example), "-o", str(tmp_path / "main_loop.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _copy(artifact: Path, dst: Path, edit) -> Path:
    shutil.copytree(artifact, dst, ignore=shutil.ignore_patterns("firmware"))
    manifest = json.loads((dst / "manifest.json").read_text())
    edit(manifest)
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@needs_gcc
def test_dotted_model_names_give_valid_c(artifact, tmp_path):
    name = "3-lead.ECG_v2"
    src = _copy(artifact, tmp_path / "odd", lambda m: m["model"].update(name=name))
    out = generate(src)
    assert c_identifier(name) == "m_3_lead_ecg_v2"
    _compile_shared(tmp_path, [out / "model_data.c", out / "test_vectors.c"],
                    f'#include "{out}/model_settings.h"\nconst char *probe = M_3_LEAD_ECG_V2_MODEL_NAME;\n')
    for odd, ident in (("int", "m_int"), ("", "model"), ("__x", "x"), ("é", "model"), ('ECG/v2 "x" */', "ecg_v2_x")):
        assert c_identifier(odd) == ident


def test_c_constants_are_never_nan_or_inf():
    from firmware_bridge._generate import _c_double

    assert _c_double(0.5) == "0.5" and _c_double(2) == "2.0"
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(FirmwareError, match="C constant"):
            _c_double(bad)


def _drop_arena(m):
    del m["tflm"]["arena_bytes"]


@pytest.mark.parametrize("edit, message", [
    (_drop_arena, "tflm.arena_bytes is missing"),
    (lambda m: m["inputs"][0].update(dtype="float32"), "not int8"),
    (lambda m: m["checks"].update(full_int8=False), "not full integer"),
    (lambda m: m["ops"].append({"name": "GELU", "version": 1, "count": 1}), "GELU has no TFLite Micro kernel"),
    (lambda m: m["data"].update(preprocessing=None), "data.preprocessing is missing"),
    (lambda m: m["files"]["model_int8.tflite"].update(sha256="0" * 64), "differs from the manifest"),
    (lambda m: m["ops"].pop(), "differ from the model's"),
    (lambda m: m["outputs"][0].update(scale="big"), "outputs[0].scale must be a positive number"),
    # manifest text that would end a C comment, continue a line or form a trigraph
    (lambda m: m["model"].update(name="x */ int evil; /*"), "model.name must be"),
    (lambda m: m["model"].update(name="x\\\nint evil;"), "model.name must be"),
    (lambda m: m["model"].update(name="x??/"), "model.name must be"),
    (lambda m: m["model"].update(name=""), "model.name must be"),
    (lambda m: m["model"].update(name=["x"]), "model.name must be"),
    (lambda m: m["labels"].__setitem__(1, "af */"), "labels[1] must be"),
    (lambda m: m["labels"].pop(), "3 labels for an output of 4 classes"),
    (lambda m: m.update(labels=[]), "labels must be a non-empty list"),
    (lambda m: m["data"]["preprocessing"]["channels"][0].update(kind="ecg\\"), "kind must be"),
    (lambda m: m["ops"][0].update(name=["CONV_2D"]), "has no TFLite Micro kernel"),
    # numbers that would print as the C identifiers nan/inf, or absurd sizes
    (lambda m: m.update(sampling_rate_hz=math.nan), "NaN is not a JSON number"),
    (lambda m: m.update(sampling_rate_hz=1e300), "sampling_rate_hz must be a number in (0, 100000]"),
    (lambda m: m["data"]["preprocessing"]["channels"][0].update(band_hz=[0.5, math.inf]),
     "Infinity is not a JSON number"),
    (lambda m: m["data"]["preprocessing"]["channels"][0].update(band_hz=[0.5, "40"]), "band_hz must be finite"),
    (lambda m: m["data"]["preprocessing"].update(ecg_clip_mv=1e300), "ecg_clip_mv must be in"),
    (lambda m: m.update(window_samples=10 ** 12), "window_samples must be an integer in"),
    (lambda m: m.update(hop_samples=0), "hop_samples must be an integer in"),
    (lambda m: m.update(in_channels=10 ** 6), "in_channels must be an integer in"),
    (lambda m: m["tflm"].update(arena_bytes=2 ** 40), "tflm.arena_bytes must be an integer in"),
    (lambda m: m["tflm"].update(max_abs_diff="1; evil"), "tflm.max_abs_diff must be an integer"),
    (lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0" * 64}}), "files entry must be"),
])
def test_bad_artifacts_are_refused_with_exit_2(artifact, tmp_path, edit, message):
    src = _copy(artifact, tmp_path / "bad", edit)
    with pytest.raises(FirmwareError, match=re.escape(message)):
        generate(src)
    assert not (src / "firmware").exists()


def test_cli_refuses_bad_artifact_with_one_line(artifact, tmp_path):
    src = _copy(artifact, tmp_path / "bad", _drop_arena)
    message = "tflm.arena_bytes is missing"
    proc = subprocess.run([sys.executable, "-m", "firmware_bridge.generate", str(src)], capture_output=True,
                          text=True, cwd=REPO, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and not (src / "firmware").exists()


def test_cli_refuses_a_comment_closing_model_name_with_one_line(artifact, tmp_path):
    src = _copy(artifact, tmp_path / "bad", lambda m: m["model"].update(name="x */\n#include <evil.h>\n/*"))
    proc = subprocess.run([sys.executable, "-m", "firmware_bridge.generate", str(src)], capture_output=True,
                          text=True, cwd=REPO, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "model.name" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and not (src / "firmware").exists()


def test_files_linked_out_of_the_artifact_are_not_read(artifact, tmp_path):
    src = _copy(artifact, tmp_path / "linked", lambda m: None)
    outside = tmp_path / "outside.npz"
    (src / "golden.npz").rename(outside)
    (src / "golden.npz").symlink_to(outside)
    with pytest.raises(FirmwareError, match="outside the artifact directory"):
        generate(src)
    assert not (src / "firmware").exists()


def test_cli_missing_directory(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "firmware_bridge.generate", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["default", "fresh", "own_dir"])
def test_a_full_disk_mid_way_leaves_no_partial_firmware(artifact, tmp_path, monkeypatch, capsys, where):
    """The fifth file fails to write (ENOSPC): the CLI says so in one line (exit 2), and the output
    is as it was: the artifact's firmware/ untouched or absent, a directory of one's own unchanged."""
    from firmware_bridge import _generate
    from firmware_bridge.generate import main

    src = _copy(artifact, tmp_path / "art", lambda m: None)
    generate(src)
    argv = [str(src)]
    if where == "fresh":
        shutil.rmtree(src / "firmware")
    if where == "own_dir":
        own = tmp_path / "fw"
        own.mkdir()
        (own / "Makefile").write_text("all:\n")
        (own / "model_data.h").write_text("/* an older model */\n")
        argv += ["--out", str(own)]
    before = _tree(tmp_path)
    real, calls = _generate._write, []

    def fail_fifth(path, text):
        calls.append(path)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(_generate, "_write", fail_fifth)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and "No space left" in err
    assert len(calls) == 5 and _tree(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def test_quantize_multiplier_matches_tflite_form():
    for real in (0.0178840532898902893, 0.16247148811817169, 1.0, 3.5e-7, 0.999999999999):
        m, s = quantize_multiplier(real)
        assert (1 << 30) <= m < (1 << 31) and m * 2.0 ** (s - 31) == pytest.approx(real, rel=1e-9)
    assert quantize_multiplier(0.0) == (0, 0)


def test_cross_compile_sizes_for_cortex_m4(firmware, artifact):
    """Every C file (generated and project-written) builds for a Cortex-M4F; sizes are reported."""
    try:
        sizes = firmware_bridge.cross_compile_sizes(firmware)
    except firmware_bridge.ToolchainMissing as exc:
        pytest.skip(f"cross-compile skipped: {exc}")
    files = sizes["files"]
    assert set(files) == {"model_data.c", "test_vectors.c", "wearable_preprocess.c", "wearable_ring_buffer.c"}
    assert files["model_data.c"]["text"] >= len((artifact / "model_int8.tflite").read_bytes())
    assert all(f["data"] == 0 and f["bss"] == 0 for f in files.values())  # all const, no static state
    assert sizes["total"]["text"] == sum(f["text"] for f in files.values())
    print(json.dumps(sizes, indent=1))


def test_cross_compile_reports_a_missing_toolchain(firmware):
    with pytest.raises(firmware_bridge.ToolchainMissing, match="apt-get install gcc-arm-none-eabi"):
        firmware_bridge.cross_compile_sizes(firmware, cc="no-such-arm-gcc")
