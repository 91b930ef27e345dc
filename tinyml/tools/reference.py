"""The bit-exactness oracle: run a ``.tflite`` model in TensorFlow Lite Micro.

TFLM is used through the ``tflite_micro`` Python package, whose interpreter
runs TFLM's portable reference kernels (the arithmetic our generated C must
match bit for bit).  Everything here imports ``tflite_micro`` lazily, so the
rest of tinyml works without it.

What the installed ``tflite_micro`` Python API offers (and what this module
relies on):

* ``runtime.Interpreter.from_bytes(model, arena_size=N, intrepreter_config=...)``
  allocates (``AllocateTensors``) in the constructor and raises
  ``RuntimeError`` when that fails.  With an arena that is far too small the
  C++ side can crash the process (SIGSEGV) instead, which is why
  :func:`tflm_arena_bytes` probes sizes in a child process.
* ``InterpreterConfig.kAllocationRecording`` (default) uses TFLM's normal
  memory planner (tensors share arena space) and records allocations;
  ``print_allocations()`` dumps them on stderr.  ``GetTensor`` is refused.
* ``InterpreterConfig.kPreserveAllTensors`` gives every tensor its own arena
  space, so after ``invoke()`` ``GetTensor(tensor_index, subgraph_index)``
  returns ``{"dtype", "shape", "tensor_data"}`` for any tensor: that is how
  :func:`tflm_intermediates` reads every operator output.  (The arena then
  holds all activations at once; it says nothing about real memory use.)
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tinyml.errors import ModelError, TinymlError
from tinyml.targets.process import run_process

__all__ = [
    "TensorInfo",
    "tflm_io_details",
    "run_tflm",
    "run_tflm_batch",
    "tflm_intermediates",
    "tflm_arena_bytes",
]

_ALIGN = 16


@dataclass(frozen=True)
class TensorInfo:
    """Shape, dtype and quantization of one model input or output."""

    index: int  # subgraph tensor index
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: tuple[float, ...]  # empty if not quantized
    zero_point: tuple[int, ...]
    position: int = -1  # an input: its position among the subgraph's inputs (TFLM's input index)


# --------------------------------------------------------------------------
# tflite_micro access


def _runtime() -> Any:
    """Import ``tflite_micro.runtime`` or explain how to install it."""
    try:
        from tflite_micro import runtime
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise TinymlError(
            f"the TFLM reference needs the 'tflite-micro' Python package ({exc}); "
            "install it with: pip install tflite-micro"
        ) from exc
    return runtime


def _model_object(model: bytes) -> Any:
    """The model as a flatbuffer object tree (tflite_micro's own schema)."""
    rt = _runtime()
    try:
        obj = rt.convert_bytearray_to_object(bytearray(model))
    except Exception as exc:
        raise ModelError(f"not a valid .tflite flatbuffer ({type(exc).__name__}: {exc})") from exc
    if not obj.subgraphs:
        raise ModelError("the .tflite model has no subgraph")
    return obj


_NP_TYPES = {
    0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
    6: np.bool_, 7: np.int16, 9: np.int8, 10: np.float64, 12: np.uint64,
    15: np.uint32, 16: np.uint16,
}


def _tensor_nbytes(tensor: Any) -> int:
    shape = [] if tensor.shape is None else [int(d) for d in tensor.shape]
    itemsize = np.dtype(_NP_TYPES.get(tensor.type, np.int32)).itemsize
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    return n * itemsize


def _is_constant(model_obj: Any, tensor: Any) -> bool:
    buf = model_obj.buffers[tensor.buffer] if tensor.buffer < len(model_obj.buffers) else None
    if buf is None:
        return False
    has_data = buf.data is not None and len(buf.data) > 0
    return bool(has_data or (getattr(buf, "size", 0) or 0) > 0)


def _op_outputs(model_obj: Any) -> list[int]:
    """Indices of tensors written by an operator of subgraph 0, in execution order."""
    out: list[int] = []
    for op in model_obj.subgraphs[0].operators or []:
        for t in op.outputs if op.outputs is not None else []:
            t = int(t)
            if t >= 0 and t not in out:
                out.append(t)
    return out


def _default_arena(model_obj: Any, preserve_all: bool) -> int:
    """A generous arena size: every activation at once, plus room for TFLM's bookkeeping."""
    sg = model_obj.subgraphs[0]
    acts = sum(
        _tensor_nbytes(t) + _ALIGN for t in sg.tensors if not _is_constant(model_obj, t)
    )
    n_ops = len(sg.operators or [])
    overhead = 64 * 1024 + 512 * (len(sg.tensors) + n_ops)
    return (2 if preserve_all else 1) * acts + overhead


def _interpreter(model: bytes, arena: int | None, preserve_all: bool) -> Any:
    rt = _runtime()
    obj = _model_object(model)
    size = arena if arena is not None else _default_arena(obj, preserve_all)
    config = (
        rt.InterpreterConfig.kPreserveAllTensors
        if preserve_all
        else rt.InterpreterConfig.kAllocationRecording
    )
    last: Exception | None = None
    for _ in range(4 if arena is None else 1):
        try:
            return rt.Interpreter.from_bytes(
                bytes(model), arena_size=size, intrepreter_config=config
            )
        except RuntimeError as exc:  # allocation or Prepare failed
            last = exc
            size *= 4
    raise TinymlError(
        f"TFLM could not prepare the model ({last}); its messages on stderr say which "
        "operator failed: the model probably uses an operator or a parameter TFLM does not support"
    )


def tflm_io_details(model: bytes) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Inputs and outputs of the model's main subgraph, in declared order; an input that is a variable tensor
    is state TFLM keeps between invocations, not data a caller gives, and is left out (as the importer
    leaves it out of Graph.inputs)."""
    obj = _model_object(model)
    sg = obj.subgraphs[0]

    def info(i: int, position: int = -1) -> TensorInfo:
        t = sg.tensors[i]
        q = t.quantization
        scale = tuple(float(s) for s in q.scale) if q is not None and q.scale is not None else ()
        zp = tuple(int(z) for z in q.zeroPoint) if q is not None and q.zeroPoint is not None else ()
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        return TensorInfo(
            index=int(i),
            name=name,
            shape=tuple(int(d) for d in t.shape) if t.shape is not None else (),
            dtype=np.dtype(_NP_TYPES.get(t.type, np.int8)),
            scale=scale,
            zero_point=zp,
            position=position,
        )

    ins = [info(int(i), k) for k, i in enumerate(sg.inputs if sg.inputs is not None else [])
           if not sg.tensors[int(i)].isVariable]
    outs = [info(int(i)) for i in (sg.outputs if sg.outputs is not None else [])]
    return ins, outs


def _set_inputs(interp: Any, infos: list[TensorInfo], inputs: Sequence[np.ndarray]) -> None:
    if len(inputs) != len(infos):
        raise TinymlError(
            f"the model has {len(infos)} input(s) but {len(inputs)} array(s) were given; "
            "pass one array per model input, in the model's input order"
        )
    for k, (info, arr) in enumerate(zip(infos, inputs)):
        a = np.asarray(arr)
        if a.dtype != info.dtype:
            raise TinymlError(
                f"input {k} ('{info.name}') must have dtype {info.dtype}, got {a.dtype}; "
                "quantize the data first or pass the model's declared dtype"
            )
        if tuple(a.shape) != info.shape:
            if a.size == int(np.prod(info.shape, dtype=np.int64)):
                a = a.reshape(info.shape)
            else:
                raise TinymlError(
                    f"input {k} ('{info.name}') must have shape {info.shape}, got {tuple(a.shape)}"
                )
        interp.set_input(np.ascontiguousarray(a), info.position if info.position >= 0 else k)


def _invoke(interp: Any) -> None:
    try:
        interp.invoke()
    except RuntimeError as exc:
        raise TinymlError(f"TFLM failed to invoke the model ({exc}); see TFLM's messages on stderr") from exc


def _outputs(interp: Any, n: int) -> list[np.ndarray]:
    return [np.array(interp.get_output(k), copy=True) for k in range(n)]


# --------------------------------------------------------------------------
# public API


def run_tflm(model: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run one sample through TFLM and return the outputs (declared order and dtype)."""
    return run_tflm_batch(model, [inputs])[0]


def run_tflm_batch(
    model: bytes, samples: Sequence[Sequence[np.ndarray]], *, sequence: bool = False,
    resets: Sequence[int] = (),
) -> list[list[np.ndarray]]:
    """Run several samples through one TFLM interpreter; one output list per sample.

    The interpreter is reset before every sample, so stateful models see each
    sample as if it were the first; with ``sequence`` the samples are one
    sequence of invocations instead (a stateful model keeps its variable tensors
    from one to the next), reset only before the sample indices ``resets``.
    """
    ins, outs = tflm_io_details(model)
    interp = _interpreter(model, None, preserve_all=False)
    results: list[list[np.ndarray]] = []
    for k, sample in enumerate(samples):
        if not sequence or k in resets:
            interp.reset()
        _set_inputs(interp, ins, sample)
        _invoke(interp)
        results.append(_outputs(interp, len(outs)))
    return results


def tflm_intermediates(model: bytes, inputs: Sequence[np.ndarray],
                       before: Sequence[Sequence[np.ndarray]] = ()) -> dict[int, np.ndarray]:
    """Every tensor written by an operator, keyed by subgraph-0 tensor index, after one invoke (after the
    invokes of the samples ``before``, which leave a stateful model's state as a sequence would).

    The model inputs are not included (no operator writes them); the model
    outputs are.  Values have the tensor's dtype and shape.
    """
    obj = _model_object(model)
    produced = _op_outputs(obj)
    ins, _ = tflm_io_details(model)
    interp = _interpreter(model, None, preserve_all=True)
    for sample in before:
        _set_inputs(interp, ins, sample)
        _invoke(interp)
    _set_inputs(interp, ins, inputs)
    _invoke(interp)
    result: dict[int, np.ndarray] = {}
    for idx in produced:
        try:
            t = interp.GetTensor(idx, 0)
        except RuntimeError as exc:
            raise TinymlError(f"TFLM did not expose tensor {idx} ({exc})") from exc
        data = np.array(t["tensor_data"], copy=True)
        shape = tuple(int(d) for d in t["shape"])
        result[idx] = data.reshape(shape) if data.size == int(np.prod(shape, dtype=np.int64)) else data
    return result


# The child process that probes arena sizes.  It reads the model from a file,
# bisects between argv bounds and reports every step on stdout, so that the
# parent can continue if a probe crashes the process.
_PROBE = r"""
import sys
import numpy as np
from tflite_micro import runtime as rt

path, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = open(path, "rb").read()
ins = []
for arg in sys.argv[4:]:
    dtype, shape = arg.split(":")
    ins.append((np.dtype(dtype), tuple(int(x) for x in shape.split(",") if x)))

def ok(n):
    try:
        it = rt.Interpreter.from_bytes(model, arena_size=n)
    except RuntimeError:
        return False
    try:
        for k, (d, s) in enumerate(ins):
            it.set_input(np.zeros(s, d), k)
        it.invoke()
    except RuntimeError:
        return False
    return True

while lo + 1 < hi:          # invariant: lo fails (or is 0), hi works
    mid = (lo + hi) // 2
    print("try", mid, flush=True)
    if ok(mid):
        hi = mid
        print("ok", mid, flush=True)
    else:
        lo = mid
        print("fail", mid, flush=True)
print("done", hi, flush=True)
"""


def tflm_arena_bytes(model: bytes, *, timeout: float = 600.0) -> int:
    """The smallest ``arena_size`` with which TFLM allocates and invokes the model.

    TFLM's normal (greedy) memory planner is used, as on a device.  The
    figure includes TFLM's own persistent data (tensor structs, per-channel
    quantization data, node registrations, the allocator itself) and depends
    on the arena start being 16-byte aligned (malloc on 64-bit hosts).  The
    Python package uses the recording allocator, a few hundred bytes bigger
    than the plain one on a device.

    Bisection runs in a child process because TFLM may crash the process
    (rather than fail cleanly) when the arena is tiny.
    """
    obj = _model_object(model)
    ins, _ = tflm_io_details(model)
    hi = _default_arena(obj, preserve_all=False)
    # Make sure the upper bound works (in-process: a big arena never crashes).
    for _ in range(6):
        try:
            interp = _interpreter(model, hi, preserve_all=False)
            _set_inputs(interp, ins, [np.zeros(i.shape, i.dtype) for i in ins])
            _invoke(interp)
            break
        except TinymlError:
            hi *= 4
    else:
        raise TinymlError("TFLM cannot run the model with any arena size tried (up to "
                          f"{hi} bytes); see TFLM's messages on stderr")
    lo = 0
    args = [f"{i.dtype.name}:{','.join(str(d) for d in i.shape)}" for i in ins]
    with tempfile.TemporaryDirectory(prefix="tinyml-arena-") as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(model)
        for _ in range(64):  # restarts after crashes
            if lo + 1 >= hi:
                return hi
            proc = run_process(
                [sys.executable, "-c", _PROBE, path, str(lo), str(hi), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            trying: int | None = None
            for line in proc.stdout.splitlines():
                word, _, num = line.partition(" ")
                if word == "try":
                    trying = int(num)
                elif word == "ok":
                    hi, trying = int(num), None
                elif word == "fail":
                    lo, trying = int(num), None
                elif word == "done":
                    return int(num)
            if trying is None:
                raise TinymlError(
                    "the TFLM arena probe failed without a result: "
                    + (proc.stderr.strip().splitlines() or ["no message"])[-1]
                )
            lo = trying  # the probe crashed at this size: it does not work
    raise TinymlError("the TFLM arena probe crashed too often; giving up")
