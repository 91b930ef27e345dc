"""The whole-model checks (operator kinds, activation types, tensors, execution order), the operand and option
checks every row shares, and :data:`RULES` with the entry points that apply it."""

from __future__ import annotations

import math

import numpy as np

from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph.ir import DTYPE_BYTES, NUMPY_DTYPES, Graph, Op, Tensor
from tinyml.graph.validate.base import Operand, Rule, ZP_RANGE, _fail, _op, _ten, _unsupported, _unsupported_model
from tinyml.graph.validate.core import _rule_table
from tinyml.graph.validate.movement import _movement_rules
from tinyml.graph.validate.arith import _arith_rule_table
from tinyml.graph.validate.convlike import _conv_like_rules
from tinyml.graph.validate.sequence import _sequence_rules
from tinyml.graph.validate.floats import FLOAT_RULES, _check_no_mix, _finite_constants, float_operator
from tinyml.graph.validate.int16 import INT16_RULES, int16_operator, int16_refusal
from tinyml.graph.validate.lstm import _lstm_rules

# ---------------------------------------------------------------------------
# The generic part: tensors, operands, options.


def _check_tensor_quant(graph: Graph, t: Tensor, where: str) -> None:
    """Every scale positive and finite, every zero point within its type's range."""
    q = t.quant
    if q is None:
        return
    bad = [float(s) for s in q.scale.reshape(-1) if not (math.isfinite(float(s)) and float(s) > 0.0)]
    if bad:
        raise _fail(graph, f"{_ten(t)} ({where}) has quantization scale {bad[0]:g}; allowed is a positive "
                           "finite number")
    lo, hi = ZP_RANGE.get(t.dtype, (0, 0))
    zps = q.zero_point.reshape(-1)
    out = [int(z) for z in zps if not lo <= int(z) <= hi]
    if out:
        raise _fail(graph, f"{_ten(t)} ({where}) of type {t.dtype} has zero point {out[0]}; allowed is "
                           f"[{lo}, {hi}]")


def _check_operand(graph: Graph, op: Op, spec: Operand, idx: int, role: str) -> None:
    if idx < 0:
        if spec.optional:
            return
        raise _fail(graph, f"{_op(op)}: {role} ({spec.name}) is -1 (absent); it is required")
    t = graph.tensors[idx]
    where = f"{role} ({spec.name}) of {_op(op)}"
    if t.dtype not in spec.dtypes:
        raise _fail(graph, f"{_ten(t)} ({where}) is {t.dtype}; allowed is {'/'.join(spec.dtypes)}")
    if spec.kind == "const" and not t.is_const:
        raise _fail(graph, f"{_ten(t)} ({where}) has no data; it must be a constant tensor")
    if spec.kind == "act" and t.is_const:
        raise _fail(graph, f"{_ten(t)} ({where}) is a constant; allowed is a tensor computed at run time")
    if spec.quant == "none":
        _check_tensor_quant(graph, t, where)
        return
    q = t.quant
    if q is None and spec.quant == "bias":
        return  # TFLM does not read an int32 bias's quantization (FULLY_CONNECTED: see _weighted_multipliers)
    if q is None:
        raise _fail(graph, f"{_ten(t)} ({where}) has no quantization parameters; allowed is a quantized tensor "
                           "(quantize the model to int8)")
    _check_tensor_quant(graph, t, where)
    if spec.quant == "int8" and q.per_channel:
        raise _fail(graph, f"{_ten(t)} ({where}) has {q.scale.size} per-channel scales; allowed is one "
                           "(per-tensor quantization)")
    if spec.quant in ("weights", "bias") and np.any(q.zero_point != 0):
        raise _fail(graph, f"{_ten(t)} ({where}) has zero point {int(q.zero_point[q.zero_point != 0][0])}; "
                           "allowed is 0 (TFLM needs symmetric weights and bias)")


def _check_operands(graph: Graph, op: Op, rule: Rule) -> None:
    specs_in = list(rule.inputs)
    n_in = len(op.inputs)
    lo = sum(1 for s in specs_in if not s.optional)
    if rule.repeat_last:
        if n_in < lo:
            raise _fail(graph, f"{_op(op)}: has {n_in} inputs; allowed is at least {lo}")
        specs_in += [specs_in[-1]] * (n_in - len(specs_in))
    elif not lo <= n_in <= len(specs_in):
        raise _fail(graph, f"{_op(op)}: has {n_in} inputs; allowed is {lo}" +
                    (f" to {len(specs_in)}" if len(specs_in) != lo else ""))
    specs_out = list(rule.outputs)
    if rule.repeat_last_output:
        if len(op.outputs) < len(specs_out):
            raise _fail(graph, f"{_op(op)}: has {len(op.outputs)} outputs; allowed is at least {len(specs_out)}")
        specs_out += [specs_out[-1]] * (len(op.outputs) - len(specs_out))
    elif len(op.outputs) != len(specs_out):
        raise _fail(graph, f"{_op(op)}: has {len(op.outputs)} outputs; allowed is {len(specs_out)}")
    for pos, (spec, idx) in enumerate(zip(specs_in, op.inputs)):
        _check_operand(graph, op, spec, idx, f"input {pos}")
    for pos, (spec, idx) in enumerate(zip(specs_out, op.outputs)):
        _check_operand(graph, op, spec, idx, f"output {pos}")


def _check_options(graph: Graph, op: Op, rule: Rule) -> None:
    for name, (lo, hi) in rule.ints.items():
        v = op.options.get(name)
        if v is None or not lo <= int(v) <= hi:
            raise _fail(graph, f"{_op(op)}: {name} is {v}; allowed is [{lo}, {hi}]")
    act = op.options.get("activation", "NONE")
    if act not in rule.activations:
        raise _fail(graph, f"{_op(op)}: fused activation is {act}; allowed is {', '.join(rule.activations)}")
    if rule.fixed_output is not None:
        out = graph.tensors[op.outputs[0]]
        scale, zp = rule.fixed_output
        if zp is not None and out.quant.zp != zp:
            raise _fail(graph, f"{_op(op)}: output {_ten(out)} has zero point {out.quant.zp}; allowed is {zp} "
                               "(as TFLM requires)")
        if scale is not None and np.float32(out.quant.s) != np.float32(scale):
            raise _fail(graph, f"{_op(op)}: output {_ten(out)} has scale {out.quant.s:g}; allowed is {scale:g} "
                               "(as TFLM requires)")


# Operators that keep state between invocations: in variable tensors (the sequence operators) or in
# resource variables (VAR_HANDLE and the operators around it).
STATEFUL_OPS = frozenset({
    "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_LSTM",
    "BIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "RNN", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE",
})
ETHOS_U = "CUSTOM:ethos-u"  # the operator Vela puts in place of what it compiled for the Ethos-U NPU


def unsupported_reason(graph: Graph, op: Op, list_supported: bool = True) -> str | None:
    """Why tinyml cannot run ``op`` because of its kind (None when RULES has a row for it): a builtin by name,
    a custom operator by its custom name, Vela's Ethos-U operator, and whether the operator keeps state."""
    if op.kind in RULES or op.kind in FLOAT_RULES:  # a float-only kind (EXP) has no int8 row
        return None
    if op.kind == ETHOS_U:
        return (f"{_op(op)}: the model is compiled for Ethos-U (this is Vela's 'ethos-u' operator, an NPU "
                "command stream); give the model before Vela")
    if op.kind.startswith("CUSTOM:"):
        return (f"operator {op.index} is the custom operator '{op.kind[len('CUSTOM:'):]}', which tinyml does not "
                "implement (TFLM runs it only with a kernel registered under that name)")
    if op.kind.startswith("UNKNOWN_BUILTIN_"):
        return (f"operator {op.index} has builtin operator code {op.kind[len('UNKNOWN_BUILTIN_'):]}, which this "
                "TFLite schema does not know; re-export the model or give a newer tinyml")
    state = [t for t in op.inputs if t >= 0 and graph.tensors[t].variable]
    why = ""
    if state:
        t = graph.tensors[state[0]]
        why = f" (it keeps state between invocations in variable tensor {t.index} '{t.name}')"
    elif op.kind in STATEFUL_OPS:
        why = " (it keeps state between invocations)"
    supported = f"; supported operators: {', '.join(sorted(set(RULES) | set(FLOAT_RULES)))}" if list_supported else ""
    return f"operator {op.index} is {op.kind}, which is not supported{why}{supported}"


def _check_kinds(graph: Graph) -> None:
    """Every operator of a kind in RULES; else the first one that is not, named, and how many more."""
    bad = [(op, why) for op in graph.ops if (why := unsupported_reason(graph, op)) is not None]
    if not bad:
        return
    ethos = [b for b in bad if b[0].kind == ETHOS_U]
    op, why = (ethos or bad)[0]
    others = sorted({o.kind for o, _ in bad if o is not op})
    if others:
        why += (f"; {len(bad) - 1} more operator{'s' if len(bad) > 2 else ''} not supported "
                f"({', '.join(others[:6])}{', ...' if len(others) > 6 else ''}; tinyml inspect lists them)")
    raise _unsupported_model(graph, why)


def _check_tensors(graph: Graph, tensors: list[int]) -> None:
    """Types validation knows and no empty dimension (every operator check relies on both)."""
    for i in tensors:
        t = graph.tensors[i]
        if t.dtype not in DTYPE_BYTES:
            raise _fail(graph, f"{_ten(t)} is of type {t.dtype}; allowed are "
                               f"{', '.join(sorted(NUMPY_DTYPES))}")
        if 0 in t.shape:
            raise _fail(graph, f"{_ten(t)} has an empty shape {list(t.shape)}; allowed are dimensions of at least "
                               "1; re-export the model")


def _check_activation_types(graph: Graph) -> None:
    """An int8 model, a float32 model (float32 operators, FLOAT_RULES), an int16x8 model (16-bit activations,
    INT16_RULES) or a mix (QUANTIZE and DEQUANTIZE between them): a dynamic-range model (float32 activations,
    int8 weights) is named as such, and so are the int16 operators INT16_RULES does not cover."""
    kinds = sorted({t.dtype for t in graph.tensors if not t.is_const})
    half = [graph.tensors[i] for op in graph.ops if op.kind == "DEQUANTIZE" for i in op.inputs[:1]
            if 0 <= i < len(graph.tensors) and graph.tensors[i].dtype == "float16"]
    if half:
        others = f" and {len(half) - 1} more" if len(half) > 1 else ""
        raise _fail(graph, f"the model has float16 weights ({_ten(half[0])}{others}, dequantized to float32 at run "
                           "time: float16 quantization), which TFLM does not run (its DEQUANTIZE takes int8, int16 "
                           "and uint8); convert it with float32 weights, or quantize it to int8 (tinyml.train.quantize)")
    if "int16" in kinds:
        _check_int16_operators(graph)
    if "int8" in kinds or "int16" in kinds:
        return
    hybrid = any(t.dtype == "int8" and t.is_const for t in graph.tensors)
    if "float32" in kinds and not hybrid:
        return
    if "float32" in kinds and hybrid:
        what = "float32 activations with int8 weights (dynamic-range quantization)"
    else:
        what = f"its activations are {'/'.join(kinds)}"
    raise _fail(graph, f"not an int8 or float32 model: {what}; quantize it with full-integer post-training quantization "
                       "(tinyml.train.quantize)")


def _check_int16_operators(graph: Graph) -> None:
    """Every operator on 16-bit activations (int16x8 quantization) of a kind INT16_RULES covers; else the first
    one that is not, named, and the kinds of the others."""
    bad = [op for op in graph.ops if op.kind in RULES and op.kind not in INT16_RULES and int16_operator(graph, op)]
    if not bad:
        return
    kinds = sorted({op.kind for op in bad[1:]})
    more = (f" ({len(bad) - 1} more such operator{'s' if len(bad) > 2 else ''}: {', '.join(kinds)})"
            if len(bad) > 1 else "")
    raise _unsupported_model(graph, f"the model has 16-bit activations (int16x8 quantization) and {_op(bad[0])} "
                                    f"computes on int16, {int16_refusal(bad[0].kind)}{more}; int16 operators "
                                    f"supported: {', '.join(sorted(INT16_RULES))}; quantize the model with int8 "
                                    "activations (full-integer post-training quantization, "
                                    "tinyml.train.quantize)")


def _check_intermediates(graph: Graph) -> None:
    """An operator's intermediate tensors empty and of a type of known size (TFLM's allocator refuses any
    other)."""
    for op in graph.ops:
        for t in op.intermediates:
            ten = graph.tensors[t]
            if ten.nbytes or ten.dtype not in DTYPE_BYTES:
                raise _fail(graph, f"{_op(op)} has intermediate {_ten(ten)} of shape {list(ten.shape)} and type "
                                   f"{ten.dtype}; allowed is an empty tensor of a numeric type (TFLM allocates "
                                   "no other intermediate tensor); re-export the model")


def _check_order(graph: Graph) -> None:
    """Every tensor an operator reads is an input, a constant or written by an earlier operator; a variable
    tensor read before any operator writes it is state (TFLM keeps it between invocations)."""
    for op in graph.ops:
        for t in op.inputs + op.outputs:
            if t >= 0 and graph.tensors[t].variable and graph.tensors[t].is_const:
                raise _fail(graph, f"{_op(op)} uses {_ten(graph.tensors[t])}, a variable tensor (state) that "
                                   "also has constant data; TFLM resets state in place, so it cannot live in "
                                   "the constant data; re-export the model")
    produced = {t for op in graph.ops for t in op.outputs}
    for t in graph.outputs:
        if t not in produced and t not in graph.inputs:
            raise _fail(graph, f"model output tensor {t} is not produced by any operator")
    available = set(graph.inputs) | {t.index for t in graph.tensors if t.is_const}
    state = _check_state(graph, produced)
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0 and t not in available and t not in state:
                ten = graph.tensors[t]
                if ten.variable:
                    where = "a subgraph input that is " if t in graph.state_inputs else ""
                    raise _unsupported(graph, op, f"reads {where}variable tensor {t} ('{ten.name}'), state that "
                                                  "TFLM keeps between invocations; tinyml does not keep state "
                                                  "between runs")
                raise _fail(graph, f"{_op(op)} reads tensor {t} before any operator writes it; the operators "
                                   "are not in execution order")
        for t in op.outputs:
            if graph.tensors[t].is_const:
                raise _fail(graph, f"{_op(op)} writes constant tensor {t}")
            if t in available:
                # a kernel would write over what it (or a later operator) reads: copies through memcpy
                # would overlap (undefined in C), and the values would not be TFLM's
                raise _fail(graph, f"{_op(op)} writes tensor {t}, which is already a model input or an "
                                   "operator's output; allowed is one writer per tensor")
            available.add(t)


def _check_state(graph: Graph, produced: set[int]) -> set[int]:
    """The state tensors the operators keep between invocations: a variable tensor that no operator writes,
    read at an input position its operator's row declares as state (``Rule.state_inputs``), by that operator
    alone and not a model output (the kernel updates it in place).  A variable tensor read elsewhere is left
    to _check_order, which names it."""
    state: set[int] = set()
    readers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for t in {t for t in op.inputs if t >= 0}:
            readers.setdefault(t, []).append(op)
    for op in graph.ops:
        rule = RULES.get(op.kind)
        for p in rule.state_inputs if rule is not None else ():
            if p >= len(op.inputs) or op.inputs[p] < 0:
                continue
            t = graph.tensors[op.inputs[p]]
            if not t.variable or t.index in produced or t.index in graph.inputs:
                raise _fail(graph, f"{_op(op)}: input {p} ({_ten(t)}) holds the operator's state, so it must be a "
                                   "variable tensor that no operator writes and the caller does not give (TFLM "
                                   "keeps it between invocations); re-export the model")
            if len(readers[t.index]) > 1 or op.inputs.count(t.index) > 1 or t.index in graph.outputs:
                raise _unsupported(graph, op, f"its state {_ten(t)} is also read elsewhere (by another operator, "
                                              "at another input or as a model output); tinyml keeps state that "
                                              "one operator reads and updates")
            state.add(t.index)
    return state


def _check_model(graph: Graph) -> None:
    """Whole-model checks that give a better message than any single operator could, most telling first:
    an operator we do not run (Ethos-U, custom, builtin), then tensor types, then the order of operators."""
    if not graph.ops:
        raise _fail(graph, "the model has no operators")
    _check_kinds(graph)
    _check_state(graph, {t for op in graph.ops for t in op.outputs})  # before the types: a state is no activation
    used = sorted(set(graph.inputs) | set(graph.outputs) | {t for op in graph.ops for t in op.inputs + op.outputs
                                                            if t >= 0})
    _check_activation_types(graph)
    _check_tensors(graph, used)
    for i in set(graph.inputs) | set(graph.outputs):
        t = graph.tensors[i]
        if t.dtype not in NUMPY_DTYPES:
            raise _fail(graph, f"{_ten(t)} (a model input or output) is of type {t.dtype}; allowed are "
                               f"{', '.join(sorted(NUMPY_DTYPES))}")
    _check_intermediates(graph)
    _check_order(graph)
    if not graph.inputs:
        raise _unsupported_model(graph, f"every input of the model is a variable tensor (state TFLM keeps "
                                        f"between invocations: tensors {graph.state_inputs}); tinyml needs an "
                                        "input a caller gives and does not keep state between runs")


def op_problem(graph: Graph, op: Op) -> str | None:
    """What stops ``op`` alone from compiling (for tinyml inspect's table), or None: its kind, the types and
    shapes of its tensors, then its row of RULES."""
    why = unsupported_reason(graph, op, list_supported=False)
    if why is not None:
        return why
    try:
        _check_tensors(graph, [t for t in op.inputs + op.outputs if t >= 0])
        validate_operator(graph, op)
    except (ModelError, UnsupportedError) as e:
        msg = str(e)
        return msg[len(graph.source) + 2:] if graph.source and msg.startswith(f"{graph.source}: ") else msg
    return None


def validate_graph(graph: Graph) -> None:
    """Raise ModelError or UnsupportedError (one line) unless every operator is of a kind in RULES and the
    model as a whole and every operator meet their checks."""
    _check_model(graph)
    validate_operators(graph)


def validate_operators(graph: Graph) -> None:
    """The per-operator part of validate_graph: each operator against its row of RULES."""
    for op in graph.ops:
        validate_operator(graph, op)


def validate_operator(graph: Graph, op: Op) -> None:
    """``op`` against its row of RULES (nothing for a kind without one: _check_kinds names it); a kind TFLM
    runs in float32 only (EXP) against its FLOAT_RULES row, and refused on other types."""
    rule = RULES.get(op.kind)
    if rule is None and op.kind in FLOAT_RULES and not float_operator(graph, op):
        dtype = graph.tensors[op.outputs[0]].dtype if op.outputs and op.outputs[0] >= 0 else "non-float"
        raise _unsupported(graph, op, f"{dtype} {op.kind} is not supported: TFLM runs {op.kind} in float32 only; "
                                      f"keep {op.kind} in float32 (QUANTIZE and DEQUANTIZE around it)")
    rule = rule or FLOAT_RULES.get(op.kind)
    if rule is None:
        return
    _check_no_mix(graph, op)
    if int16_operator(graph, op) and not float_operator(graph, op):
        rule = INT16_RULES.get(op.kind)
        if rule is None:
            raise _unsupported(graph, op, f"int16 {op.kind} (16-bit activations, int16x8 quantization), "
                                          f"{int16_refusal(op.kind)}; int16 operators supported: "
                                          f"{', '.join(sorted(INT16_RULES))}; quantize the model with int8 "
                                          "activations (tinyml.train.quantize)")
        _check_operands(graph, op, rule)
    elif float_operator(graph, op):
        rule = FLOAT_RULES.get(op.kind)
        if rule is None:
            raise _unsupported(graph, op, f"float32 {op.kind} is not supported yet; float32 operators supported: "
                                          f"{', '.join(sorted(FLOAT_RULES))}; quantize the model to int8 "
                                          "(tinyml.train.quantize)")
        _check_operands(graph, op, rule)
        _finite_constants(graph, op)
    else:
        _check_operands(graph, op, rule)
    _check_options(graph, op, rule)
    for check in rule.checks:
        check(graph, op)


def _all_rules() -> dict[str, Rule]:
    rules = _rule_table()
    return {**rules, **_movement_rules(), **_arith_rule_table(rules["PAD"]), **_conv_like_rules(),
            **_lstm_rules(), **_sequence_rules()}


RULES: dict[str, Rule] = _all_rules()
