"""Import a ``.tflite`` flatbuffer into the Graph IR.

The flatbuffer is read with the generated schema classes of the ``tflite``
package (no TensorFlow).  Every structural fact is validated here, so that
the rest of the toolchain can trust the Graph: indices in range, shapes
positive and bounded, constant data of the right size.  Any failure of the
flatbuffer reader on a corrupt file becomes a one-line ``ModelError``.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinyml.errors import ModelError, TinymlError
from tinyml.graph.ir import Graph, Op, Quant, Tensor
from tinyml.limits import MAX_MODEL_BYTES, check_model_name, stat_regular_file

# Limits that keep a corrupt file from making us allocate or loop forever.
MAX_TENSORS = 200_000
MAX_OPS = 100_000
MAX_RANK = 8
MAX_ELEMENTS = 1 << 28

_TENSOR_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
}
_NUMPY = {
    "float32": "<f4",
    "float16": "<f2",
    "int32": "<i4",
    "uint8": "u1",
    "int64": "<i8",
    "bool": "u1",
    "int16": "<i2",
    "int8": "i1",
    "float64": "<f8",
    "uint32": "<u4",
}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDINGS = {0: "SAME", 1: "VALID"}


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _options_readers() -> dict[str, tuple[str, Callable[[Any], dict[str, Any]]]]:
    """Op name -> (options class name, reader of that table into a dict)."""

    def act(o: Any) -> str:
        code = o.FusedActivationFunction()
        if code not in _ACTIVATIONS:
            raise ModelError(f"unknown fused activation code {code}")
        return _ACTIVATIONS[code]

    def pad(o: Any) -> str:
        code = o.Padding()
        if code not in _PADDINGS:
            raise ModelError(f"unknown padding code {code}")
        return _PADDINGS[code]

    def window(o: Any) -> dict[str, Any]:
        """The fields CONV_2D and DEPTHWISE_CONV_2D options share."""
        return dict(
            padding=pad(o),
            stride_h=o.StrideH(),
            stride_w=o.StrideW(),
            dilation_h=o.DilationHFactor(),
            dilation_w=o.DilationWFactor(),
            activation=act(o),
        )

    return {
        "CONV_2D": ("Conv2DOptions", window),
        "DEPTHWISE_CONV_2D": (
            "DepthwiseConv2DOptions",
            lambda o: dict(window(o), depth_multiplier=o.DepthMultiplier()),
        ),
        "FULLY_CONNECTED": (
            "FullyConnectedOptions",
            lambda o: dict(
                activation=act(o),
                weights_format=o.WeightsFormat(),
                keep_num_dims=bool(o.KeepNumDims()),
            ),
        ),
        "AVERAGE_POOL_2D": ("Pool2DOptions", None),
        "MAX_POOL_2D": ("Pool2DOptions", None),
        "MEAN": ("ReducerOptions", lambda o: dict(keep_dims=bool(o.KeepDims()))),
        "ADD": ("AddOptions", lambda o: dict(activation=act(o))),
        "MUL": ("MulOptions", lambda o: dict(activation=act(o))),
        "SUB": ("SubOptions", lambda o: dict(activation=act(o))),
        "CONCATENATION": ("ConcatenationOptions", lambda o: dict(axis=o.Axis(), activation=act(o))),
        "RESHAPE": (
            "ReshapeOptions",
            lambda o: dict(new_shape=[int(o.NewShape(i)) for i in range(_bounded(o.NewShapeLength(), MAX_RANK))]),
        ),
        "SQUEEZE": (
            "SqueezeOptions",
            lambda o: dict(squeeze_dims=[int(o.SqueezeDims(i)) for i in range(_bounded(o.SqueezeDimsLength(), MAX_RANK))]),
        ),
        "SOFTMAX": ("SoftmaxOptions", lambda o: dict(beta=float(np.float32(o.Beta())))),
        "LEAKY_RELU": ("LeakyReluOptions", lambda o: dict(alpha=float(np.float32(o.Alpha())))),
    }


def _pool_options(o: Any) -> dict[str, Any]:
    code = o.FusedActivationFunction()
    if code not in _ACTIVATIONS:
        raise ModelError(f"unknown fused activation code {code}")
    if o.Padding() not in _PADDINGS:
        raise ModelError(f"unknown padding code {o.Padding()}")
    return dict(
        padding=_PADDINGS[o.Padding()],
        stride_h=o.StrideH(),
        stride_w=o.StrideW(),
        filter_h=o.FilterHeight(),
        filter_w=o.FilterWidth(),
        activation=_ACTIVATIONS[code],
    )


_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "FULLY_CONNECTED": dict(activation="NONE", weights_format=0, keep_num_dims=False),
    "MEAN": dict(keep_dims=False),
    "ADD": dict(activation="NONE"),
    "MUL": dict(activation="NONE"),
    "SUB": dict(activation="NONE"),
    "CONCATENATION": dict(axis=0, activation="NONE"),
    "RESHAPE": dict(new_shape=[]),
    "SQUEEZE": dict(squeeze_dims=[]),
    "SOFTMAX": dict(beta=0.0),
    "LEAKY_RELU": dict(alpha=0.0),
}


def _bounded(n: int, limit: int) -> int:
    if n < 0 or n > limit:
        raise ModelError(f"vector length {n} is out of range (at most {limit})")
    return n


def model_name_from_path(path: str | os.PathLike[str]) -> str:
    """A C identifier derived from a file name: 'ds-cnn.tflite' -> 'ds_cnn'."""
    stem = Path(path).name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_]", "_", stem).strip("_") or "model"
    if name[0].isdigit():
        name = "m_" + name
    return name


def read_model_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a ``.tflite`` file, read only if it is a regular file of
    at most MAX_MODEL_BYTES whose flatbuffer header checks out: never a
    device, a FIFO or a directory, and nothing read without a bound."""
    p = Path(path)
    stat_regular_file(p, MAX_MODEL_BYTES, give="the path of a .tflite model", error=ModelError,
                      too_big="a model may have; give a microcontroller-sized .tflite model")
    try:
        # O_NONBLOCK: should the path have turned into a FIFO since the stat, opening it does not wait.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise ModelError(f"{p}: cannot read the file ({e.strerror}); check its permissions") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MODEL_BYTES:
            raise ModelError(f"{p}: changed while being opened; give the path of a .tflite model")
        size = st.st_size
        head = f.read(8)
        check_header(head, size, str(p))
        data = head + f.read(size - len(head))
    if len(data) != size:
        raise ModelError(f"{p}: changed while being read ({len(data)} of {size} bytes); try again")
    return data


def check_header(head: bytes, size: int, source: str) -> None:
    """The flatbuffer header: 'TFL3' at bytes 4..8 and a root table inside the file."""
    if size < 8 or len(head) < 8:
        raise ModelError(f"{source}: file is {size} bytes, too short to be a .tflite model; re-export it")
    if head[4:8] != b"TFL3":
        raise ModelError(
            f"{source}: not a TensorFlow Lite flatbuffer (file identifier {head[4:8]!r} instead of b'TFL3'); "
            "convert the model with tf.lite.TFLiteConverter"
        )
    (root,) = struct.unpack_from("<I", head)
    if root < 8 or root + 4 > size:
        raise ModelError(f"{source}: malformed or truncated .tflite file (root table offset {root} outside the "
                         f"{size}-byte file); re-export the model")


def load_tflite(path: str | os.PathLike[str], name: str | None = None) -> Graph:
    """Read a ``.tflite`` file into a Graph; raises ModelError on any defect
    (InputError for a ``name`` that is not a lowercase C identifier)."""
    if name is not None:
        check_model_name(name)
    data = read_model_file(path)
    return parse_tflite(data, name=name or model_name_from_path(path), source=str(path))


def parse_tflite(data: bytes, name: str = "model", source: str = "<bytes>") -> Graph:
    """Parse flatbuffer bytes into a Graph; raises ModelError on any defect."""
    check_header(bytes(data[:8]), len(data), source)
    try:
        return _parse(data, name, source)
    except TinymlError as e:
        msg = str(e)
        if not msg.startswith(source):
            msg = f"{source}: {msg}"
        raise type(e)(msg) from None
    except (IndexError, struct.error, ValueError, TypeError, OverflowError, UnicodeDecodeError, KeyError,
            AttributeError, RecursionError, MemoryError) as e:
        raise ModelError(
            f"{source}: malformed or truncated .tflite file ({type(e).__name__} while reading the flatbuffer); "
            "re-export the model"
        ) from None


def _parse(data: bytes, name: str, source: str) -> Graph:
    import tflite

    buf = bytearray(data) if not isinstance(data, bytearray) else data
    model = tflite.Model.GetRootAsModel(buf, 0)
    version = model.Version()
    if version != 3:
        raise ModelError(f"schema version {version} is not supported (expected 3)")

    builtin_names = _builtin_names()
    n_codes = _bounded(model.OperatorCodesLength(), 10_000)
    op_names: list[str] = []
    for i in range(n_codes):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:  # CUSTOM
            custom = oc.CustomCode()
            op_names.append("CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?"))
        else:
            op_names.append(builtin_names.get(code, f"UNKNOWN_BUILTIN_{code}"))

    n_buffers = _bounded(model.BuffersLength(), MAX_TENSORS + 1)
    if model.SubgraphsLength() < 1:
        raise ModelError("the model has no subgraph")
    sg = model.Subgraphs(0)

    n_tensors = _bounded(sg.TensorsLength(), MAX_TENSORS)
    tensors: list[Tensor] = []
    for ti in range(n_tensors):
        tensors.append(_read_tensor(model, sg.Tensors(ti), ti, n_buffers, data))

    def tensor_list(getter: Callable[[int], int], length: int, what: str, allow_absent: bool) -> list[int]:
        _bounded(length, MAX_TENSORS)
        out = []
        for j in range(length):
            t = int(getter(j))
            if allow_absent and t == -1:
                out.append(-1)
                continue
            if not 0 <= t < n_tensors:
                raise ModelError(f"{what} refers to tensor {t}, but the model has {n_tensors} tensors")
            out.append(t)
        return out

    inputs = tensor_list(sg.Inputs, sg.InputsLength(), "the subgraph's input list", False)
    outputs = tensor_list(sg.Outputs, sg.OutputsLength(), "the subgraph's output list", False)
    if not inputs or not outputs:
        raise ModelError("the model declares no inputs or no outputs")

    readers = _options_readers()
    n_ops = _bounded(sg.OperatorsLength(), MAX_OPS)
    ops: list[Op] = []
    for oi in range(n_ops):
        o = sg.Operators(oi)
        code_index = o.OpcodeIndex()
        if not 0 <= code_index < n_codes:
            raise ModelError(f"operator {oi} uses opcode index {code_index}, but the model has {n_codes} opcodes")
        kind = op_names[code_index]
        op_inputs = tensor_list(o.Inputs, o.InputsLength(), f"operator {oi} ({kind})", True)
        op_outputs = tensor_list(o.Outputs, o.OutputsLength(), f"operator {oi} ({kind})", False)
        options = _read_options(o, kind, readers)
        ops.append(Op(index=oi, kind=kind, inputs=op_inputs, outputs=op_outputs, options=options,
                      version=int(model.OperatorCodes(code_index).Version())))

    desc = model.Description()
    return Graph(
        name=name,
        tensors=tensors,
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        description=desc.decode("utf-8", "replace") if desc else "",
        source=source,
    )


def _read_options(o: Any, kind: str, readers: dict[str, Any]) -> dict[str, Any]:
    import tflite

    if kind not in readers:
        return {}
    cls_name, reader = readers[kind]
    table = o.BuiltinOptions()
    if table is None:
        if kind in _DEFAULT_OPTIONS:
            return dict(_DEFAULT_OPTIONS[kind])
        raise ModelError(f"operator {kind} has no options table")
    expected = getattr(tflite.BuiltinOptions, cls_name)
    if o.BuiltinOptionsType() != expected:
        raise ModelError(f"operator {kind} carries options of type {o.BuiltinOptionsType()} instead of {cls_name}")
    opts = getattr(tflite, cls_name)()
    opts.Init(table.Bytes, table.Pos)
    return _pool_options(opts) if reader is None else reader(opts)


def _read_tensor(model: Any, t: Any, ti: int, n_buffers: int, data: bytes) -> Tensor:
    raw_name = t.Name()
    tname = raw_name.decode("utf-8", "replace") if raw_name else f"tensor_{ti}"
    type_code = t.Type()
    dtype = _TENSOR_TYPES.get(type_code)
    if dtype is None:
        raise ModelError(f"tensor {ti} ({tname}) has unknown type code {type_code}")
    rank = _bounded(t.ShapeLength(), MAX_RANK)
    shape = tuple(int(t.Shape(j)) for j in range(rank))
    for d in shape:
        if d < 0 or d > MAX_ELEMENTS:
            raise ModelError(f"tensor {ti} ({tname}) has dimension {d} in shape {list(shape)}")
    n_elem = 1
    for d in shape:
        n_elem *= d
    if n_elem > MAX_ELEMENTS:
        raise ModelError(f"tensor {ti} ({tname}) has {n_elem} elements, more than {MAX_ELEMENTS}")

    quant = None
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        n_scale = _bounded(q.ScaleLength(), MAX_ELEMENTS)
        scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).reshape(-1)
        zps = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).reshape(-1) if q.ZeroPointLength() else np.zeros(1, np.int64)
        if scale.size != n_scale:
            raise ModelError(f"tensor {ti} ({tname}) has a truncated scale vector")
        if zps.size == 1 and n_scale > 1:
            zps = np.repeat(zps, n_scale)
        if zps.size != n_scale:
            raise ModelError(f"tensor {ti} ({tname}) has {n_scale} scales but {zps.size} zero points")
        axis = int(q.QuantizedDimension())
        if n_scale > 1 and not (0 <= axis < max(rank, 1) and shape[axis] == n_scale):
            raise ModelError(
                f"tensor {ti} ({tname}) has {n_scale} per-channel scales on axis {axis}, "
                f"which does not match its shape {list(shape)}"
            )
        if not np.all(np.isfinite(scale)) or np.any(scale < 0):
            raise ModelError(f"tensor {ti} ({tname}) has a negative or non-finite quantization scale")
        quant = Quant(scale=scale, zero_point=zps, axis=axis)

    const = None
    bi = int(t.Buffer())
    if not 0 <= bi < max(n_buffers, 1):
        raise ModelError(f"tensor {ti} ({tname}) refers to buffer {bi}, but the model has {n_buffers} buffers")
    if bi > 0:
        b = model.Buffers(bi)
        raw = None
        off, size = int(b.Offset()), int(b.Size())
        if off > 1:  # data stored after the flatbuffer (models over 2 GB)
            if off + size > len(data):
                raise ModelError(f"tensor {ti} ({tname}) has buffer data past the end of the file")
            raw = bytes(data[off:off + size])
        elif b.DataLength() > 0:
            n = b.DataLength()
            if n > len(data):
                raise ModelError(f"tensor {ti} ({tname}) has a buffer longer than the file")
            raw = b.DataAsNumpy().tobytes()
            if len(raw) != n:
                raise ModelError(f"tensor {ti} ({tname}) has a truncated buffer")
        if raw is not None:
            if dtype not in _NUMPY:
                raise ModelError(f"tensor {ti} ({tname}) is a constant of unsupported type {dtype}")
            itemsize = np.dtype(_NUMPY[dtype]).itemsize
            if len(raw) != n_elem * itemsize:
                raise ModelError(
                    f"tensor {ti} ({tname}) has {len(raw)} bytes of data but shape {list(shape)} "
                    f"of {dtype} needs {n_elem * itemsize}"
                )
            const = np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(shape).copy()
            if dtype == "bool":
                const = const.astype(bool)
    return Tensor(index=ti, name=tname, shape=shape, dtype=dtype, quant=quant, data=const)
