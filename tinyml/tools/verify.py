"""Bit-exactness check: generated firmware against TFLM on the same inputs.

``verify_model`` compiles the model for a board, runs N random inputs
through the firmware (one firmware run for all samples) and through TFLM,
and compares every output byte.  On a mismatch it re-runs the first failing
sample with a tracing build and names the first operator whose output
differs from TFLM's.

float32 outputs that float kernels computed (of float32 models: not those of
DEQUANTIZE in a mixed model, which stay bit-exact) are not promised bit-exact:
the float kernels follow TFLM's float reference kernels, but libm's expf/tanhf
differ between C libraries and the rounding of a sum may differ.  They are
compared within a tolerance instead, |ours - TFLM| <= FLOAT_RTOL x |TFLM| + FLOAT_ATOL
(1e-5 relative, with an absolute floor of 1e-6 for values near 0; NaN matches
NaN, an infinity only itself), and the report says "within tolerance".

A model with state (variable tensors kept between invocations: SVDF) runs
the samples as one sequence on both sides, its state carried from each
sample to the next, reset only before the sample indices given as
``resets`` (the firmware calls NAME_reset(), TFLM's interpreter reset()).

``validate_device`` is `tinyml validate`: the same comparison for a device
attached over the host link (tinyml.targets.hostlink) that runs firmware
compiled from the model, with what the device measured
(:class:`DeviceValidation`).
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tinyml.compiler import Compiled, build_model, write_project
from tinyml.errors import InputError, RunError
from tinyml.graph import load_tflite
from tinyml.graph.tflite_import import read_model_file
from tinyml.limits import check_samples, check_seed
from tinyml.resources import require_extras
from tinyml.graph.ir import NUMPY_DTYPES, Graph, Tensor
from tinyml.graph.validate import float_operator
from tinyml.targets.hostlink import DeviceInfo, DeviceMemory, HostLink, TensorInfo
from tinyml.targets.run import run_project
from tinyml.tools.reference import run_tflm_batch, tflm_intermediates


FLOAT_RTOL = 1e-5  # float32 outputs: the relative tolerance against TFLM's float kernels
FLOAT_ATOL = 1e-6  # and the absolute floor, for values near 0


@dataclass
class Mismatch:
    sample: int
    output: int
    differing: int  # number of differing elements in that output
    op_index: int | None = None
    op_kind: str | None = None
    tensor: str | None = None
    detail: str = ""


@dataclass
class VerifyReport:
    model: str
    board: str
    samples: int
    exact: int
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0
    # float32 outputs, compared within FLOAT_RTOL/FLOAT_ATOL (not bit-exact); their largest difference
    float_outputs: bool = False
    max_float_error: float = 0.0
    exact_outputs: bool = True  # some output is compared byte for byte
    sequence: bool = False  # a model with state: the samples ran as one sequence, state carried between them

    @property
    def ok(self) -> bool:
        return self.exact == self.samples

    def summary(self) -> str:
        if self.float_outputs:
            line = (f"{self.exact}/{self.samples} within tolerance ({self.model} on {self.board}; float32 outputs "
                    f"are not bit-exact: |ours - TFLM| <= {FLOAT_RTOL:g} x |TFLM| + {FLOAT_ATOL:g}, largest "
                    f"difference {self.max_float_error:.3g}{'; other outputs bit-exact' if self.exact_outputs else ''})")
        else:
            line = f"{self.exact}/{self.samples} bit-exact ({self.model} on {self.board})"
        if self.sequence:
            line += "; the samples ran as one sequence, state carried from each to the next"
        if self.mismatches:
            m = self.mismatches[0]
            where = (f"; first difference at operator {m.op_index} ({m.op_kind}, tensor '{m.tensor}')"
                     if m.op_index is not None else "")
            line += f"; sample {m.sample} output {m.output} differs in {m.differing} values{where}"
            if m.detail:
                line += f" ({m.detail})"
        return line


@dataclass
class DeviceValidation(VerifyReport):
    """`tinyml validate`: the comparison with TFLM on a device over the host link, and what the
    device measured while it ran."""

    cycles: list[int] = field(default_factory=list)  # per inference (the device's counter; 0 without one)
    op_cycles: list[int] = field(default_factory=list)  # per operator, of the last inference
    memory: DeviceMemory | None = None  # MEM after the last inference (revision-2 firmware), else None


def random_inputs(graph: Graph, n: int, seed: int) -> list[list[np.ndarray]]:
    """N samples of random inputs covering each input's full quantized range."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sample = []
        for t in graph.inputs:
            sample.append(random_tensor(graph.tensors[t], rng))
        out.append(sample)
    return out


def random_tensor(t: Tensor, rng: np.random.Generator) -> np.ndarray:
    if t.dtype == "int8":
        return rng.integers(-128, 128, size=t.shape, dtype=np.int8)
    if t.dtype == "int16":
        return rng.integers(-32768, 32768, size=t.shape, dtype=np.int16)
    if t.dtype == "uint8":
        return rng.integers(0, 256, size=t.shape, dtype=np.uint8)
    if t.dtype == "int32":
        return rng.integers(-1000, 1000, size=t.shape, dtype=np.int32)
    if t.dtype == "float32":
        return (rng.standard_normal(size=t.shape) * 2.0).astype(np.float32)
    raise InputError(f"cannot make random inputs of type {t.dtype} for input '{t.name}'")


def pack_samples(graph: Graph, samples: list[list[np.ndarray]]) -> bytes:
    parts = []
    for s in samples:
        for t, arr in zip(graph.inputs, s):
            ten = graph.tensors[t]
            a = np.ascontiguousarray(arr, dtype=NUMPY_DTYPES[ten.dtype])
            if a.size != ten.size:
                raise InputError(f"input '{ten.name}' needs {ten.size} values of shape {list(ten.shape)}, "
                                 f"got {a.size} of shape {list(a.shape)}")
            parts.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return b"".join(parts)


def split_outputs(raw: bytes, specs: list[tuple[str, tuple[int, ...]]], n: int) -> list[list[np.ndarray]]:
    """Cut the firmware's output.bin (n samples of little-endian outputs, back to back)
    into one array per (dtype, shape) spec per sample."""
    dtypes = [np.dtype(NUMPY_DTYPES[d]) for d, _ in specs]
    sizes = [int(np.prod(shape, dtype=np.int64)) for _, shape in specs]
    per_sample = sum(dt.itemsize * k for dt, k in zip(dtypes, sizes))
    if len(raw) != per_sample * n:
        raise RunError(f"the firmware wrote {len(raw)} output bytes for {n} samples, expected {per_sample * n}")
    out, pos = [], 0
    for _ in range(n):
        s = []
        for dt, k, (_, shape) in zip(dtypes, sizes, specs):
            a = np.frombuffer(raw, dtype=dt.newbyteorder("<"), count=k, offset=pos)
            s.append(a.reshape(shape).astype(dt))
            pos += dt.itemsize * k
        out.append(s)
    return out


def unpack_outputs(graph: Graph, raw: bytes, n: int) -> list[list[np.ndarray]]:
    return split_outputs(raw, [(graph.tensors[t].dtype, graph.tensors[t].shape) for t in graph.outputs], n)


def parse_trace(raw: bytes) -> list[tuple[int, bytes]]:
    records, pos = [], 0
    while pos + 8 <= len(raw):
        op, n = struct.unpack_from("<iI", raw, pos)
        pos += 8
        records.append((op, raw[pos:pos + n]))
        pos += n
    return records


# Operators that move or reorder float32 values without computing (their output is computed in float when
# their input is); PAD adds constants.
_MOVERS = frozenset({"RESHAPE", "SQUEEZE", "CONCATENATION", "PAD", "PADV2", "TRANSPOSE", "STRIDED_SLICE", "SLICE",
                     "SPLIT", "SPLIT_V", "PACK", "UNPACK", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH"})


def float_computed(graph: Graph) -> set[int]:
    """The float32 tensors that float kernels computed (compared within the tolerance): a float operator's
    outputs, except those of an operator that only moves values that are not float-computed (a RESHAPE after
    DEQUANTIZE stays bit-exact, as in a mixed model with float outputs)."""
    out: set[int] = set()
    for op in graph.ops:
        if not float_operator(graph, op):
            continue
        if op.kind in _MOVERS and not any(t in out for t in op.inputs if t >= 0):
            continue
        out.update(op.outputs)
    return out


def tolerant_outputs(graph: Graph) -> list[bool]:
    """Per model output: True when it is compared within the tolerance (a float-computed tensor)."""
    computed = float_computed(graph)
    return [t in computed for t in graph.outputs]


def same_output(a: np.ndarray, b: np.ndarray, tolerant: bool = False) -> bool:
    """Equal bytes; with ``tolerant``, float32 arrays within the tolerance (see the module docstring)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if tolerant and a.dtype == np.float32:
        return bool(np.all(_float_close(a, b)))
    return a.tobytes() == b.tobytes()


def _float_close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: within FLOAT_RTOL x |b| + FLOAT_ATOL, both NaN, or the same infinity."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(x - y) <= FLOAT_RTOL * np.abs(y) + FLOAT_ATOL
    return close | (np.isnan(x) & np.isnan(y)) | (np.isinf(x) & (x == y))


def float_error(a: np.ndarray, b: np.ndarray) -> float:
    """The largest |a - b| over the finite values of two float32 arrays of one shape (0 otherwise)."""
    if a.dtype != np.float32 or a.shape != b.shape or a.size == 0:
        return 0.0
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    d = d[np.isfinite(d)]
    return float(d.max()) if d.size else 0.0


def _differing(a: np.ndarray, b: np.ndarray, tolerant: bool) -> int:
    if a.shape != b.shape:
        return int(a.size)
    if tolerant and a.dtype == np.float32 and b.dtype == np.float32:
        return int(np.sum(~_float_close(a, b)))
    return int(np.sum(a != b))


def _compare(report: VerifyReport, tolerant: list[bool], ours: list[list[np.ndarray]],
             ref: list[list[Any]]) -> None:
    """Fill ``report`` (exact count, mismatches, the largest float difference) from the outputs."""
    for i, (a, b) in enumerate(zip(ours, ref)):
        pairs = [(x, np.asarray(y)) for x, y in zip(a, b)]
        report.max_float_error = max([report.max_float_error] +
                                     [float_error(x, y) for (x, y), tol in zip(pairs, tolerant) if tol])
        bad = [j for j, ((x, y), tol) in enumerate(zip(pairs, tolerant)) if not same_output(x, y, tol)]
        if not bad:
            report.exact += 1
            continue
        j = bad[0]
        report.mismatches.append(Mismatch(sample=i, output=j, differing=_differing(*pairs[j], tolerant[j])))


def verify_model(model: str | os.PathLike[str], board: str, *, samples: int = 10, seed: int = 0,
                 work_dir: str | os.PathLike[str] | None = None,
                 progress: Callable[[str], None] | None = None,
                 inputs: list[list[np.ndarray]] | None = None, sram: int | None = None,
                 resets: Sequence[int] = (), stream_input: bool = False) -> VerifyReport:
    require_extras("tinyml verify", "reference")
    if inputs is None:
        check_samples(samples)
        check_seed(seed)
    data = read_model_file(model)
    compiled = build_model(model, board, sram=sram, stream_input=stream_input)
    xs = inputs if inputs is not None else random_inputs(compiled.graph, samples, seed)
    return verify_compiled(compiled, data, xs, work_dir=work_dir, progress=progress, resets=resets)


def verify_compiled(compiled: Compiled, data: bytes, xs: list[list[np.ndarray]], *,
                    work_dir: str | os.PathLike[str] | None = None,
                    progress: Callable[[str], None] | None = None, resets: Sequence[int] = ()) -> VerifyReport:
    """Run the inputs ``xs`` through ``compiled`` (a firmware project, written to ``work_dir`` or a temporary
    directory) and through TFLM on the model's .tflite bytes ``data``, and compare every output byte (a
    model with state: the inputs as one sequence, reset before the sample indices ``resets``)."""
    require_extras("verifying against TFLM", "reference")
    say = progress or (lambda _m: None)
    graph = compiled.graph
    samples = len(xs)

    with tempfile.TemporaryDirectory(prefix="tinyml-verify-") as tmp:
        proj = Path(work_dir) if work_dir is not None else Path(tmp) / graph.name
        write_project(compiled.files, proj)
        say(f"compiled {graph.name} for {compiled.board.name}: {len(graph.ops)} operators, "
            f"arena {compiled.plan.arena_bytes} bytes")
        sequence = bool(graph.state_tensors())
        resets = sorted({int(k) for k in resets if 0 < int(k) < samples}) if sequence else []
        result = run_project(proj, pack_samples(graph, xs), timeout=max(120.0, 2.0 * samples), resets=resets)
        ours = unpack_outputs(graph, result.output, samples)
        say(f"ran {samples} samples on {compiled.board.name} in {result.seconds:.1f}s; running TFLM")
        ref = run_tflm_batch(data, xs, sequence=sequence, resets=resets)
        tolerant = tolerant_outputs(graph)
        report = VerifyReport(model=graph.name, board=compiled.board.name, samples=samples, exact=0,
                              seconds=result.seconds, float_outputs=any(tolerant),
                              exact_outputs=not all(tolerant), sequence=sequence)
        _compare(report, tolerant, ours, ref)
        if report.mismatches:
            first = report.mismatches[0]
            # a model with state: the samples since the last reset before it lead to its state
            start = max([0] + [k for k in resets if k <= first.sample]) if sequence else first.sample
            locate_mismatch(compiled, data, proj, xs[first.sample], first, before=xs[start:first.sample])
    return report


def locate_mismatch(compiled: Compiled, data: bytes, proj: Path, sample: list[np.ndarray], m: Mismatch,
                    before: Sequence[list[np.ndarray]] = ()) -> None:
    """Fill in the first operator output (any of an operator's outputs) that differs from TFLM's (of a model
    with state: in the invocation of ``sample`` after those of the samples ``before``)."""
    graph = compiled.graph
    result = run_project(proj, pack_samples(graph, [*before, sample]), trace=True)
    ref = tflm_intermediates(data, sample, before=before)
    computed = float_computed(graph)
    seen: dict[int, int] = {}  # op index -> its records so far: the k-th is its k-th output
    records = parse_trace(result.trace or b"")
    records = records[len(records) // (len(before) + 1) * len(before):]  # the last invocation's
    for op_index, raw in records:
        op = graph.ops[op_index]
        k = seen.get(op_index, 0)
        seen[op_index] = k + 1
        if k >= len(op.outputs) or op.outputs[k] not in ref:
            continue
        t = graph.tensors[op.outputs[k]]
        dtype = NUMPY_DTYPES.get(t.dtype, np.int8)
        expected = np.ascontiguousarray(ref[t.index]).astype(dtype).tobytes()
        if raw == expected:
            continue
        ours = np.frombuffer(raw[:len(raw) - len(raw) % np.dtype(dtype).itemsize], dtype=dtype)
        theirs = np.frombuffer(expected, dtype=dtype)
        tolerant = t.index in computed
        if not (tolerant and same_output(ours, theirs, True)):
            m.op_index, m.op_kind, m.tensor = op_index, op.kind, t.name
            if ours.size == theirs.size:
                close = _float_close(ours, theirs) if tolerant else ours == theirs
                e = int(np.argmax(~close))
                m.detail = f"element {e}: ours {ours[e]}, TFLM {theirs[e]}"
            return


# ---------------------------------------------------------------- on a device over the host link


def validate_device(model: str | os.PathLike[str], port: str, *, samples: int = 10, seed: int = 0,
                    baudrate: int = 115200, progress: Callable[[str], None] | None = None) -> DeviceValidation:
    """`tinyml validate`: random inputs through the model on the device
    attached at ``port`` (host-link firmware) and through TFLM; compares
    every output byte, and reports the cycles and memory the device measured."""
    say = progress or (lambda _m: None)
    check_samples(samples)
    check_seed(seed)
    path = Path(model)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the .tflite the device's firmware was compiled from")
    graph = load_tflite(path)
    start = time.monotonic()
    with HostLink(port, baudrate=baudrate) as link:
        info = link.info()
        say(f"device at {port}: model {info.model} on {info.board}, arena {info.arena_bytes} bytes, "
            f"{info.cpu_hz / 1e6:g} MHz, protocol {info.version}")
        check_device_matches(graph, info, path)
        xs = random_inputs(graph, samples, seed)
        ours, cycles = [], []
        for sample in xs:
            raw = [np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes() for a in sample]
            outs, c = link.run_bytes(raw)
            cycles.append(c)
            ours.append([np.frombuffer(o, dtype=np.dtype(NUMPY_DTYPES[t.dtype]).newbyteorder("<"))
                         .reshape(t.shape) for o, t in zip(outs, info.outputs)])
        profile = link.profile()
        memory = link.mem() if info.revision >= 2 else None
    seconds = time.monotonic() - start
    say(f"ran {samples} samples on the device in {seconds:.1f}s; running TFLM")
    sequence = bool(graph.state_tensors())  # the device carries a model's state from one sample to the next
    ref = run_tflm_batch(read_model_file(path), xs, sequence=sequence)
    tolerant = tolerant_outputs(graph)
    report = DeviceValidation(model=graph.name, board=info.board, samples=samples, exact=0, seconds=seconds,
                              cycles=cycles, op_cycles=profile, memory=memory, float_outputs=any(tolerant),
                              exact_outputs=not all(tolerant), sequence=sequence)
    _compare(report, tolerant, [[x.astype(_np_of(y)) for x, y in zip(a, b)] for a, b in zip(ours, ref)], ref)
    return report


def _np_of(y: object) -> type:
    return np.asarray(y).dtype.type


def check_device_matches(graph: Graph, info: DeviceInfo, path: Path) -> None:
    """InputError unless the device's model has ``graph``'s input and output shapes."""

    def shapes(ts: list[TensorInfo]) -> list[tuple[int, ...]]:
        return [tuple(t.shape) for t in ts]

    ours_in = [tuple(graph.tensors[t].shape) for t in graph.inputs]
    ours_out = [tuple(graph.tensors[t].shape) for t in graph.outputs]
    if shapes(info.inputs) != ours_in or shapes(info.outputs) != ours_out:
        raise InputError(
            f"the device runs model '{info.model}' with inputs {shapes(info.inputs)} and outputs "
            f"{shapes(info.outputs)}, but {path} has inputs {ours_in} and outputs {ours_out}; flash the "
            f"firmware compiled from {path} (tinyml compile, then tinyml flash)")

