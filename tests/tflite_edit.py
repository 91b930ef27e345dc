"""Rewrite .tflite files in tests with the flatbuffers object API.

Uses the schema module that ships inside the tflite-micro package (a test
dependency); the toolchain itself never writes flatbuffers.
"""

from __future__ import annotations

from typing import Any, Callable

import flatbuffers
import numpy as np


def schema() -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def edit_model(model: bytes, fn: Callable[[Any, Any], None]) -> bytes:
    """Apply ``fn(model_object, schema_module)`` and serialize the result."""
    s = schema()
    obj = s.ModelT.InitFromObj(s.Model.GetRootAsModel(bytearray(model), 0))
    fn(obj, s)
    builder = flatbuffers.Builder(1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def as_old_converter(model: bytes) -> bytes:
    """Make a file look like a TF 2.3-era converter's output.

    Old files carry the operator code only in ``deprecated_builtin_code``
    (the int32 ``builtin_code`` field did not exist, so it reads as 0), have
    no signature defs, no metadata and no shape signatures, and every
    operator at version 1 or 2.
    """

    def old(m: Any, s: Any) -> None:
        for oc in m.operatorCodes:
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            assert code < 127, "old files cannot encode this operator"
            oc.deprecatedBuiltinCode = code
            oc.builtinCode = 0
            oc.version = min(oc.version, 2)
        m.signatureDefs = None
        m.metadata = None
        m.description = b"TOCO Converted."
        for sg in m.subgraphs:
            for t in sg.tensors:
                t.shapeSignature = None

    return edit_model(model, old)


def set_opcode(m: Any, s: Any, op_index: int, builtin: str) -> None:
    """In model object ``m``: give operator ``op_index`` another builtin code (keeping its tensors and
    options)."""
    code = getattr(s.BuiltinOperator, builtin)
    oc = s.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, 127)
    oc.version = 1
    m.operatorCodes.append(oc)
    m.subgraphs[0].operators[op_index].opcodeIndex = len(m.operatorCodes) - 1


def replace_operator(model: bytes, op_index: int, builtin: str) -> bytes:
    """Give operator ``op_index`` another builtin code (keeping its tensors)."""
    return edit_model(model, lambda m, s: set_opcode(m, s, op_index, builtin))


def set_bias_quantized_dimension(model: bytes, dim: int) -> bytes:
    """Write ``quantized_dimension`` ``dim`` into every quantized 1-D int32 tensor (the biases), as old
    converters did (TFLM's person-detection model has 3 there)."""

    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if t.type == s.TensorType.INT32 and t.quantization is not None and len(t.shape) == 1:
                t.quantization.quantizedDimension = dim

    return edit_model(model, edit)


BUFFER_ALIGN = 16
_PLACEHOLDER = 0x00A5C3F100000000  # an offset no real file has, to find and patch


def buffers_by_offset(model: bytes) -> bytes:
    """The model in the layout of files over 2 GB: every buffer's data after the flatbuffer, 16-byte aligned,
    each Buffer naming it by ``offset`` and ``size`` (into the whole file) instead of holding it."""
    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAsModel(bytearray(model), 0))
    blobs: list[tuple[int, bytes]] = []
    for i, b in enumerate(m.buffers):
        if b.data is not None and len(b.data) > 0:
            blobs.append((i, bytes(bytearray(b.data))))
            b.data = None
            b.offset = _PLACEHOLDER + i  # a placeholder as wide as any real offset, patched below
            b.size = len(blobs[-1][1])
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    out = bytearray(builder.Output())
    flat = bytes(out)
    for i, blob in blobs:
        out += bytes(-len(out) % BUFFER_ALIGN)
        placeholder = (_PLACEHOLDER + i).to_bytes(8, "little")
        at = flat.index(placeholder)
        assert flat.count(placeholder) == 1
        out[at:at + 8] = len(out).to_bytes(8, "little")
        out += blob
    return bytes(out)


def craft_model(tensors: list[dict[str, Any]], ops: list[tuple[Any, ...]],
                inputs: list[int], outputs: list[int], subgraphs: int = 1) -> bytes:
    """A model from scratch.  Each tensor: ``shape``, ``type`` (a TensorType name), and optionally ``name``,
    ``scale`` and ``zero_point`` (lists), ``axis``, ``data`` (a numpy array) and ``variable``.  Each operator:
    (builtin name or "CUSTOM:name", input indices, output indices), and optionally its builtin options as
    (options table name, {field: value}), e.g. ("SVDFOptions", {"rank": 1}).  ``subgraphs`` > 1 adds empty
    ones."""
    s = schema()
    m = s.ModelT()
    m.version = 3
    m.buffers = [s.BufferT()]
    m.operatorCodes = []
    codes: dict[str, int] = {}
    sg = s.SubGraphT()
    sg.tensors = []
    for k, spec in enumerate(tensors):
        t = s.TensorT()
        t.name = spec.get("name", f"t{k}").encode()
        t.shape = list(spec["shape"])
        t.type = getattr(s.TensorType, spec["type"])
        t.isVariable = bool(spec.get("variable", False))
        t.buffer = 0
        if spec.get("data") is not None:
            b = s.BufferT()
            b.data = list(np.ascontiguousarray(spec["data"]).tobytes())
            m.buffers.append(b)
            t.buffer = len(m.buffers) - 1
        if spec.get("scale") is not None:
            q = s.QuantizationParametersT()
            q.scale = list(spec["scale"])
            q.zeroPoint = list(spec.get("zero_point", [0] * len(spec["scale"])))
            q.quantizedDimension = int(spec.get("axis", 0))
            t.quantization = q
        sg.tensors.append(t)
    sg.operators = []
    for kind, ins, outs, *options in ops:
        if kind not in codes:
            oc = s.OperatorCodeT()
            if kind.startswith("CUSTOM:"):
                oc.builtinCode = s.BuiltinOperator.CUSTOM
                oc.customCode = kind[len("CUSTOM:"):].encode()
            else:
                oc.builtinCode = getattr(s.BuiltinOperator, kind)
            oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)
            oc.version = 1
            m.operatorCodes.append(oc)
            codes[kind] = len(m.operatorCodes) - 1
        op = s.OperatorT()
        op.opcodeIndex = codes[kind]
        op.inputs = list(ins)
        op.outputs = list(outs)
        if options:
            table, fields = options[0]
            o = getattr(s, f"{table}T")()
            for k, v in fields.items():
                setattr(o, k, v)
            op.builtinOptionsType = getattr(s.BuiltinOptions, table)
            op.builtinOptions = o
        sg.operators.append(op)
    sg.inputs, sg.outputs = list(inputs), list(outputs)
    m.subgraphs = [sg]
    for _ in range(subgraphs - 1):
        extra = s.SubGraphT()
        extra.tensors, extra.operators, extra.inputs, extra.outputs = [], [], [], []
        m.subgraphs.append(extra)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
