"""float32 models: TFLM's hello_world (a sine regressor), a small float CNN and one model per float operator,
against TFLM's float kernels within tolerance (tinyml/tools/verify.py: FLOAT_RTOL, FLOAT_ATOL; float results
are not promised bit-exact), on the host and under QEMU (mps2-an386: Cortex-M4 with its FPU, hard float;
mps2-an385: Cortex-M3, soft float); and the refusals of crafted models that mix int8 and float32."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.harness import refusal as _refusal
from tests.modelgen import Case, build, case, float_cases, inputs_for, op_cases
from tests.tflite_edit import edit_model
from tinyml.cli import main as cli_main
from tinyml.compiler import compile_model, lower_graph
from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph.tflite_import import parse_tflite
from tinyml.tools.reference import run_tflm
from tinyml.tools.verify import VerifyReport, tolerant_outputs, verify_model

HELLO, CNN, *OP_CASES = float_cases()
# float operators that only move values (the PAD cases pad inputs): their outputs are compared bit-exactly
MOVERS = {"RESHAPE", "SQUEEZE", "CONCATENATION", "PAD", "PADV2", "TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT",
          "SPLIT_V", "PACK", "UNPACK", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH"}


def _verify(c: Case, tmp_path: Path, board: str = "host", samples: int = 3) -> VerifyReport:
    model = build(c)
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    report = verify_model(path, board, inputs=inputs_for(c, model, n=samples), work_dir=tmp_path / "proj")
    assert report.ok, report.summary()
    if c.op in MOVERS:  # no float arithmetic: the bytes are TFLM's, compared byte for byte
        assert not report.float_outputs and "bit-exact" in report.summary(), report.summary()
    else:
        assert report.float_outputs and "within tolerance" in report.summary() and "bit-exact" not in \
            report.summary().split(";")[0], report.summary()
    return report


def test_hello_world_is_a_float_sine_regressor() -> None:
    """The hello_world model is TFLM's: three float FULLY_CONNECTED layers (two with a fused RELU) that
    approximate sin(x) on [0, 2 pi]."""
    model = build(HELLO)
    g = lower_graph_ok(model)
    assert [op.kind for op in g.ops] == ["FULLY_CONNECTED"] * 3
    assert [op.options.get("activation") for op in g.ops] == ["RELU", "RELU", "NONE"]
    assert all(t.dtype == "float32" for t in g.tensors)
    xs = np.linspace(0.0, 2.0 * np.pi, 16, dtype=np.float32)
    ys = [float(run_tflm(model, [np.array([[x]], dtype=np.float32)])[0].reshape(-1)[0]) for x in xs]
    assert np.max(np.abs(np.array(ys) - np.sin(xs))) < 0.25


def lower_graph_ok(model: bytes) -> Any:
    g = parse_tflite(model, source="m.tflite")
    lower_graph(g)
    return g


@pytest.mark.parametrize("c", [HELLO, CNN], ids=lambda c: c.id)
def test_models_host(c: Case, tmp_path: Path) -> None:
    _verify(c, tmp_path, samples=6)


@pytest.mark.qemu
@pytest.mark.parametrize("c", [HELLO, CNN], ids=lambda c: c.id)
def test_models_mps2_an386(c: Case, tmp_path: Path) -> None:
    """Cortex-M4 with its single-precision FPU (-mfloat-abi=hard -mfpu=fpv4-sp-d16)."""
    _verify(c, tmp_path, "mps2-an386")


@pytest.mark.qemu
def test_hello_world_mps2_an385_soft_float(tmp_path: Path) -> None:
    """Cortex-M3, no FPU (-mfloat-abi=soft): the float kernels run on the compiler's soft-float library."""
    _verify(HELLO, tmp_path, "mps2-an385")


@pytest.mark.parametrize("c", OP_CASES, ids=lambda c: c.id)
def test_operator_host(c: Case, tmp_path: Path) -> None:
    _verify(c, tmp_path)


# One case of each elementwise float kernel form under QEMU (binary_f32's SUB, MAXIMUM, SQUARED_DIFFERENCE and
# PRELU; unary_f32's LEAKY_RELU and HARD_SWISH), on the M4's FPU.
QEMU_OPS = ("SUB", "MAXIMUM", "SQUARED_DIFFERENCE", "PRELU", "LEAKY_RELU", "HARD_SWISH")


@pytest.mark.qemu
@pytest.mark.parametrize("c", [next(c for c in OP_CASES if c.op == op) for op in QEMU_OPS], ids=lambda c: c.id)
def test_elementwise_operator_mps2_an386(c: Case, tmp_path: Path) -> None:
    _verify(c, tmp_path, "mps2-an386")


# ---------------------------------------------------------------------------------------------- refusals


def _as_int8(s: Any, t: Any, scale: float) -> None:
    t.type = s.TensorType.INT8
    t.quantization = s.QuantizationParametersT()
    t.quantization.scale, t.quantization.zeroPoint = [scale], [0]


def _int8_weights_of(m: Any, s: Any, w: Any) -> None:
    """Float32 weights ``w`` quantized to int8 (scale 0.02)."""
    b = m.buffers[w.buffer]
    values = np.frombuffer(bytes(bytearray(b.data)), np.float32)
    b.data = list(np.clip(np.round(values * 50), -127, 127).astype(np.int8).tobytes())
    _as_int8(s, w, 0.02)


def _hidden_int8(m: Any, s: Any) -> None:
    """hello_world's first hidden activation made int8 (quantized): FULLY_CONNECTED 0 writes int8 from float."""
    sg = m.subgraphs[0]
    _as_int8(s, sg.tensors[sg.operators[0].outputs[0]], 0.05)


def _int8_weights(m: Any, s: Any) -> None:
    """hello_world's second layer with int8 weights beside its float32 input: one int8 weight tensor, the
    rest float (a hand-made hybrid operator)."""
    _hidden_int8(m, s)
    sg = m.subgraphs[0]
    op = sg.operators[1]
    t = sg.tensors[sg.operators[0].outputs[0]]
    t.type, t.quantization = s.TensorType.FLOAT32, None
    _int8_weights_of(m, s, sg.tensors[op.inputs[1]])
    # keep an int8 activation elsewhere in the model, so that the whole-model check lets it through
    _as_int8(s, sg.tensors[sg.operators[2].outputs[0]], 0.05)


def _nan_weight(m: Any, s: Any) -> None:
    sg = m.subgraphs[0]
    w = sg.tensors[sg.operators[1].inputs[1]]
    b = m.buffers[w.buffer]
    values = np.frombuffer(bytes(bytearray(b.data)), np.float32).copy()
    values[3] = np.nan
    b.data = list(values.tobytes())


def _dynamic_range(m: Any, s: Any) -> None:
    """Every FULLY_CONNECTED weight int8 beside float32 activations: dynamic-range quantization."""
    sg = m.subgraphs[0]
    for op in sg.operators:
        _int8_weights_of(m, s, sg.tensors[op.inputs[1]])


REFUSALS = {
    "int8-output-of-float-operator": (_hidden_int8, ModelError,
                                      "operator 0 (FULLY_CONNECTED) mixes int8 and float32: tensor"),
    "int8-weights-of-float-operator": (_int8_weights, ModelError,
                                       "operator 1 (FULLY_CONNECTED) mixes int8 and float32"),
    "nan-weight": (_nan_weight, UnsupportedError, "operator 1 (FULLY_CONNECTED): constant tensor"),
    "dynamic-range": (_dynamic_range, ModelError,
                      "float32 activations with int8 weights (dynamic-range quantization)"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_crafted_mixed_models_are_refused(name: str) -> None:
    edit, error, expect = REFUSALS[name]
    msg = _refusal(edit_model(build(HELLO), edit), error)
    assert expect in msg, msg


def test_float_operator_without_float_kernel_is_unsupported() -> None:
    """A float32 RSQRT (TFLM runs it; tinyml has no float RSQRT kernel yet): one line naming it."""
    msg = _refusal(build(case("rsqrt", "RSQRT", (33,), in_dist="relu", in_scale=5.0, float_model=True)),
                   UnsupportedError)
    assert "(RSQRT): float32 RSQRT is not supported yet; float32 operators supported: " in msg, msg


def test_int8_operator_with_a_float_bias_is_refused(tmp_path: Path) -> None:
    """An int8 FULLY_CONNECTED of a quantized model whose bias is made float32: int8 and float32 mix."""
    model = build(case("dense", "FULLY_CONNECTED", (16,), units=8))

    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        op = next(o for o in sg.operators if len(o.inputs) > 2 and o.inputs[2] >= 0)
        bias = sg.tensors[op.inputs[2]]
        b = m.buffers[bias.buffer]
        b.data = list(np.frombuffer(bytes(bytearray(b.data)), np.int32).astype(np.float32).tobytes())
        bias.type, bias.quantization = s.TensorType.FLOAT32, None

    msg = _refusal(edit_model(model, edit), ModelError)
    assert "(FULLY_CONNECTED) mixes int8 and float32" in msg, msg


def test_constant_input_of_a_byte_kernel(tmp_path: Path) -> None:
    """A float32 CONCATENATION with a constant input (concat_s8 takes the float constant as bytes, cast)."""
    c = next(c for c in OP_CASES if c.op == "CONCATENATION")

    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        t = sg.tensors[sg.operators[0].inputs[1]]
        values = np.linspace(-3.0, 3.0, int(np.prod(t.shape)), dtype=np.float32)
        m.buffers.append(s.BufferT())
        m.buffers[-1].data = list(values.tobytes())
        t.buffer = len(m.buffers) - 1
        sg.inputs = [sg.operators[0].inputs[0]]

    model = edit_model(build(c), edit)
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    report = verify_model(path, "host", samples=2, work_dir=tmp_path / "proj")
    assert report.ok and "2/2 bit-exact" in report.summary(), report.summary()
    assert "(const int8_t *)(const void *)" in (tmp_path / "proj" / "model.c").read_text()


def test_cli_inspect_compile_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The commands print the float model's figures: inspect marks the float operators, compile its arena
    (4 bytes per element: hello_world's widest tensor is 16 floats), verify says "within tolerance"."""
    path = tmp_path / "hello.tflite"
    path.write_bytes(build(HELLO))
    assert cli_main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("float32") >= 5 and "UNSUPPORTED" not in out, out
    assert cli_main(["compile", str(path), "--board", "host", "-o", str(tmp_path / "proj")]) == 0
    assert "arena 128 bytes" in capsys.readouterr().out
    assert cli_main(["verify", str(path), "--board", "host", "--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "3/3 within tolerance" in out and "not bit-exact" in out, out


def test_mixed_model_float_outputs_stay_bit_exact(tmp_path: Path) -> None:
    """A mixed model (float in and out, int8 inside): its DEQUANTIZE output is compared byte for byte, as
    before float32 models (only outputs float kernels computed get the tolerance)."""
    c = next(c for c in op_cases("DEQUANTIZE") if c.io_dtype == "float32")
    model = build(c)
    assert tolerant_outputs(parse_tflite(model)) == [False]
    report = assert_bitexact(model, tmp_path, samples=2)
    assert not report.float_outputs and report.summary().startswith("2/2 bit-exact"), report.summary()
    assert tolerant_outputs(parse_tflite(build(CNN))) == [True]


def test_library_exports_say_libm(tmp_path: Path) -> None:
    """The float CNN's library exports: model.c compiles warning-free, the README says to link -lm (expf,
    tanhf), the CMake target links m."""
    path = tmp_path / "cnn.tflite"
    path.write_bytes(build(CNN))
    lib = tmp_path / "lib"
    compile_model(path, "host", lib, name="cnn", fmt="library")
    assert "link your firmware with `-lm`" in (lib / "README.md").read_text()
    proc = subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{lib / 'include'}", "-c",
                           str(lib / "src" / "model.c"), "-o", str(tmp_path / "model.o")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    compile_model(path, "host", tmp_path / "cmake", name="cnn", fmt="cmake")
    assert "target_link_libraries(cnn PUBLIC m)" in (tmp_path / "cmake" / "CMakeLists.txt").read_text()
    compile_model(build_path(tmp_path, HELLO), "host", tmp_path / "hello", name="hello", fmt="cmake")
    assert "PUBLIC m" not in (tmp_path / "hello" / "CMakeLists.txt").read_text()  # FULLY_CONNECTED only


def build_path(tmp_path: Path, c: Case) -> Path:
    path = tmp_path / f"{c.id}.tflite"
    path.write_bytes(build(c))
    return path
