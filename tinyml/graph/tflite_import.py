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

import flatbuffers
import numpy as np

from tinyml.errors import ModelError, TinymlError, UnsupportedError
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
    "uint64": "<u8",
    "uint16": "<u2",
    "complex64": "<c8",
    "complex128": "<c16",
}
# Types without a fixed element size: their constant data is kept as raw bytes.
_RAW_TYPES = ("string", "resource", "variant")
# How much of a custom operator's name a message shows.
MAX_CUSTOM_NAME = 64
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
        # a TensorType code: which accumulator TFLM's int16 kernel uses without a bias (4: int64)
        "CONV_2D": ("Conv2DOptions", lambda o: dict(window(o), quantized_bias_type=o.QuantizedBiasType())),
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
                # a TensorType code: which accumulator TFLM's int16 kernel uses without a bias (4: int64)
                quantized_bias_type=o.QuantizedBiasType(),
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
        # data movement (codegen/ops/movement.py); TRANSPOSE and SLICE have empty options tables
        "STRIDED_SLICE": ("StridedSliceOptions", lambda o: dict(
            begin_mask=int(o.BeginMask()), end_mask=int(o.EndMask()), ellipsis_mask=int(o.EllipsisMask()),
            new_axis_mask=int(o.NewAxisMask()), shrink_axis_mask=int(o.ShrinkAxisMask()), offset=bool(o.Offset()))),
        "SPLIT": ("SplitOptions", lambda o: dict(num_splits=int(o.NumSplits()))),
        "SPLIT_V": ("SplitVOptions", lambda o: dict(num_splits=int(o.NumSplits()))),
        "PACK": ("PackOptions", lambda o: dict(values_count=int(o.ValuesCount()), axis=int(o.Axis()))),
        "UNPACK": ("UnpackOptions", lambda o: dict(num=int(o.Num()), axis=int(o.Axis()))),
        "DEPTH_TO_SPACE": ("DepthToSpaceOptions", lambda o: dict(block_size=int(o.BlockSize()))),
        "SPACE_TO_DEPTH": ("SpaceToDepthOptions", lambda o: dict(block_size=int(o.BlockSize()))),
        # convolution-like (codegen/ops/upsample.py); TFLM's parser requires the table (no defaults)
        "TRANSPOSE_CONV": ("TransposeConvOptions", lambda o: dict(
            padding=pad(o), stride_h=int(o.StrideH()), stride_w=int(o.StrideW()), activation=act(o))),
        "RESIZE_NEAREST_NEIGHBOR": ("ResizeNearestNeighborOptions", lambda o: dict(
            align_corners=bool(o.AlignCorners()), half_pixel_centers=bool(o.HalfPixelCenters()))),
        "RESIZE_BILINEAR": ("ResizeBilinearOptions", lambda o: dict(
            align_corners=bool(o.AlignCorners()), half_pixel_centers=bool(o.HalfPixelCenters()))),
        "BATCH_MATMUL": ("BatchMatMulOptions", lambda o: dict(adj_x=bool(o.AdjX()), adj_y=bool(o.AdjY()))),
        "L2_NORMALIZATION": ("L2NormOptions", lambda o: dict(activation=act(o))),
        # the LSTM's cell gate activation (TANH as Keras makes it), its clips (0: none) and the input layout
        "UNIDIRECTIONAL_SEQUENCE_LSTM": ("UnidirectionalSequenceLSTMOptions", lambda o: dict(
            activation=act(o), cell_clip=float(np.float32(o.CellClip())), proj_clip=float(np.float32(o.ProjClip())),
            time_major=bool(o.TimeMajor()), asymmetric_quantize_inputs=bool(o.AsymmetricQuantizeInputs()),
            diagonal_recurrent_tensors=bool(o.DiagonalRecurrentTensors()))),
        # sequence operators (codegen/ops/sequence.py)
        "SVDF": ("SVDFOptions", lambda o: dict(rank=int(o.Rank()), activation=act(o),
                                               asymmetric_quantize_inputs=bool(o.AsymmetricQuantizeInputs()))),
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
    "FULLY_CONNECTED": dict(activation="NONE", weights_format=0, keep_num_dims=False, quantized_bias_type=0),
    "MEAN": dict(keep_dims=False),
    "ADD": dict(activation="NONE"),
    "MUL": dict(activation="NONE"),
    "SUB": dict(activation="NONE"),
    "CONCATENATION": dict(axis=0, activation="NONE"),
    "RESHAPE": dict(new_shape=[]),
    "SQUEEZE": dict(squeeze_dims=[]),
    "SOFTMAX": dict(beta=0.0),
    "LEAKY_RELU": dict(alpha=0.0),
    # data movement: TFLM's parser leaves the fields zero without a table
    "STRIDED_SLICE": dict(begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0,
                          offset=False),
    "SPLIT": dict(num_splits=0),
    "SPLIT_V": dict(num_splits=0),
    "PACK": dict(values_count=0, axis=0),
    "UNPACK": dict(num=0, axis=0),
    "DEPTH_TO_SPACE": dict(block_size=0),
    "SPACE_TO_DEPTH": dict(block_size=0),
    # TFLM's parser: both flags false without a table
    "RESIZE_NEAREST_NEIGHBOR": dict(align_corners=False, half_pixel_centers=False),
    "RESIZE_BILINEAR": dict(align_corners=False, half_pixel_centers=False),
    "BATCH_MATMUL": dict(adj_x=False, adj_y=False),
    "L2_NORMALIZATION": dict(activation="NONE"),
    # TFLM's parser leaves the rank 0 without a table (and its Prepare then divides by it): refused
    "SVDF": dict(rank=0, activation="NONE", asymmetric_quantize_inputs=False),
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
        code = max(builtin_code_field(oc), int(oc.DeprecatedBuiltinCode()))
        if code == 32:  # CUSTOM
            op_names.append("CUSTOM:" + _custom_name(oc.CustomCode()))
        else:
            op_names.append(builtin_names.get(code, f"UNKNOWN_BUILTIN_{code}"))

    for i in range(_bounded(model.MetadataLength(), 10_000)):
        if model.Metadata(i).Name() == b"COMPRESSION_METADATA":
            raise UnsupportedError("the model's weights are compressed for TFLM (its COMPRESSION_METADATA: "
                                   "look-up-table compression), which tinyml does not read; give the model "
                                   "before compression")
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

    declared = tensor_list(sg.Inputs, sg.InputsLength(), "the subgraph's input list", False)
    outputs = tensor_list(sg.Outputs, sg.OutputsLength(), "the subgraph's output list", False)
    # A variable tensor among the subgraph's inputs is state TFLM keeps (and resets), not data the caller gives.
    inputs = [t for t in declared if not tensors[t].variable]
    state_inputs = [t for t in declared if tensors[t].variable]
    if not declared or not outputs:
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
        intermediates = tensor_list(o.Intermediates, o.IntermediatesLength(), f"operator {oi} ({kind})", False)
        options = _read_options(o, kind, readers)
        ops.append(Op(index=oi, kind=kind, inputs=op_inputs, outputs=op_outputs, options=options,
                      version=int(model.OperatorCodes(code_index).Version()), intermediates=intermediates))

    desc = model.Description()
    return Graph(
        name=name,
        tensors=tensors,
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        description=desc.decode("utf-8", "replace") if desc else "",
        source=source,
        state_inputs=state_inputs,
    )


def builtin_code_field(oc: Any) -> int:
    """The int32 ``builtin_code`` field as stored (0 when absent).  The ``tflite`` package's BuiltinCode()
    returns ``deprecated_builtin_code`` instead whenever the field is below 127, which misreads a file that
    leaves the old field at 0; TFLM's GetBuiltinCode takes the larger of the two fields as stored."""
    o = oc._tab.Offset(10)  # vtable slot 3: builtin_code
    return int(oc._tab.Get(flatbuffers.number_types.Int32Flags, o + oc._tab.Pos)) if o else 0


def _custom_name(raw: bytes | None) -> str:
    """A custom operator's name as messages show it: printable, at most MAX_CUSTOM_NAME characters."""
    if not raw:
        return "?"
    text = "".join(c if c.isprintable() and not c.isspace() else "?" for c in raw.decode("utf-8", "replace"))
    return text if len(text) <= MAX_CUSTOM_NAME else text[:MAX_CUSTOM_NAME - 3] + "..."


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
    # As TFLM: a tensor is quantized when it has scales and zero points; with fewer zero points than scales,
    # the first is every channel's.
    if q is not None and q.ScaleLength() > 0 and q.ZeroPointLength() > 0:
        n_scale = _bounded(q.ScaleLength(), MAX_ELEMENTS)
        n_zp = _bounded(q.ZeroPointLength(), MAX_ELEMENTS)
        scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).reshape(-1)
        zps = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).reshape(-1)
        if scale.size != n_scale or zps.size != n_zp:
            raise ModelError(f"tensor {ti} ({tname}) has a truncated scale or zero-point vector")
        if n_zp != n_scale:
            zps = np.repeat(zps[:1], n_scale)
        # quantized_dimension is kept as written: TFLM reads it only where an operator needs it (a filter's
        # scales must lie along an axis of the output-channel count; a bias's scales are taken per output
        # channel whatever it says, and old converters wrote 3 into 1-D biases).  Validation checks it there.
        axis = int(q.QuantizedDimension())
        if not np.all(np.isfinite(scale)) or np.any(scale < 0):
            raise ModelError(f"tensor {ti} ({tname}) has a negative or non-finite quantization scale")
        quant = Quant(scale=scale, zero_point=zps, axis=axis)

    const = None
    bi = int(t.Buffer())
    if not 0 <= bi < max(n_buffers, 1):
        raise ModelError(f"tensor {ti} ({tname}) refers to buffer {bi}, but the model has {n_buffers} buffers")
    raw = _buffer_bytes(model.Buffers(bi), bi, data, f"tensor {ti} ({tname})") if bi > 0 else None
    if raw is not None and t.Sparsity() is not None:
        raise UnsupportedError(f"tensor {ti} ({tname}) is stored sparse (sparsity parameters), which tinyml does "
                               "not read; convert the model without sparsity")
    if raw is not None:
        const = _constant(raw, dtype, shape, n_elem, f"tensor {ti} ({tname})")
    return Tensor(index=ti, name=tname, shape=shape, dtype=dtype, quant=quant, data=const,
                  variable=bool(t.IsVariable()))


def _buffer_bytes(b: Any, bi: int, data: bytes, what: str) -> bytes | None:
    """The data of buffer ``bi``: inline, or (models over 2 GB) ``size`` bytes at ``offset`` in the file,
    after the flatbuffer (an offset of 0 or 1 means none: 1 is the converter's placeholder).  None: no data."""
    off, size = int(b.Offset()), int(b.Size())
    n = b.DataLength()
    if off > 1:
        if n > 0:
            raise ModelError(f"{what}: buffer {bi} has both inline data ({n} bytes) and data at offset {off}; "
                             "re-export the model")
        if size == 0:
            raise ModelError(f"{what}: buffer {bi} points to data at offset {off} but its size is 0; "
                             "re-export the model")
        if off + size > len(data):
            raise ModelError(f"{what}: buffer {bi} has {size} bytes at offset {off}, past the end of the "
                             f"{len(data)}-byte file; the file is truncated or the offset is wrong")
        table_end = b._tab.Pos  # the Buffer table itself lies inside the flatbuffer, before any appended data
        if off < table_end:
            raise ModelError(f"{what}: buffer {bi} points to data at offset {off}, inside the flatbuffer (its own "
                             f"Buffer table is at {table_end}); data given by offset follows the flatbuffer")
        return bytes(data[off:off + size])
    if n > 0:
        if n > len(data):
            raise ModelError(f"{what}: buffer {bi} is longer than the file")
        raw = b.DataAsNumpy().tobytes()
        if len(raw) != n:
            raise ModelError(f"{what}: buffer {bi} is truncated")
        return raw
    return None


def _constant(raw: bytes, dtype: str, shape: tuple[int, ...], n_elem: int, what: str) -> np.ndarray:
    """A constant tensor's data as an array of its shape (int4: unpacked, two values a byte, low nibble
    first, as TFLM unpacks them; string, resource and variant: the raw bytes)."""
    if dtype in _RAW_TYPES:
        return np.frombuffer(raw, dtype=np.uint8).copy()
    if dtype == "int4":
        need = (n_elem + 1) // 2
        if len(raw) != need:
            raise ModelError(f"{what} has {len(raw)} bytes of data but shape {list(shape)} of int4 needs {need}")
        packed = np.frombuffer(raw, dtype=np.uint8)
        low = (packed << 4).astype(np.int8) >> 4
        high = packed.astype(np.int8) >> 4
        return np.stack([low, high], axis=1).reshape(-1)[:n_elem].reshape(shape).copy()
    if dtype not in _NUMPY:
        raise ModelError(f"{what} is a constant of unsupported type {dtype}")
    itemsize = np.dtype(_NUMPY[dtype]).itemsize
    if len(raw) != n_elem * itemsize:
        raise ModelError(f"{what} has {len(raw)} bytes of data but shape {list(shape)} of {dtype} needs "
                         f"{n_elem * itemsize}")
    const = np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(shape).copy()
    return const.astype(bool) if dtype == "bool" else const
