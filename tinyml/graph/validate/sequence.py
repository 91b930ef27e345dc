"""Rows of the operators that keep state between invocations (SVDF; lowered in codegen/ops/sequence.py).

Their state is a variable tensor at the input positions the row declares (``Rule.state_inputs``): TFLM
keeps it between invocations and resets it (``Graph.state_tensors``; the planner gives it an arena region
of its own, the generated init and NAME_reset() fill it)."""

from __future__ import annotations

import numpy as np

from tinyml.graph.ir import Graph, Op
from tinyml.graph.validate.base import (INT8_ACTIVATIONS, Operand, Rule, _check_multiplier, _f32, _fail, _op,
                                        _ten)
from tinyml.graph.validate.core import _shape_error, _t

SVDF_STATE = 4  # SVDF's input position of its activation state (TFLM kSvdfInputActivationStateTensor)
SVDF_MAX_SIZE = 1 << 24  # the largest dimension (batch, input size, filters, memory) and state we accept


def _sequence_rules() -> dict[str, Rule]:
    """The rows of SVDF (int8)."""
    return {
        # SVDF (TFLM svdf.cc, svdf_common.cc: PrepareSvdf, EvalIntegerSvdfReference): input [batch, input size],
        # weights_feature [filters, input size], weights_time [filters, memory size] (int16 with an int16
        # state, int8 with an int8 one), a bias of [units] (TFLM's int8 Prepare reads its scale: required),
        # the state [batch, memory size x filters] (a variable tensor) and the output [batch, units], units =
        # filters / rank.  TFLM reads one scale per tensor and no weight zero point.  Its integer kernel does not
        # apply the fused activation (the output is only clamped to int8): the row accepts NONE and RELU, and
        # neither we nor TFLM apply either.
        "SVDF": Rule(
            inputs=(Operand("input"), Operand("weights_feature", kind="const"),
                    Operand("weights_time", ("int16", "int8"), kind="const"),
                    Operand("bias", ("int32",), kind="const", quant="bias"),
                    Operand("activation_state", ("int16", "int8"))),
            outputs=(Operand("output"),),
            ints={"rank": (1, SVDF_MAX_SIZE)}, activations=("NONE", "RELU"), state_inputs=(SVDF_STATE,),
            checks=(svdf_shapes, _svdf_scales)),
    }


def _float_sequence_rules() -> dict[str, Rule]:
    """The float32 rows (FLOAT_RULES) of the operators with state: SVDF (TFLM EvalFloatSvdfReference), every
    operand float32, the bias required (TFLM's float kernel reads it unconditionally), the state a float32
    variable tensor; the fused activation applied (NONE, RELU, RELU6, RELU_N1_TO_1)."""
    f32 = ("float32",)
    return {
        "SVDF": Rule(
            inputs=(Operand("input", f32, quant="none"), Operand("weights_feature", f32, kind="const", quant="none"),
                    Operand("weights_time", f32, kind="const", quant="none"),
                    Operand("bias", f32, kind="const", quant="none"),
                    Operand("activation_state", f32, quant="none")),
            outputs=(Operand("output", f32, quant="none"),),
            ints={"rank": (1, SVDF_MAX_SIZE)}, activations=INT8_ACTIVATIONS, state_inputs=(SVDF_STATE,),
            checks=(svdf_shapes,)),
    }


def svdf_shapes(graph: Graph, op: Op) -> None:
    """TFLM PrepareSvdf's shapes (also the float row's): every tensor 2-D, filters a multiple of the rank."""
    inp, wf, wt, state = (_t(graph, op, i) for i in (0, 1, 2, SVDF_STATE))
    out = _t(graph, op, 0, output=True)
    b = _t(graph, op, 3)
    for what, t in (("input", inp), ("weights_feature", wf), ("weights_time", wt), ("activation_state", state),
                    ("output", out)):
        assert t is not None
        if len(t.shape) != 2:
            raise _shape_error(graph, op, f"{what} {_ten(t)} has shape {list(t.shape)}; allowed is 2-D (TFLM SVDF)")
        if max(t.shape) > SVDF_MAX_SIZE:
            raise _shape_error(graph, op, f"{what} {_ten(t)} has shape {list(t.shape)}; allowed are dimensions "
                                          f"up to {SVDF_MAX_SIZE}")
    assert inp is not None and wf is not None and wt is not None and state is not None and out is not None
    batch, size = inp.shape
    filters, memory = wt.shape
    rank = int(op.options["rank"])
    if filters % rank:
        raise _shape_error(graph, op, f"weights_time {_ten(wt)} has {filters} filters, not a multiple of the rank "
                                      f"{rank}")
    units = filters // rank
    if wf.shape != (filters, size):
        raise _shape_error(graph, op, f"weights_feature {_ten(wf)} has shape {list(wf.shape)}; allowed is "
                                      f"[{filters}, {size}] (filters, input size)")
    if state.shape != (batch, memory * filters):
        raise _shape_error(graph, op, f"activation_state {_ten(state)} has shape {list(state.shape)}; allowed is "
                                      f"[{batch}, {memory * filters}] (batch, memory size x filters)")
    if state.size > SVDF_MAX_SIZE:
        raise _shape_error(graph, op, f"activation_state {_ten(state)} has {state.size} values; allowed is up to "
                                      f"{SVDF_MAX_SIZE}")
    if out.shape != (batch, units):
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}; allowed is "
                                      f"[{batch}, {units}] (batch, filters / rank)")
    if b is not None and (len(b.shape) < 1 or b.shape[0] != units or b.size != units):
        raise _shape_error(graph, op, f"bias {_ten(b)} has shape {list(b.shape)}; allowed is [{units}] (units)")


def svdf_effective_scales(graph: Graph, op: Op) -> tuple[float, float]:
    """TFLM PrepareSvdf (int8): the feature matmul's scale into the state, input x weights_feature / state,
    and the output's, state x weights_time / output, each in double from the float32 scales (as the installed
    TFLM computes them: tests/test_svdf.py tells it from a product taken in float32)."""
    inp, wf, wt, state = (_t(graph, op, i) for i in (0, 1, 2, SVDF_STATE))
    out = _t(graph, op, 0, output=True)
    assert inp is not None and wf is not None and wt is not None and state is not None and out is not None
    return (inp.quant.s * wf.quant.s / state.quant.s, state.quant.s * wt.quant.s / out.quant.s)


def _svdf_scales(graph: Graph, op: Op) -> None:
    """TFLM's Prepare: the bias scale within 1e-5 of state x weights_time scale; the two multipliers
    QuantizeMultiplier represents with a shift of at most 30.  (The accumulators wrap as TFLM's int32 sums do
    on its targets: the kernel computes them modulo 2^32, so no bound on them is needed.)"""
    b, wt, state = _t(graph, op, 3), _t(graph, op, 2), _t(graph, op, SVDF_STATE)
    assert b is not None and wt is not None and state is not None
    bias_scale = b.quant.s if b.quant is not None else 0.0
    want = float(np.float32(state.quant.s) * np.float32(wt.quant.s))
    if not abs(_f32(bias_scale) - want) < 1e-5:
        raise _fail(graph, f"{_op(op)}: bias {_ten(b)} has scale {bias_scale:g}; allowed is within 1e-5 of "
                           f"activation_state scale x weights_time scale = {want:g} (TFLM's Prepare)")
    s1, s2 = svdf_effective_scales(graph, op)
    _check_multiplier(graph, op, "the feature scale (input x weights_feature / activation_state)", s1, 0)
    _check_multiplier(graph, op, "the output scale (activation_state x weights_time / output)", s2, 0)
    if wt.dtype != state.dtype:
        raise _fail(graph, f"{_op(op)}: weights_time {_ten(wt)} is {wt.dtype} and activation_state {_ten(state)} "
                           f"is {state.dtype}; allowed is the same type (int16 or int8), as TFLM's kernel reads both "
                           "as one")
