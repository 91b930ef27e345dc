"""ADD, MUL, QUANTIZE, DEQUANTIZE, RELU, RELU6, LEAKY_RELU: bit-exact with TFLM.

Three kinds of tests:

* the converter-made cases of tests/modelgen.py, on the host (gcc + ASan/UBSan)
  and on QEMU (mps2-an386);
* exhaustive tests: every int8 input value for the unary operators, every pair
  of int8 values for ADD and MUL, on the converter-made models and on small
  hand-built ``.tflite`` models (written with tflite_micro's flatbuffer schema)
  that sweep scales and zero points the converter does not produce, including
  int8 -> int8 QUANTIZE and float rounding ties for float -> int8 QUANTIZE;
* unsupported variants raise a clean UnsupportedError.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases
from tinyml.codegen.lower import LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.errors import TinymlError
from tinyml.graph.validate import validate_operators
from tinyml.graph.ir import Graph, Op, Quant, Tensor
from tinyml.graph.tflite_import import parse_tflite
from tinyml.tools.verify import verify_model

OPS = ("ADD", "MUL", "QUANTIZE", "DEQUANTIZE", "RELU", "RELU6", "LEAKY_RELU")
CASES = op_cases(*OPS)
UNARY = [c for c in CASES if c.op in ("RELU", "RELU6", "LEAKY_RELU")]
BINARY = [c for c in CASES if c.op in ("ADD", "MUL")]
QEMU_BOARD = "mps2-an386"


def _model(case) -> bytes:
    return build(case)


def _verify(model: bytes, tmp_path: Path, inputs: list[list[np.ndarray]], board: str = "host") -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    report = verify_model(path, board, inputs=inputs, work_dir=tmp_path / "proj")
    assert report.ok, report.summary()


# ---------------------------------------------------------------------------
# converter-made cases


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case, tmp_path: Path) -> None:
    assert_bitexact(_model(case), tmp_path, board="host", samples=4)


@pytest.mark.qemu
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_qemu(case, tmp_path: Path) -> None:
    assert_bitexact(_model(case), tmp_path, board=QEMU_BOARD, samples=2)


def _all_int8_samples(shape: tuple[int, ...], shift: int = 0) -> list[np.ndarray]:
    """Samples of ``shape`` that together hold every int8 value at least once."""
    size = int(np.prod(shape))
    n = math.ceil(256 / size)
    values = np.resize(np.roll(np.arange(-128, 128), shift), n * size).astype(np.int8)
    return [values[i * size:(i + 1) * size].reshape(shape) for i in range(n)]


@pytest.mark.parametrize("case", UNARY, ids=lambda c: c.id)
def test_unary_all_int8_values(case, tmp_path: Path) -> None:
    model = _model(case)
    g = parse_tflite(model)
    shape = tuple(g.tensors[g.inputs[0]].shape)
    _verify(model, tmp_path, [[x] for x in _all_int8_samples(shape)])


@pytest.mark.parametrize("case", [c for c in BINARY if c.inputs[0] == c.inputs[1]], ids=lambda c: c.id)
def test_binary_all_int8_pairs(case, tmp_path: Path) -> None:
    """Every (a, b) pair of int8 values, on the converter-made model (same-shape inputs)."""
    model = _model(case)
    g = parse_tflite(model)
    shape = tuple(g.tensors[g.inputs[0]].shape)
    size = int(np.prod(shape))
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    n = math.ceil(a.size / size)
    a, b = np.resize(a, n * size).astype(np.int8), np.resize(b, n * size).astype(np.int8)
    xs = [[a[i * size:(i + 1) * size].reshape(shape), b[i * size:(i + 1) * size].reshape(shape)] for i in range(n)]
    _verify(model, tmp_path, xs)


# ---------------------------------------------------------------------------
# hand-built models


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    return s


def tiny_model(op: str, inputs: list[dict], output: dict, options: tuple[str, object] | None = None) -> bytes:
    """A one-operator .tflite: ``inputs``/``output`` are dicts with shape, dtype, scale, zp."""
    import flatbuffers

    s = _schema()
    types = {"int8": s.TensorType.INT8, "float32": s.TensorType.FLOAT32, "int16": s.TensorType.INT16,
             "int32": s.TensorType.INT32, "int64": s.TensorType.INT64}
    tensors = []
    buffers = [s.BufferT()]
    for k, spec in enumerate(inputs + [output]):
        t = s.TensorT()
        t.shape = list(spec["shape"])
        t.type = types[spec["dtype"]]
        t.buffer = 0
        if spec.get("data") is not None:  # a constant tensor
            buf = s.BufferT()
            buf.data = list(np.ascontiguousarray(spec["data"]).tobytes())
            t.buffer = len(buffers)
            buffers.append(buf)
        t.name = f"t{k}"
        if spec.get("scale") is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(spec["scale"])]
            q.zeroPoint = [int(spec.get("zp", 0))]
            t.quantization = q
        tensors.append(t)
    code = s.OperatorCodeT()
    code.builtinCode = getattr(s.BuiltinOperator, op)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    o = s.OperatorT()
    o.opcodeIndex = 0
    o.inputs = list(range(len(inputs)))
    o.outputs = [len(inputs)]
    if options is not None:
        name, table = options
        o.builtinOptionsType = getattr(s.BuiltinOptions, name)
        o.builtinOptions = table
    sg = s.SubGraphT()
    sg.tensors = tensors
    sg.inputs = [k for k, spec in enumerate(inputs) if spec.get("data") is None]
    sg.outputs = [len(inputs)]
    sg.operators = [o]
    sg.name = "main"
    m = s.ModelT()
    m.version = 3
    m.operatorCodes = [code]
    m.subgraphs = [sg]
    m.description = "tinyml test"
    m.buffers = buffers
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _q(shape, scale, zp, dtype="int8") -> dict:
    return dict(shape=shape, dtype=dtype, scale=scale, zp=zp)


def _binary_options(op: str, act: int):
    s = _schema()
    if op == "ADD":
        t = s.AddOptionsT()
        t.fusedActivationFunction = act
        return "AddOptions", t
    t = s.MulOptionsT()
    t.fusedActivationFunction = act
    return "MulOptions", t


# (s1, zp1, s2, zp2, s_out, zp_out, fused activation code)
BINARY_QUANT = [
    (0.05, -3, 0.05, 7, 0.1, 2, 0),
    (0.0078125, -128, 0.5, 127, 0.25, -10, 1),
    (0.3, 20, 0.002, -100, 0.02, 0, 3),
    (1.7, 0, 0.9, -1, 3.1, 5, 2),
    (0.011, 64, 0.013, -64, 0.004, -128, 0),
]


@pytest.mark.parametrize("op", ["ADD", "MUL"])
@pytest.mark.parametrize("quant", BINARY_QUANT, ids=lambda q: "s{}z{}-s{}z{}-o{}z{}-act{}".format(*q))
def test_binary_exhaustive_broadcast(op: str, quant, tmp_path: Path) -> None:
    """(256, 1) op (1, 256): every pair of int8 values in one sample, both inputs broadcast."""
    s1, z1, s2, z2, so, zo, act = quant
    model = tiny_model(op, [_q([256, 1], s1, z1), _q([1, 256], s2, z2)], _q([256, 256], so, zo),
                       _binary_options(op, act))
    a = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    b = np.roll(np.arange(-128, 128, dtype=np.int8), 37).reshape(1, 256)
    _verify(model, tmp_path, [[a, b]])


@pytest.mark.parametrize("op", ["ADD", "MUL"])
@pytest.mark.parametrize("shapes", [
    ([1, 4, 4, 8], [1, 1, 1, 8], [1, 4, 4, 8]),
    ([1, 4, 4, 8], [1, 4, 4, 1], [1, 4, 4, 8]),
    ([1, 1, 1, 8], [1, 3, 5, 1], [1, 3, 5, 8]),
    ([2, 1, 3, 1], [1, 4, 1, 5], [2, 4, 3, 5]),
    ([3, 5], [5], [3, 5]),
    ([6], [1], [6]),
    ([2, 3, 4], [1, 1, 1, 4], [1, 2, 3, 4]),
], ids=lambda s: "x".join(map(str, s[0])) + "-" + "x".join(map(str, s[1])))
def test_binary_broadcast_shapes(op: str, shapes, tmp_path: Path) -> None:
    sa, sb, so = shapes
    model = tiny_model(op, [_q(sa, 0.04, 5), _q(sb, 0.07, -9)], _q(so, 0.08 if op == "ADD" else 0.01, -3),
                       _binary_options(op, 0))
    rng = np.random.default_rng(3)
    xs = [[rng.integers(-128, 128, size=sa).astype(np.int8), rng.integers(-128, 128, size=sb).astype(np.int8)]
          for _ in range(3)]
    _verify(model, tmp_path, xs)


@pytest.mark.parametrize("op", ["ADD", "MUL"])
@pytest.mark.parametrize("const_pos", [0, 1])
def test_binary_constant_input(op: str, const_pos: int, tmp_path: Path) -> None:
    """One input is a constant int8 tensor (emitted into flash), broadcast along the channels."""
    rng = np.random.default_rng(11 + const_pos)
    const = dict(_q([1, 1, 1, 8], 0.02, -7), data=rng.integers(-128, 128, size=(1, 1, 1, 8)).astype(np.int8))
    act = _q([1, 4, 4, 8], 0.05, 3)
    ins = [const, act] if const_pos == 0 else [act, const]
    model = tiny_model(op, ins, _q([1, 4, 4, 8], 0.06 if op == "ADD" else 0.004, -2), _binary_options(op, 0))
    xs = [[x.reshape(1, 4, 4, 8)] for x in _all_int8_samples((1, 4, 4, 8))]
    _verify(model, tmp_path, xs)


# (in scale, in zp, out scale, out zp)
UNARY_QUANT = [
    (0.05, -3, 0.05, -3),
    (0.02, 10, 0.05, -128),
    (0.1, -128, 0.0234, -20),
    (0.5, 100, 1.25, 0),
    (0.0173, 0, 0.0017, 7),
]


@pytest.mark.parametrize("op", ["RELU", "RELU6", "LEAKY_RELU", "QUANTIZE"])
@pytest.mark.parametrize("quant", UNARY_QUANT, ids=lambda q: "s{}z{}-o{}z{}".format(*q))
def test_unary_exhaustive_quant_sweep(op: str, quant, tmp_path: Path) -> None:
    si, zi, so, zo = quant
    options = None
    if op == "LEAKY_RELU":
        t = _schema().LeakyReluOptionsT()
        t.alpha = 0.2
        options = ("LeakyReluOptions", t)
    model = tiny_model(op, [_q([4, 64], si, zi)], _q([4, 64], so, zo), options)
    _verify(model, tmp_path, [[x] for x in _all_int8_samples((4, 64), shift=11)])


@pytest.mark.parametrize("alpha", [0.01, 0.3, 1.5, -0.5, 0.0])
def test_leaky_relu_alpha_sweep(alpha: float, tmp_path: Path) -> None:
    t = _schema().LeakyReluOptionsT()
    t.alpha = alpha
    model = tiny_model("LEAKY_RELU", [_q([256], 0.03, 12)], _q([256], 0.025, -40), ("LeakyReluOptions", t))
    _verify(model, tmp_path, [[x] for x in _all_int8_samples((256,))])


@pytest.mark.parametrize("scale,zp", [(0.1, 0), (0.0123, -17), (0.5, 127), (3.0e-3, -128)])
def test_quantize_float_rounding(scale: float, zp: int, tmp_path: Path) -> None:
    """float32 -> int8 with values exactly on rounding ties, negative values, and saturation."""
    n = 512
    model = tiny_model("QUANTIZE", [dict(shape=[n], dtype="float32")], _q([n], scale, zp))
    f = np.float32(scale)
    k = np.arange(-n // 2, n // 2, dtype=np.float32) * np.float32(0.5)  # ..., -1.5, -1.0, -0.5, 0, 0.5, ...
    ties = (k * f).astype(np.float32)
    rng = np.random.default_rng(5)
    wide = (rng.standard_normal(n) * 200.0 * f).astype(np.float32)
    # saturation (TFLM's float -> int32 conversion is undefined beyond the int32 range, so stay inside it)
    # (and around our kernel's saturation at +-1000 steps, which must not show for any zero point)
    steps = np.array([0.0, -0.0, 127.5, -128.5, 127.49, -128.49, 1e5, -1e5, 2.0e9, -2.0e9,
                      999.5, -999.5, 1000.0, -1000.0, 1000.5, -1000.5, 1001.0, -1001.0], dtype=np.float32)
    edge = np.resize((steps * f).astype(np.float32), n)
    near = (np.nextafter(ties, np.float32(np.inf))).astype(np.float32)
    _verify(model, tmp_path, [[ties], [wide], [edge], [near]])


@pytest.mark.parametrize("scale,zp", [(0.1, 0), (0.0123, -17), (0.5, 127), (3.0e-3, -128), (7.7, 3)])
def test_dequantize_all_int8_values(scale: float, zp: int, tmp_path: Path) -> None:
    model = tiny_model("DEQUANTIZE", [_q([256], scale, zp)], dict(shape=[256], dtype="float32"))
    _verify(model, tmp_path, [[np.arange(-128, 128, dtype=np.int8)]])


@pytest.mark.qemu
def test_hand_built_qemu(tmp_path: Path) -> None:
    """A float rounding and a broadcast model on the Cortex-M target."""
    model = tiny_model("QUANTIZE", [dict(shape=[64], dtype="float32")], _q([64], 0.0123, -17))
    k = (np.arange(-32, 32, dtype=np.float32) * np.float32(0.5) * np.float32(0.0123)).astype(np.float32)
    _verify(model, tmp_path / "q", [[k]], board=QEMU_BOARD)
    model = tiny_model("ADD", [_q([16, 1], 0.3, 20), _q([1, 16], 0.002, -100)], _q([16, 16], 0.02, 0),
                       _binary_options("ADD", 1))
    a = np.arange(-128, 128, 16, dtype=np.int8).reshape(16, 1)
    b = np.arange(-127, 128, 16, dtype=np.int8).reshape(1, 16)
    _verify(model, tmp_path / "a", [[a, b]], board=QEMU_BOARD)


# ---------------------------------------------------------------------------
# unsupported variants


def _graph(kind: str, ins: list[Tensor], out: Tensor, options: dict | None = None) -> tuple[LowerContext, Op]:
    tensors = ins + [out]
    for i, t in enumerate(tensors):
        t.index = i
    op = Op(index=0, kind=kind, inputs=list(range(len(ins))), outputs=[len(ins)], options=options or {})
    g = Graph(name="m", tensors=tensors, ops=[op], inputs=[i for i, t in enumerate(ins) if not t.is_const],
              outputs=[len(ins)])
    return LowerContext(g), op


def _t(shape, dtype="int8", scale=0.1, zp=0, data=None) -> Tensor:
    quant = None if scale is None else Quant(np.asarray([scale], np.float32), np.asarray([zp], np.int64))
    return Tensor(index=0, name="x", shape=tuple(shape), dtype=dtype, quant=quant, data=data)


@pytest.mark.parametrize("kind,ins,out,options,message", [
    ("ADD", [_t([4]), _t([4])], _t([4]), {"activation": "TANH"}, "fused activation is TANH"),
    ("HARD_SWISH", [_t([4], "int16")], _t([4], "int16"), {}, "int16 HARD_SWISH .* which TFLM does not run either"),
    ("ADD", [_t([1, 2, 3, 4, 5]), _t([5])], _t([1, 2, 3, 4, 5]), {}, "rank 5"),
    ("ADD", [_t([4, 3]), _t([2, 3])], _t([4, 3]), {}, "does not broadcast"),
    ("ADD", [_t([4]), _t([4])], _t([4], scale=1e-9), {}, "too small"),
    ("MUL", [_t([4], data=np.zeros(4, np.int8)), _t([4], data=np.zeros(4, np.int8))], _t([4]), {}, "constants"),
    ("QUANTIZE", [_t([4], "float32", scale=None)], _t([4], "int16", zp=5), {}, "of type int16 has zero point 5"),
    ("QUANTIZE", [_t([4], "int16")], _t([4], "int32"), {}, "is int32; allowed is int8/int16"),
    ("L2_NORMALIZATION", [_t([2, 4], "int16")], _t([2, 4], "int16"), {},
     "int16 L2_NORMALIZATION .* which TFLM does not run either"),
    ("DEQUANTIZE", [_t([4], "int8")], _t([4], "float16", scale=None), {}, "float16"),
    ("LEAKY_RELU", [_t([4], "float32", scale=None)], _t([4], "float32", scale=None), {"alpha": float("inf")},
     "alpha is inf"),
    ("RSQRT", [_t([4], "float32", scale=None)], _t([4], "float32", scale=None), {},
     "float32 RSQRT is not supported yet"),
    ("RELU", [_t([4], "float32", scale=None)], _t([4]), {}, "mixes int8 and float32"),
    ("RELU6", [_t([4])], _t([5]), {}, "values"),
    ("LEAKY_RELU", [_t([4])], _t([4], scale=0.0), {"alpha": 0.2}, "scale"),
])
def test_unsupported(kind, ins, out, options, message) -> None:
    ctx, op = _graph(kind, ins, out, options)
    with pytest.raises(TinymlError, match=message) as err:
        validate_operators(ctx.graph)
        lower_op(ctx, op)
    assert f"operator 0 ({kind})" in str(err.value)
    assert "\n" not in str(err.value)


def test_unsupported_per_channel_input() -> None:
    t = _t([2, 4])
    t.quant = Quant(np.asarray([0.1, 0.2], np.float32), np.asarray([0, 0], np.int64), axis=0)
    ctx, op = _graph("ADD", [t, _t([2, 4])], _t([2, 4]))
    with pytest.raises(TinymlError, match="per-tensor"):
        validate_operators(ctx.graph)
        lower_op(ctx, op)


def test_unsupported_from_tflite(tmp_path: Path) -> None:
    """The same clean error through the compiler, from a .tflite with an int16 L2_NORMALIZATION (which TFLM
    refuses too: its Prepare takes float32 and int8 only)."""
    from tinyml.compiler import build_model

    model = tiny_model("L2_NORMALIZATION", [_q([2, 8], 0.1, 0, dtype="int16")], _q([2, 8], 0.1, 0, dtype="int16"))
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    with pytest.raises(TinymlError,
                       match=r"operator 0 \(L2_NORMALIZATION\) computes on int16, which TFLM does not run either"):
        build_model(path, "host")
