"""The float32 rows (:data:`FLOAT_RULES`): which operators run in float and what their float kernels need."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tinyml.graph.ir import Graph, Op
from tinyml.graph.validate.base import (CONVERTERS, INT8_ACTIVATIONS, MEAN_MAX_VALUES, Operand, Rule, _fail, _op, _ten,
                                        _unsupported)
from tinyml.graph.validate.core import (_both_constant, _broadcast_shapes, _concat_inputs, _concat_shapes,
                                        _conv_shapes, _depthwise_shapes, _fc_shapes, _mean_shapes, _pad_shapes,
                                        _pool_shapes, _rule_table, _same_shape, _same_size, _shape_error, _t,
                                        _window_extent)
from tinyml.graph.validate.lstm import _float_lstm_rules
from tinyml.graph.validate.movement import _movement_rules
from tinyml.graph.validate.sequence import _float_sequence_rules

# ---------------------------------------------------------------------------
# float32 operators: a second row per operator kind whose float kernel we lower (codegen/ops/float_ops.py).
# TFLM's float kernels read no quantization, so none is required; every operand is float32 (int8 and float32
# do not mix inside an operator: TFLM's float kernels take float tensors only, and only QUANTIZE and
# DEQUANTIZE convert between the two).  The shape, window and option checks are the int8 rows' (TFLM's
# Prepare checks them for every type); the arithmetic checks (multipliers, accumulators) have no float
# counterpart.


def _float_rule_table(rules: dict[str, Rule]) -> dict[str, Rule]:
    f32 = ("float32",)
    act = Operand("input", f32, quant="none")
    either = Operand("input", f32, kind="any", quant="none")
    out = (Operand("output", f32, quant="none"),)
    weights = Operand("weights", f32, kind="const", quant="none")
    bias = Operand("bias", f32, kind="const", optional=True, quant="none")
    conv, dw, fc = rules["CONV_2D"], rules["DEPTHWISE_CONV_2D"], rules["FULLY_CONNECTED"]
    pool_checks = (_pool_shapes, _window_extent)
    pad = Rule(inputs=(act, Operand("paddings", ("int32",), kind="const", quant="none"),
                       Operand("constant_values", f32, kind="any", optional=True, quant="none")), outputs=out,
               checks=(_pad_shapes, _float_pad_value))
    return {
        "CONV_2D": Rule(inputs=(act, weights, bias), outputs=out, ints=conv.ints, activations=INT8_ACTIVATIONS,
                        checks=(_conv_shapes, _window_extent)),
        # TFLM's DEPTHWISE_CONV_2D needs its bias (see the int8 row).
        "DEPTHWISE_CONV_2D": Rule(inputs=(act, Operand("weights", f32, kind="const", quant="none", axis=3),
                                          Operand("bias", f32, kind="const", quant="none")), outputs=out,
                                  ints=dw.ints, activations=INT8_ACTIVATIONS, checks=(_depthwise_shapes, _window_extent)),
        "FULLY_CONNECTED": Rule(inputs=(act, weights, bias), outputs=out, ints=fc.ints, activations=INT8_ACTIVATIONS,
                                checks=(_fc_shapes,)),
        "AVERAGE_POOL_2D": Rule(inputs=(act,), outputs=out, ints=rules["AVERAGE_POOL_2D"].ints,
                                activations=INT8_ACTIVATIONS, checks=pool_checks),
        "MAX_POOL_2D": Rule(inputs=(act,), outputs=out, ints=rules["MAX_POOL_2D"].ints,
                            activations=INT8_ACTIVATIONS, checks=pool_checks),
        "MEAN": Rule(inputs=(act, Operand("axis", ("int32",), kind="const", quant="none")), outputs=out,
                     checks=(_mean_shapes, _mean_size)),
        "ADD": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes)),
        "MUL": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes)),
        "SUB": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes)),
        # MAXIMUM, MINIMUM, SQUARED_DIFFERENCE and PRELU have no fused activation; all broadcast up to 4-D in
        # our kernel (above: UnsupportedError, as for int8).
        "MAXIMUM": Rule(inputs=(either, either), outputs=out, checks=(_both_constant, _broadcast_shapes)),
        "MINIMUM": Rule(inputs=(either, either), outputs=out, checks=(_both_constant, _broadcast_shapes)),
        "SQUARED_DIFFERENCE": Rule(inputs=(either, either), outputs=out, checks=(_both_constant, _broadcast_shapes)),
        "PRELU": Rule(inputs=(either, Operand("alpha", f32, kind="any", quant="none")), outputs=out,
                      checks=(_both_constant, _broadcast_shapes)),
        "CONCATENATION": Rule(inputs=(either,), outputs=out, repeat_last=True,
                              checks=(_concat_inputs, _concat_shapes)),
        "RESHAPE": rules["RESHAPE"],
        "SQUEEZE": rules["SQUEEZE"],
        "PAD": pad,
        "PADV2": pad,
        # SOFTMAX takes any beta in float (TFLM: exp((x - max) * beta)).
        "SOFTMAX": Rule(inputs=(act,), outputs=out, checks=(_same_shape, _finite_beta)),
        "LOGISTIC": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        "TANH": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        "RELU": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        "RELU6": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        "LEAKY_RELU": Rule(inputs=(act,), outputs=out, checks=(_same_size, _finite_alpha)),
        "HARD_SWISH": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        # data movement: the int8 rows with float32 data (TFLM's Prepares check the same for every type)
        **{kind: _float_row(rule) for kind, rule in _movement_rules().items()},
        # EXP: float32 only in TFLM (exp.cc's Prepare refuses other types), an output of the input's shape.
        "EXP": Rule(inputs=(act,), outputs=out, checks=(_same_shape,)),
    }


def _float_row(rule: Rule) -> Rule:
    """``rule`` with float32 in place of its int8 operands."""
    def f(o: Operand) -> Operand:
        return dataclasses.replace(o, dtypes=("float32",), quant="none") if o.dtypes == ("int8",) else o

    return dataclasses.replace(rule, inputs=tuple(f(o) for o in rule.inputs), outputs=tuple(f(o) for o in rule.outputs))


def float_operator(graph: Graph, op: Op) -> bool:
    """Whether ``op`` computes in float32 (its first output is float32; QUANTIZE and DEQUANTIZE, which convert,
    are int8 operators), so that FLOAT_RULES and the float lowerings apply."""
    return (op.kind not in CONVERTERS and bool(op.outputs) and 0 <= op.outputs[0] < len(graph.tensors)
            and graph.tensors[op.outputs[0]].dtype == "float32")


def _mean_size(graph: Graph, op: Op) -> None:
    inp = _t(graph, op, 0)
    if not 1 <= inp.size <= MEAN_MAX_VALUES:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has {inp.size} values; allowed is 1 to {MEAN_MAX_VALUES}")


def _float_pad_value(graph: Graph, op: Op) -> None:
    """TFLM PadPrepare with a constant_values input: one value; we bake it in, so it must be a constant."""
    value = _t(graph, op, 2)
    if value is None:
        return
    if value.size != 1:
        raise _shape_error(graph, op, f"constant_values {_ten(value)} has {value.size} values; allowed is 1 (as "
                                      "TFLM requires)")
    if not value.is_const:
        raise _unsupported(graph, op, f"constant_values {_ten(value)} is computed at run time; supported is a "
                                      "constant padding value")


def _finite_constants(graph: Graph, op: Op) -> None:
    """The float32 constants of ``op`` (weights, bias, a padding value, a constant operand) are finite: the
    generated C holds them as float literals, which have no NaN or infinity."""
    for t in (graph.tensors[i] for i in op.inputs if i >= 0):
        if t.is_const and t.dtype == "float32" and not np.all(np.isfinite(t.data)):
            raise _unsupported(graph, op, f"constant {_ten(t)} holds a NaN or an infinity; supported are finite "
                                          "float32 constants")


def _finite_beta(graph: Graph, op: Op) -> None:
    beta = float(op.options.get("beta", 1.0))
    if not math.isfinite(beta):
        raise _fail(graph, f"{_op(op)}: beta is {beta}; allowed is a finite number")


def _finite_alpha(graph: Graph, op: Op) -> None:
    alpha = float(op.options.get("alpha", 0.0))
    if not math.isfinite(alpha):
        raise _fail(graph, f"{_op(op)}: alpha is {alpha}; allowed is a finite number")


def _check_no_mix(graph: Graph, op: Op) -> None:
    """int8 and float32 data do not meet inside an operator other than QUANTIZE and DEQUANTIZE (TFLM's kernels
    take one type; a float operator with int8 weights is dynamic-range quantization, which TFLM does not run)."""
    if op.kind in CONVERTERS:
        return
    ts = [graph.tensors[t] for t in op.inputs + op.outputs if 0 <= t < len(graph.tensors)]
    f = next((t for t in ts if t.dtype == "float32"), None)
    q = next((t for t in ts if t.dtype == "int8"), None)
    if f is not None and q is not None:
        raise _fail(graph, f"{_op(op)} mixes int8 and float32: {_ten(q)} is int8 and {_ten(f)} is float32; "
                           "allowed is one type in an operator (only QUANTIZE and DEQUANTIZE convert between "
                           "them); convert the model again, all float32 or quantized to int8")


FLOAT_RULES: dict[str, Rule] = {**_float_rule_table(_rule_table()), **_float_sequence_rules(),
                                 **_float_lstm_rules()}
