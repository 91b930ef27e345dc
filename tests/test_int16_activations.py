"""int16 RELU, RELU6, MAXIMUM and MINIMUM (codegen/ops/int16_activations.py), bit-exact with TFLM's int16 kernels,
and the int16 operators TFLM does not run either (validation's TFLM_NO_INT16), refused saying so.

On the host (gcc with ASan/UBSan), on crafted models, several operators each: RELU on every int16 value at
input/output scale ratios from 1/8 to 64 (multipliers with right and left shifts); RELU6 on every int16 value at
input scales whose quantized 6 is 1, 2, 12, 6000 and past 32767 (clamped); MAXIMUM and MINIMUM with broadcasting
(odd sizes, a scalar, a constant input, inputs quantized unlike each other: TFLM reads no quantization).  Under
QEMU on mps2-an386: one model of the four kinds, the planner free to run them in place.  The refusals: zero
points other than 0, a RELU6 bound past int32, and HARD_SWISH, PRELU, DEPTH_TO_SPACE, SPACE_TO_DEPTH and
L2_NORMALIZATION on int16, which the installed TFLM refuses too (checked here against it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.tflite_edit import craft_model
from tinyml.cli import main as cli_main
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.render import environment
from tinyml.codegen.variants import options
from tinyml.errors import ModelError, TinymlError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.graph.validate.int16 import TFLM_NO_INT16
from tinyml.tools.reference import run_tflm
from tinyml.tools.verify import verify_model

EVERY = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 65536)


def _t(name: str, shape: list[int], scale: float = 1e-3, zp: int = 0, data: np.ndarray | None = None
       ) -> dict[str, Any]:
    return dict(name=name, shape=shape, type="INT16", scale=[scale], zero_point=[zp], data=data)


def _unary_model(kind: str, scales: list[tuple[float, float]], shape: list[int] = [1, 65536]) -> bytes:
    """One ``kind`` operator per (input scale, output scale), each from its own input to its own output."""
    tensors = []
    for k, (s_in, s_out) in enumerate(scales):
        tensors += [_t(f"x{k}", shape, s_in), _t(f"y{k}", shape, s_out)]
    n = len(scales)
    return craft_model(tensors, [(kind, [2 * k], [2 * k + 1]) for k in range(n)],
                       inputs=[2 * k for k in range(n)], outputs=[2 * k + 1 for k in range(n)])


def _verify_every_value(model: bytes, n: int, tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    report = verify_model(path, "host", work_dir=tmp_path / "proj", inputs=[[EVERY] * n])
    assert report.ok, report.summary()


# ---------------------------------------------------------------------------
# RELU and RELU6


RELU_SCALES = [(1e-3, 1e-3), (1e-3, 8e-3), (1e-3, 7e-4), (2e-3, 1e-3), (0.64, 0.01), (3.1e-5, 1e-3)]
RELU6_SCALES = [(7.0, 7.0), (3.0, 1.0), (0.5, 0.5), (1e-3, 2e-3), (1e-4, 1e-4), (2.0 ** -12, 2.0 ** -12)]


def test_relu_on_every_int16_value(tmp_path: Path) -> None:
    """Scale ratios 1, 1/8, 1.43, 2, 64 and 0.031 (ReluQuantized's multiplier; values past 32767 saturate)."""
    _verify_every_value(_unary_model("RELU", RELU_SCALES), len(RELU_SCALES), tmp_path)


def test_relu6_on_every_int16_value(tmp_path: Path) -> None:
    """Quantized 6 of 1, 2, 12, 6000, 60000 (clamped to 32767) and 24576; the output scale is not read."""
    _verify_every_value(_unary_model("RELU6", RELU6_SCALES), len(RELU6_SCALES), tmp_path)


# ---------------------------------------------------------------------------
# MAXIMUM and MINIMUM


MINMAX = [  # input 1 shape, input 2 shape (None: a constant of input 1's shape), output shape, input 2 scale
    ([2, 3, 5], [5], [2, 3, 5], 1e-3),
    ([1, 4, 1, 3], [2, 1, 7, 1], [2, 4, 7, 3], 2e-3),
    ([7], [1], [7], 1e-3),
    ([3, 1, 9], None, [3, 1, 9], 5e-4),
    ([1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], 1e-3),
]


def _minmax_model(kind_of: Any) -> bytes:
    rng = np.random.default_rng(3)
    tensors: list[dict[str, Any]] = []
    ops, inputs, outputs = [], [], []
    for k, (a, b, out, s2) in enumerate(MINMAX):
        const = rng.integers(-32768, 32768, size=a).astype(np.int16) if b is None else None
        base = len(tensors)
        tensors += [_t(f"a{k}", a), _t(f"b{k}", a if b is None else b, s2, data=const), _t(f"y{k}", out)]
        ops.append((kind_of(k), [base, base + 1], [base + 2]))
        inputs += [base] if b is None else [base, base + 1]
        outputs.append(base + 2)
    return craft_model(tensors, ops, inputs=inputs, outputs=outputs)


@pytest.mark.parametrize("kind", ["MAXIMUM", "MINIMUM"])
def test_minmax(kind: str, tmp_path: Path) -> None:
    assert_bitexact(_minmax_model(lambda k: kind), tmp_path, board="host", samples=3)


def _chain() -> bytes:
    """RELU then RELU6 then MAXIMUM with a second input then MINIMUM with a constant."""
    rng = np.random.default_rng(5)
    shape = [1, 5, 7, 3]
    tensors = [_t("x", shape, 2e-3), _t("r", shape, 1e-3), _t("r6", shape, 1e-3), _t("z", [7, 1]),
               _t("m", shape), _t("c", [3], data=rng.integers(-3000, 3000, size=3).astype(np.int16)),
               _t("y", shape)]
    ops = [("RELU", [0], [1]), ("RELU6", [1], [2]), ("MAXIMUM", [2, 3], [4]), ("MINIMUM", [4, 5], [6])]
    return craft_model(tensors, ops, inputs=[0, 3], outputs=[6])


def test_calls_get_only_the_portable_int16_kernels() -> None:
    """On a core with DSP and MVE, each call has one variant, the portable int16 kernel (no int8 one)."""
    g = parse_tflite(_chain())
    ctx = LowerContext(graph=g, features=("dsp", "mve", "fpu"))
    calls = [lower_op(ctx, op) for op in g.ops]
    assert all(isinstance(c, KernelCall) for c in calls)
    found = [[(v.family, v.template) for v in options(ctx, c)] for c in calls if isinstance(c, KernelCall)]
    assert found == [[("portable", t)] for t in ("relu_s16", "relu6_s16", "minmax_s16", "minmax_s16")]


@pytest.mark.qemu
def test_int16_activations_cortex_m4(tmp_path: Path) -> None:
    """The chain on mps2-an386, the planner free to run it in place."""
    assert_bitexact(_chain(), tmp_path, board="mps2-an386", samples=2)


# ---------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize("kind", ["RELU", "RELU6"])
def test_zero_point_other_than_0_is_refused(kind: str) -> None:
    tensors = [_t("x", [1, 8], zp=3), _t("y", [1, 8])]
    msg = refusal(craft_model(tensors, [(kind, [0], [1])], inputs=[0], outputs=[1]), ModelError)
    assert "zero point 3" in msg, msg


def test_relu6_bound_past_int32_is_refused() -> None:
    msg = refusal(_unary_model("RELU6", [(1e-12, 1e-3)], [1, 8]), ModelError)
    assert "operator 0 (RELU6): the RELU6 bound 6 quantized with the scale 1e-12" in msg, msg


REFUSED = {  # kind: (input shapes, output shape, options)
    "HARD_SWISH": ([[1, 8]], [1, 8], None),
    "PRELU": ([[1, 8], [8]], [1, 8], None),
    "DEPTH_TO_SPACE": ([[1, 2, 3, 8]], [1, 4, 6, 2], ("DepthToSpaceOptions", {"blockSize": 2})),
    "SPACE_TO_DEPTH": ([[1, 4, 6, 2]], [1, 2, 3, 8], ("SpaceToDepthOptions", {"blockSize": 2})),
    "L2_NORMALIZATION": ([[1, 8]], [1, 8], None),
}


def _refused_model(kind: str) -> bytes:
    shapes, out, options = REFUSED[kind]
    tensors = [_t(f"x{k}", s, data=np.ones(s, np.int16) if k else None) for k, s in enumerate(shapes)]
    tensors.append(_t("y", out, 1.0 / 32768.0))
    op = (kind, list(range(len(shapes))), [len(shapes)]) + ((options,) if options else ())
    return craft_model(tensors, [op], inputs=[0], outputs=[len(shapes)])


def test_the_refused_kinds_are_tflm_s() -> None:
    assert set(REFUSED) <= set(TFLM_NO_INT16)  # the rest: tests/test_int16_rest.py


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_int16_kinds_tflm_does_not_run_are_refused_saying_so(kind: str) -> None:
    """TFLM refuses each on int16 (in its Prepare or Eval); tinyml says so, in one line."""
    model = _refused_model(kind)
    x = np.arange(np.prod(REFUSED[kind][0][0]), dtype=np.int16).reshape(REFUSED[kind][0][0])
    with pytest.raises(TinymlError):
        run_tflm(model, [x])
    msg = refusal(model, UnsupportedError)
    assert f"operator 0 ({kind}) computes on int16, which TFLM does not run either (its {kind} takes float32 " \
           "and int8 only); int16 operators supported: " in msg, msg


def test_refusal_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(_refused_model("HARD_SWISH"))
    assert cli_main(["compile", str(path), "--board", "host", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "which TFLM does not run either" in err[0] and "Traceback" not in err[0]


def test_minmax_kernels_share_their_loop() -> None:
    """minmax_s16's loop is minmax_s8's on int16_t values (one macro, kernels/tml_minmax.j2)."""
    def body(kernel: str, op: str) -> str:
        text = environment().get_template(f"kernels/{kernel}.c.j2").render(part="c", function="f", spec={"op": op})
        return text[text.index("{", text.index("TML_KERNEL")):]

    for op in ("max", "min"):
        assert body("minmax_s16", op) == body("minmax_s8", op).replace("int8_t", "int16_t")
