"""SOFTMAX, LOGISTIC, TANH, HARD_SWISH: bit-exact with TFLM.

* The converter-made cases of tests/modelgen.py, on the host (gcc with
  ASan/UBSan) and on QEMU (mps2-an386).
* Exhaustive tests of the unary operators: every int8 input value, through the
  generated C and, for a wide sweep of input/output scales and zero points the
  converter does not produce, through the generation-time table against TFLM.
  The sweep models are the converter's models with their quantization
  parameters rewritten (flatbuffer object API of the tflite_micro package).
* SOFTMAX sweeps over input scales (including the capped multiplier and the
  diff_min cut-off), beta (the converter turns beta into a MUL, so beta is
  written into SoftmaxOptions here), depth and rank, and rows with ties.
* Unsupported variants raise a clean UnsupportedError.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases
from tinyml.codegen import render
from tinyml.codegen.lower import LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.ops import nonlinear as nl
from tinyml.errors import TinymlError
from tinyml.graph.validate import validate_operators
from tinyml.graph.ir import Graph, Op, Quant, Tensor
from tinyml.graph.tflite_import import parse_tflite
from tinyml.tools.reference import run_tflm_batch
from tinyml.tools.verify import verify_model

OPS = ("SOFTMAX", "LOGISTIC", "TANH", "HARD_SWISH")
CASES = op_cases(*OPS)
UNARY_CASES = [c for c in CASES if c.op != "SOFTMAX"]
QEMU_BOARD = "mps2-an386"
ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


def _model(case: Any) -> bytes:
    return build(case)


def _base(op: str, shape: tuple[int, ...]) -> bytes:
    """The converter-made single-operator model of ``op`` with input ``shape``."""
    for c in CASES:
        if c.op == op and c.inputs == (shape,) and c.p("beta", 1.0) == 1.0:
            return _model(c)
    raise AssertionError(f"tests/modelgen.py has no {op} case with input {shape}")


def _edit(model: bytes, fn: Callable[[Any, Any], None]) -> bytes:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(model), 0))
    fn(obj, schema)
    builder = flatbuffers.Builder(1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _variant(model: bytes, *, in_q: tuple[float, int] | None = None, out_q: tuple[float, int] | None = None,
             shape: tuple[int, ...] | None = None, beta: float | None = None) -> bytes:
    """A single-operator model with other quantization parameters, shape or softmax beta."""

    def change(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        assert len(sg.operators) == 1, "expected a single-operator model"
        op = sg.operators[0]
        for idx, q in ((op.inputs[0], in_q), (op.outputs[0], out_q)):
            t = sg.tensors[idx]
            if q is not None:
                t.quantization.scale = [float(np.float32(q[0]))]
                t.quantization.zeroPoint = [int(q[1])]
            if shape is not None:
                t.shape = list(shape)
                t.shapeSignature = None
        if beta is not None:
            op.builtinOptions.beta = float(beta)

    return _edit(model, change)


def _covering(model: bytes) -> list[list[np.ndarray]]:
    """Samples that together feed every int8 value to the model's input."""
    g = parse_tflite(model)
    t = g.tensors[g.inputs[0]]
    n = t.size
    reps = -(-256 // n)
    values = np.resize(ALL_INT8, reps * n)
    return [[values[i * n:(i + 1) * n].reshape(t.shape)] for i in range(reps)]


def _verify(model: bytes, tmp_path: Path, inputs: list[list[np.ndarray]], board: str = "host") -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    report = verify_model(path, board, inputs=inputs, work_dir=tmp_path / "proj")
    assert report.ok, report.summary()


def _lower(model: bytes) -> Any:
    g = parse_tflite(model)
    validate_operators(g)
    return lower_op(LowerContext(graph=g), g.ops[-1])


# ---------------------------------------------------------------------------
# converter-made cases


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case: Any, tmp_path: Path) -> None:
    assert_bitexact(_model(case), tmp_path, board="host", samples=4)


@pytest.mark.qemu
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_qemu(case: Any, tmp_path: Path) -> None:
    assert_bitexact(_model(case), tmp_path, board=QEMU_BOARD, samples=4)


# ---------------------------------------------------------------------------
# unary operators: every int8 value


@pytest.mark.parametrize("case", UNARY_CASES, ids=lambda c: c.id)
def test_unary_all_values_host(case: Any, tmp_path: Path) -> None:
    model = _model(case)
    _verify(model, tmp_path, _covering(model))


@pytest.mark.qemu
@pytest.mark.parametrize("case", UNARY_CASES, ids=lambda c: c.id)
def test_unary_all_values_qemu(case: Any, tmp_path: Path) -> None:
    model = _model(case)
    _verify(model, tmp_path, _covering(model), board=QEMU_BOARD)


def _unary_sweep(op: str, n: int, seed: int) -> list[tuple[tuple[float, int], tuple[float, int] | None]]:
    """(input quant, output quant) pairs: log-uniform input scales over 1e-4..20, any zero point."""
    rng = np.random.default_rng(seed)
    fixed = [((1.0 / 16.0, 0), None), ((1.0 / 128.0, -128), None), ((0.1, 127), None), ((20.0, 0), None),
             ((1e-4, 5), None), ((3.0 / 256.0, 0), None)]
    out = []
    for in_q, _ in fixed:
        out.append((in_q, (in_q[0] * 0.5, -20) if op == "HARD_SWISH" else None))
    for _ in range(n):
        s = float(10 ** rng.uniform(-4.0, 1.3))
        zp = int(rng.integers(-128, 128))
        out_q = None
        if op == "HARD_SWISH":  # output scale from in_scale/128 (the limit) up to 4x the input scale
            out_q = (s * float(10 ** rng.uniform(np.log10(1.0 / 120.0), 0.6)), int(rng.integers(-128, 128)))
        out.append(((s, zp), out_q))
    return out


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH", "HARD_SWISH"])
def test_unary_table_sweep(op: str) -> None:
    """The generation-time table equals TFLM for every input value, over many scales and zero points."""
    base = _base(op, (33,))
    for in_q, out_q in _unary_sweep(op, 60, seed=len(op)):
        model = _variant(base, in_q=in_q, out_q=out_q)
        table = _lower(model).consts[0].values
        samples = _covering(model)
        ref = np.concatenate([np.asarray(r[0]).reshape(-1) for r in run_tflm_batch(model, samples)])
        fed = np.concatenate([s[0].reshape(-1) for s in samples]).astype(np.int32)
        ours = table[fed.astype(np.int64) & 0xFF]  # indexed by the bit pattern
        bad = np.nonzero(ours != ref)[0]
        assert bad.size == 0, (f"{op} input {in_q} output {out_q}: input {fed[bad[0]]} gives {ours[bad[0]]}, "
                               f"TFLM {ref[bad[0]]}")


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH", "HARD_SWISH"])
@pytest.mark.parametrize("k", range(4))
def test_unary_sweep_host(op: str, k: int, tmp_path: Path) -> None:
    """A few of the sweep's models end to end through the generated C."""
    in_q, out_q = _unary_sweep(op, 0, seed=0)[k + 1]
    model = _variant(_base(op, (4, 4, 8)), in_q=in_q, out_q=out_q)
    _verify(model, tmp_path, _covering(model))


# ---------------------------------------------------------------------------
# SOFTMAX sweeps


def _softmax_inputs(shape: tuple[int, ...], seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    depth = shape[-1]
    rows = int(np.prod(shape)) // depth
    samples = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(24)]
    narrow = rng.integers(-6, 7, size=shape) + int(rng.integers(-100, 100))  # close values: many terms count
    samples.append(narrow.astype(np.int8))
    special = np.empty((rows, depth), dtype=np.int8)
    for r in range(rows):
        kind = r % 4
        if kind == 0:
            special[r] = 127  # ties everywhere
        elif kind == 1:
            special[r] = -128
            special[r, r % depth] = 127  # one hot
        elif kind == 2:
            special[r] = np.resize(np.arange(127, -129, -1), depth)  # every difference
        else:
            special[r] = -128  # ties at the minimum
    samples.append(special.reshape(shape))
    return [[s] for s in samples]


SOFTMAX_SWEEP = [
    # (shape, input scale, input zero point, beta)
    ((1, 10), 0.05, 3, 1.0),
    ((1, 1), 0.1, 0, 1.0),
    ((1, 2), 0.5, -7, 1.0),
    ((1, 64), 0.01, 0, 1.0),
    ((1, 300), 0.02, 5, 1.0),
    ((2, 3, 4, 5), 0.05, -10, 1.0),
    ((3, 7, 9), 0.2, 20, 1.0),
    ((1, 10), 1.0 / 16.0, 0, 1.0),  # power of two
    ((1, 10), 1.0, 0, 1.0),  # diff_min cuts off differences below -31
    ((1, 10), 40.0, -128, 1.0),  # multiplier capped at 2^31 - 1, only the maxima count
    ((1, 10), 1e-4, 0, 1.0),  # every difference counts, exp close to 1
    ((1, 10), 2e-7, 0, 1.0),  # smallest scales TFLM accepts
    ((1, 10), 0.05, 0, 0.25),
    ((1, 10), 0.05, 0, 3.0),
    ((1, 12), 0.3, 0, 0.01),
    ((1, 12), 0.01, 0, 50.0),
]


@pytest.mark.parametrize("shape,scale,zp,beta", SOFTMAX_SWEEP, ids=lambda v: str(v).replace(" ", ""))
def test_softmax_sweep_host(shape: tuple[int, ...], scale: float, zp: int, beta: float, tmp_path: Path) -> None:
    model = _variant(_base("SOFTMAX", (10,)), in_q=(scale, zp), shape=shape, beta=beta)
    _verify(model, tmp_path, _softmax_inputs(shape, seed=len(shape) * 31 + zp + 200))


@pytest.mark.qemu
@pytest.mark.parametrize("shape,scale,zp,beta", SOFTMAX_SWEEP[::3], ids=lambda v: str(v).replace(" ", ""))
def test_softmax_sweep_qemu(shape: tuple[int, ...], scale: float, zp: int, beta: float, tmp_path: Path) -> None:
    model = _variant(_base("SOFTMAX", (10,)), in_q=(scale, zp), shape=shape, beta=beta)
    _verify(model, tmp_path, _softmax_inputs(shape, seed=len(shape) * 31 + zp + 200), board=QEMU_BOARD)


def test_softmax_prepare_values() -> None:
    """PreprocessSoftmaxScaling and CalculateInputRadius for a few known scales."""
    base = _base("SOFTMAX", (10,))
    # beta * scale * 2^26 = 2^22: multiplier 2^30 with left shift 23; radius floor(31 * 2^26 / 2^23)
    call = _lower(_variant(base, in_q=(1.0 / 16.0, 0)))
    assert (call.params["input_multiplier"], call.params["input_left_shift"], call.params["diff_min"]) == \
        (1 << 30, 23, -248)
    # capped: 2^31 - 1 = (2^31 - 1) * 2^(31 - 31)
    call = _lower(_variant(base, in_q=(40.0, 0)))
    assert (call.params["input_multiplier"], call.params["input_left_shift"], call.params["diff_min"]) == \
        ((1 << 31) - 1, 31, 0)


# ---------------------------------------------------------------------------
# the C fixed-point helpers against the Python port, on raw int32 values

_FP_MAIN = r"""
#include <stdio.h>
#include "tml_fixedpoint.h"
int main(void)
{
    char fn;
    long long a;
    while (scanf(" %c %lld", &fn, &a) == 2) {
        const int32_t x = (int32_t)a;
        if (fn == 'e') {
            printf("%ld\n", (long)tml_fp_exp_on_negative_values(x, 5));
        } else if (fn == 'f') {
            printf("%ld\n", (long)tml_fp_exp_on_negative_values(x, 0));
        } else if (fn == 'o') {
            printf("%ld\n", (long)tml_fp_one_over_one_plus_x(x));
        } else {
            int bits;
            const int32_t r = tml_fp_reciprocal(x, 12, &bits);
            printf("%ld %d\n", (long)r, bits);
        }
    }
    return 0;
}
"""


def _py_reciprocal(x: int, integer_bits: int) -> str:
    headroom_plus_one = 32 - x.bit_length()
    shifted = (x << headroom_plus_one) - (1 << 31)
    return f"{nl.one_over_one_plus_x_for_x_in_0_1(shifted)} {integer_bits - headroom_plus_one}"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_fixedpoint_helpers_raw(tmp_path: Path) -> None:
    env = render.environment()
    for name in ("tml_qmath.h", "tml_fixedpoint.h"):
        (tmp_path / name).write_text(env.get_template(f"kernels/{name}.j2").render())
    (tmp_path / "main.c").write_text(_FP_MAIN)
    exe = tmp_path / "fp"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", "-I", str(tmp_path), str(tmp_path / "main.c"), "-o", str(exe)],
                   check=True, capture_output=True)
    rng = np.random.default_rng(5)
    neg = [0, -1, -(1 << 31), -(1 << 24), -(1 << 26), -(1 << 29)] + \
        [-int(v) for v in rng.integers(0, 1 << 31, size=3000)] + [-int(v) for v in rng.integers(0, 1 << 26, 3000)]
    unit = [0, 1, (1 << 31) - 1, 1 << 30] + [int(v) for v in rng.integers(0, 1 << 31, size=3000)]
    pos = [1, 1 << 19, (1 << 28) - 1, (1 << 31) - 1] + [int(v) for v in rng.integers(1, 1 << 31, size=3000)]
    queries = [("e", a) for a in neg] + [("f", a) for a in neg] + [("o", a) for a in unit] + \
        [("r", a) for a in pos]
    stdin = "".join(f"{f} {a}\n" for f, a in queries)
    lines = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(lines) == len(queries)
    for (f, a), line in zip(queries, lines):
        if f == "e":
            want = str(nl.exp_on_negative_values(a, 5))
        elif f == "f":
            want = str(nl.exp_on_negative_values(a, 0))
        elif f == "o":
            want = str(nl.one_over_one_plus_x_for_x_in_0_1(a))
        else:
            want = _py_reciprocal(a, 12)
        assert line == want, f"{f}({a}): C {line}, Python {want}"


# ---------------------------------------------------------------------------
# unsupported variants


def _graph(kind: str, in_dtype: str = "int8", out_q: tuple[float, int] = (1.0 / 256.0, -128),
           options: dict[str, Any] | None = None) -> Graph:
    q = Quant(scale=np.asarray([0.05], np.float32), zero_point=np.asarray([0], np.int64))
    oq = Quant(scale=np.asarray([out_q[0]], np.float32), zero_point=np.asarray([out_q[1]], np.int64))
    tensors = [
        Tensor(index=0, name="x", shape=(1, 10), dtype=in_dtype, quant=q if in_dtype == "int8" else None),
        Tensor(index=1, name="y", shape=(1, 10), dtype=in_dtype, quant=oq if in_dtype == "int8" else None),
    ]
    op = Op(index=0, kind=kind, inputs=[0], outputs=[1], options=options or {})
    return Graph(name="g", tensors=tensors, ops=[op], inputs=[0], outputs=[1])


def _lower_graph(g: Graph) -> Any:
    validate_operators(g)
    return lower_op(LowerContext(graph=g), g.ops[0])


FLOAT_KERNELS = {"SOFTMAX": "softmax_f32", "LOGISTIC": "unary_f32", "TANH": "unary_f32", "HARD_SWISH": "unary_f32"}


@pytest.mark.parametrize("kind", OPS)
def test_float_lowers_to_a_float_kernel(kind: str) -> None:
    g = _graph(kind, in_dtype="float32", options={"beta": 1.0} if kind == "SOFTMAX" else None)
    assert _lower_graph(g).kernel == FLOAT_KERNELS[kind]


def test_softmax_output_quantization_unsupported() -> None:
    with pytest.raises(TinymlError, match=r"has zero point 0; allowed is -128 \(as TFLM requires\)"):
        _lower_graph(_graph("SOFTMAX", out_q=(1.0 / 256.0, 0), options={"beta": 1.0}))
    with pytest.raises(TinymlError, match=r"has scale 0.0078125; allowed is 0.00390625 \(as TFLM requires\)"):
        _lower(_variant(_base("SOFTMAX", (10,)), out_q=(1.0 / 128.0, -128)))


def test_softmax_tiny_scale_unsupported() -> None:
    # beta * scale * 2^26 <= 1: TFLM's QuantizeMultiplierGreaterThanOne check would stop the program
    with pytest.raises(TinymlError, match="too small"):
        _lower(_variant(_base("SOFTMAX", (10,)), in_q=(1e-8, 0)))


def test_logistic_output_zero_point_unsupported() -> None:
    with pytest.raises(TinymlError, match="zero point 0"):
        _lower(_variant(_base("LOGISTIC", (33,)), out_q=(1.0 / 256.0, 0)))


def test_hard_swish_small_output_scale_unsupported() -> None:
    # output scale below input_scale / 128: TFLM's Prepare rejects it (positive output exponent)
    with pytest.raises(TinymlError, match="HARD_SWISH rejects"):
        _lower(_variant(_base("HARD_SWISH", (33,)), in_q=(0.1, 0), out_q=(0.1 / 1000.0, 0)))


def test_shape_mismatch_unsupported() -> None:
    g = _graph("TANH")
    g.tensors[1] = Tensor(index=1, name="y", shape=(1, 11), dtype="int8", quant=g.tensors[1].quant)
    with pytest.raises(TinymlError, match="10 values but output .* has 11"):
        _lower_graph(g)
