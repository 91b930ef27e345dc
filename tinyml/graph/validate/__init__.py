"""Validation: every number of an imported Graph range-checked, in one place, before lowering.

The importer checks structure (indices in range, shapes bounded, buffers of
the right size).  This module checks meaning: for every operator kind we
lower, one table row (:data:`RULES`) states what TFLM requires and what our
int32 arithmetic needs:

- the operands: how many, which are optional (-1 allowed only there), their
  types, whether they are constants, and how they are quantized;
- the options: integer ranges (strides, dilations, filter sizes), fused
  activations, paddings;
- fixed output quantization where TFLM fixes it (SOFTMAX, LOGISTIC);
- the relations between them (``checks``): shapes against each other,
  multipliers that QuantizeMultiplier represents with a shift the C can
  apply, and accumulators that cannot overflow int32 for any input.

Lowering (tinyml.codegen) may trust what passes here: it raises nothing.
Every failure is a :class:`ModelError` of one line naming the operator
(index and kind) or the tensor (index and name), the field, the value and
the allowed range.  A model TFLM runs but our kernels do not cover (the
table's comments name each case) is refused here too, with an
:class:`UnsupportedError` in the same form.

Before any row, the whole model is checked, most telling reason first: an
operator of a kind without a row (Vela's Ethos-U operator, a custom
operator by its name, a builtin by name and index, and whether it keeps
state), then the activation types (float32, dynamic-range, and int16 operators without a row), then
the tensors' types and shapes, then the order of the operators (a variable
tensor read before any operator writes it is state TFLM keeps between
invocations: tinyml keeps it where the operator's row declares that input
as state, ``Rule.state_inputs``, and refuses it anywhere else).

The package holds one module per block of rows, each with the checks only its rows use:

- ``base``: the row types (:class:`Operand`, :class:`Rule`), limits, messages and the fixed-point
  arithmetic the checks share;
- ``core``: convolutions, fully connected, pooling, MEAN, ADD, MUL, CONCATENATION, reshapes, PAD,
  the activations and QUANTIZE/DEQUANTIZE, with the relation checks the other blocks reuse;
- ``movement``: TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK, DEPTH_TO_SPACE,
  SPACE_TO_DEPTH;
- ``arith``: SUB, MAXIMUM, MINIMUM, PADV2, SQUARED_DIFFERENCE, PRELU, ARG_MAX, ARG_MIN, RSQRT;
- ``convlike``: TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, BATCH_MATMUL,
  L2_NORMALIZATION;
- ``floats``: the float32 rows (:data:`FLOAT_RULES`);
- ``sequence``: the operators that keep state between invocations (SVDF), int8 and float32 rows;
- ``int16``: the rows of the operators on 16-bit activations (:data:`INT16_RULES`, int16x8 models);
- ``int16_nonlinear``: INT16_RULES' rows of SOFTMAX, LOGISTIC, TANH and MEAN;
- ``lstm``: UNIDIRECTIONAL_SEQUENCE_LSTM (TFLM's integer LSTM: int8 activations, int16 cell state), with the
  arithmetic its Prepare derives (:func:`lstm_shape`, :func:`lstm_reals`), and its float32 row (FLOAT_RULES);
- ``model``: the whole-model checks, the operand and option checks every row shares, and
  :data:`RULES`, the union of the int8 blocks.
"""

from __future__ import annotations

from tinyml.graph.validate.base import (ADD_LEFT_SHIFT, ADD_LEFT_SHIFT_INT16, BROADCAST_MAX_RANK, CONVERTERS,
                                        PAD_MAX_RANK, RSQRT_SHIFT, SQUARED_DIFFERENCE_LEFT_SHIFT, Operand, Rule,
                                        add_reals, hard_swish_reals, multiplier_shift, resolve_axes, softmax_real)
from tinyml.graph.validate.movement import (SliceAxis, pack_axis, slice_axes, split_axis, strided_slice_axes,
                                            transpose_perm, unpack_axis)
from tinyml.graph.validate.arith import (arg_min_max_axis, prelu_reals, rsqrt_real, squared_difference_left_shift,
                                         squared_difference_reals)
from tinyml.graph.validate.convlike import (BATCH_MATMUL_MAX_RANK, MatMulShape, batch_matmul_shape, bilinear_axis,
                                            transpose_conv_padding)
from tinyml.graph.validate.floats import (FLOAT_RULES, float_operator)
from tinyml.graph.validate.int16 import (INT16_RULES, int16_operator, int64_accumulator)
from tinyml.graph.validate.int16_nonlinear import (sigmoid16_input, softmax16_real)
from tinyml.graph.validate.lstm import (LstmReals, LstmShape, lstm_reals, lstm_shape)
from tinyml.graph.validate.model import (RULES, op_problem, unsupported_reason, validate_graph, validate_operator,
                                         validate_operators)

__all__ = ["ADD_LEFT_SHIFT", "ADD_LEFT_SHIFT_INT16", "BROADCAST_MAX_RANK", "CONVERTERS", "PAD_MAX_RANK", "RSQRT_SHIFT",
           "SQUARED_DIFFERENCE_LEFT_SHIFT", "Operand", "Rule", "add_reals", "hard_swish_reals", "multiplier_shift",
           "resolve_axes", "softmax_real", "SliceAxis", "pack_axis", "slice_axes", "split_axis", "strided_slice_axes",
           "transpose_perm", "unpack_axis", "arg_min_max_axis", "prelu_reals", "rsqrt_real", "squared_difference_reals",
           "squared_difference_left_shift",
           "BATCH_MATMUL_MAX_RANK", "MatMulShape", "batch_matmul_shape", "bilinear_axis", "transpose_conv_padding",
           "FLOAT_RULES", "float_operator", "INT16_RULES", "int16_operator", "int64_accumulator", "RULES",
           "sigmoid16_input", "softmax16_real",
           "op_problem", "unsupported_reason", "validate_graph",
           "validate_operator", "validate_operators", "LstmReals", "LstmShape", "lstm_reals", "lstm_shape"]
