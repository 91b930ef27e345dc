"""Rewrite .tflite files in tests with the flatbuffers object API.

Uses the schema module that ships inside the tflite-micro package (a test
dependency); the toolchain itself never writes flatbuffers.
"""

from __future__ import annotations

from typing import Any, Callable

import flatbuffers


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
