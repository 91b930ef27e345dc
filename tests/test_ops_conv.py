"""CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, RESHAPE and SQUEEZE with the portable kernels.

Bit-exact against TFLM over the parameter sweeps of tests/modelgen.py (kernel
sizes incl. non-square, strides, dilation, SAME/VALID, odd channel counts,
depth multipliers, fused activations, with and without bias, per-tensor and
per-channel weights): every case on the host (gcc with ASan/UBSan) and a
third of them on a Cortex-M3 under QEMU (mps2-an385, portable kernels).  The
DSP and MVE families run the same sweep in tests/test_kernels_fast.py.
"""

from __future__ import annotations

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.errors import TinymlError
from tinyml.graph.validate import validate_operators
from tinyml.graph import parse_tflite

CASES = op_cases("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "RESHAPE", "SQUEEZE")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_portable_host(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.parametrize("case", CASES[::3], ids=lambda c: c.id)
def test_portable_cortex_m3(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an385", samples=2)


def test_per_tensor_fc_uses_tflm_float_product() -> None:
    """TFLM multiplies input and weight scales in float for per-tensor FULLY_CONNECTED."""
    import numpy as np

    from tinyml.codegen.qmath import quantize_multiplier

    case = next(c for c in op_cases("FULLY_CONNECTED") if not c.per_channel)
    g = parse_tflite(build(case))
    op = next(o for o in g.ops if o.kind == "FULLY_CONNECTED")
    call = lower_op(LowerContext(graph=g), op)
    assert isinstance(call, KernelCall)
    i, w, o = (g.tensors[t].quant for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    expected = quantize_multiplier(float(np.float32(i.s) * np.float32(w.s)) / float(np.float32(o.s)))
    mult = next(c for c in call.consts if c.name == "mult")
    shift = next(c for c in call.consts if c.name == "shift")
    assert (int(mult.values[0]), int(shift.values[0])) == expected


def test_unsupported_activation_is_named() -> None:
    case = op_cases("CONV_2D")[0]
    g = parse_tflite(build(case))
    op = next(o for o in g.ops if o.kind == "CONV_2D")
    op.options["activation"] = "TANH"
    with pytest.raises(TinymlError, match=r"operator \d+ \(CONV_2D\): fused activation is TANH; allowed is NONE, "
                                          "RELU, RELU6, RELU_N1_TO_1"):
        validate_operators(g)
