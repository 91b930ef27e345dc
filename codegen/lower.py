"""Lowering: each Graph operator becomes its portable kernel call, once, with
precomputed parameters (multipliers, shifts, offsets, shapes), all plain
values.  Which variant of the kernel runs (variants.py) is the plan's choice;
specialize.py builds it.

A lowering function is marked per operator kind with ``@lowering`` (the
table and ``lower_op`` are in ``tinyml.codegen.ops``, which holds them); it
checks what it supports (raising UnsupportedError that names the operator
and its index) and returns a :class:`KernelCall`, or an :class:`Alias` for
operators that only reinterpret their input (RESHAPE, SQUEEZE).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from tinyml.graph.ir import C_TYPES, Graph, Op, Tensor


@dataclass
class ConstArray:
    """A constant array emitted into model.c (weights, bias, multipliers)."""

    name: str
    ctype: str
    values: np.ndarray  # flattened

    @property
    def nbytes(self) -> int:
        return int(self.values.size * self.values.dtype.itemsize)


@dataclass
class Arg:
    """One argument of a kernel call, resolved to C by the renderer.

    kind: 'tensor' (an activation in the arena or a constant tensor),
    'const' (a ConstArray of this call), 'scratch' (the call's scratch
    buffer), or 'null'.
    """

    kind: str
    ctype: str = "int8_t"
    tensor: int = -1
    name: str = ""
    writable: bool = False


@dataclass
class KernelCall:
    op_index: int
    op_kind: str
    kernel: str  # template base name in templates/kernels/, e.g. "conv_s8"
    spec: dict[str, Any]  # compile-time specialization of the template
    params: dict[str, Any]  # fields of the kernel's params struct (ints or const names)
    args: list[Arg]
    consts: list[ConstArray] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)  # activation tensors read
    outputs: list[int] = field(default_factory=list)  # activation tensors written
    scratch_bytes: int = 0
    macs: int = 0
    # Template whose params struct this kernel takes ("" = its own); kernel
    # families (e.g. conv_s8_dsp) share the portable kernel's struct.
    params_kernel: str = ""
    # What the portable kernel allows for this call (the variant declarations
    # in variants.py say which variant may use it): inplace_inputs: input
    # positions whose memory the output may reuse; inplace_kind "elementwise":
    # element i is written after input element i is read (output at or before
    # the input's start); "ring": through a ring buffer (see conv_s8.c.j2);
    # patchable: the call may compute sub-windows (batch 1).
    inplace_inputs: list[int] = field(default_factory=list)
    inplace_kind: str = "elementwise"
    patchable: bool = False
    # Set by specialization (specialize.py) for patch-based execution: one
    # params dict per patch (each overrides ``params``), and where the call
    # sits in the patch loop ("first", "middle", "last"; "" outside a loop).
    patch_params: list[dict[str, Any]] = field(default_factory=list)
    patch_loop: str = ""
    # Input 0 read through these element strides, one per dimension of its tensor, instead of row-major: a
    # TRANSPOSE folded into this call (codegen/fold.py); empty: row-major.  Only the
    # variants that declare ``strided_input`` compute such a call.
    input_strides: tuple[int, ...] = ()
    # Output 0 written through these element strides, one per dimension of its tensor: a TRANSPOSE of it
    # folded into this call (the TRANSPOSE's output is where it writes); only variants declaring
    # ``strided_output`` compute it.
    output_strides: tuple[int, ...] = ()

    @property
    def function(self) -> str:
        return kernel_function_name(self.kernel, self.spec)


@dataclass
class Alias:
    """The op's output is its input reinterpreted (same bytes); or, ``folded_into`` >= 0, a TRANSPOSE whose
    consumer (that operator) reads the source's bytes in their own layout through strides (codegen/fold.py)."""

    op_index: int
    op_kind: str
    source: int
    target: int
    folded_into: int = -1


Lowered = Union[KernelCall, Alias]


def kernel_function_name(kernel: str, spec: dict[str, Any]) -> str:
    if not spec:
        return f"tml_{kernel}"
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    return f"tml_{kernel}_{digest}"


@dataclass
class LowerContext:
    graph: Graph
    features: tuple[str, ...] = ()
    stack_bytes: int = 0  # the board's main stack (0: unknown or host); bounds kernels' on-stack buffers

    def t(self, index: int) -> Tensor:
        return self.graph.tensors[index]


LowerFn = Callable[[LowerContext, Op], Lowered]


def lowering(*kinds: str, dtype: str | tuple[str, ...] = "int8") -> Callable[[LowerFn], LowerFn]:
    """Marks a function as the lowering of operator ``kinds`` computing in ``dtype`` ("int8", "float32" for
    the float operators of validation's FLOAT_RULES, "int16" for the operators on 16-bit activations of its
    INT16_RULES, or several for operators that move bytes of any);
    ``tinyml.codegen.ops`` collects the marked functions of its modules into its tables (``ops.LOWERINGS``,
    ``ops.FLOAT_LOWERINGS``, ``ops.INT16_LOWERINGS``, ``ops.lower_op``)."""
    def mark(fn: LowerFn) -> LowerFn:
        fn.lowers = kinds  # type: ignore[attr-defined]
        fn.lowers_dtypes = (dtype,) if isinstance(dtype, str) else dtype  # type: ignore[attr-defined]
        return fn

    return mark


# ---------------------------------------------------------------------------
# Helpers shared by op lowerings.


def tensor_arg(t: Tensor, writable: bool = False) -> Arg:
    return Arg(kind="tensor", ctype=C_TYPES.get(t.dtype, "int8_t"), tensor=t.index, writable=writable)


def bytes_arg(t: Tensor, writable: bool = False) -> Arg:
    """A tensor of any type as bytes (int8_t), for the kernels that move bytes (concat_s8, copy_nd_s8,
    split_s8)."""
    return Arg(kind="tensor", ctype="int8_t", tensor=t.index, writable=writable)


def const_arg(arr: ConstArray) -> Arg:
    return Arg(kind="const", ctype=arr.ctype, name=arr.name)


def null_arg(ctype: str) -> Arg:
    return Arg(kind="null", ctype=ctype)


def shape4(op: Op, t: Tensor) -> tuple[int, int, int, int]:
    """The NHWC dimensions of a tensor validation checked is 4-D."""
    return t.shape  # type: ignore[return-value]
