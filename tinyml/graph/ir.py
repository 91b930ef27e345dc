"""The Graph IR: the only model representation after import.

A Graph is a list of tensors and a list of operators in execution order.
Tensors are identified by their index in ``Graph.tensors``; an operator
names its inputs and outputs by index (-1 for an absent optional input).
Constant tensors carry their data as numpy arrays.  Quantization follows
TFLite's affine scheme: ``real = scale * (q - zero_point)``, per tensor or
per channel along ``axis``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPE_BYTES = {
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "int16": 2,
    "float16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "float64": 8,
}

# Bits per element of every TFLite tensor type (what a tensor occupies, for inspect and the memory plan of a
# model we cannot compile); 0 for types without a fixed size (string, resource, variant), which count the
# bytes of their constant data, or none.  DTYPE_BYTES above lists the types validation lets through.
TYPE_BITS = {
    **{k: 8 * v for k, v in DTYPE_BYTES.items()},
    "int4": 4,
    "uint16": 16,
    "uint64": 64,
    "complex64": 64,
    "complex128": 128,
    "string": 0,
    "resource": 0,
    "variant": 0,
}

# numpy types of the tensor types that cross the host/device boundary.
NUMPY_DTYPES = {
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "int32": np.int32,
    "float32": np.float32,
}

C_TYPES = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "int64": "int64_t",  # the biases of int16x8 models
    "float32": "float",
}


@dataclass
class Quant:
    """Affine quantization: per tensor when ``scale`` has one element."""

    scale: np.ndarray  # float32, shape (n,)
    zero_point: np.ndarray  # int64, shape (n,)
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def s(self) -> float:
        """The per-tensor scale as a Python float (exactly the float32 value)."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None  # constant tensors only
    variable: bool = False  # TFLite's is_variable: state that TFLM keeps between invocations

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        bits = TYPE_BITS.get(self.dtype, 0)
        if bits == 0:
            return int(self.data.nbytes) if self.data is not None else 0
        return (self.size * bits + 7) // 8


@dataclass
class Op:
    index: int
    kind: str  # TFLite builtin name, e.g. "CONV_2D"
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    # TFLite's intermediate tensors (the converter gives the LSTM five, empty): TFLM allocates them only when
    # they are empty, and no kernel we lower reads them
    intermediates: list[int] = field(default_factory=list)


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str = ""
    source: str = ""  # where the graph came from (file name), for messages
    # Subgraph inputs that are variable tensors: state TFLM keeps between invocations, not data a caller
    # gives (they are not in ``inputs``).
    state_inputs: list[int] = field(default_factory=list)

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def producers(self) -> dict[int, int]:
        """Tensor index -> index (in ``ops``) of the op that writes it."""
        out: dict[int, int] = {}
        for i, op in enumerate(self.ops):
            for t in op.outputs:
                out[t] = i
        return out

    def consumers(self) -> dict[int, list[int]]:
        """Tensor index -> indices (in ``ops``) of the ops that read it."""
        out: dict[int, list[int]] = {}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                if t >= 0:
                    out.setdefault(t, []).append(i)
        return out

    def state_tensors(self) -> list[int]:
        """Indices of the variable tensors that operators read and no operator writes: state that TFLM keeps
        between invocations (and resets), in one persistent region each (validation admits them only as the
        inputs an operator's row declares as state)."""
        written = {t for op in self.ops for t in op.outputs}
        read = {t for op in self.ops for t in op.inputs if t >= 0}
        return sorted(t for t in read - written
                      if self.tensors[t].variable and not self.tensors[t].is_const)

    def activation_tensors(self) -> list[int]:
        """Indices of every non-constant tensor that is used by the graph."""
        seen: list[int] = []
        used = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(t for t in op.inputs if t >= 0)
            used.update(op.outputs)
        for t in sorted(used):
            if not self.tensors[t].is_const:
                seen.append(t)
        return seen
