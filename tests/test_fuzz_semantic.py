"""Structure-aware fuzzing: one semantic field of a small valid int8 or float32 model changed at a time.

Next to the byte-level fuzz test (tests/test_import.py), which breaks the
flatbuffer, this one keeps the file well formed and changes one meaningful
number through the flatbuffer object API (tests/tflite_edit.py): a scale, a
zero point, a bias or weight value, an option (stride, dilation, depth
multiplier, padding, fused activation, filter size, axis, beta, alpha), an
operand index (-1, out of range, another tensor, one more or one fewer, two
swapped), a tensor type (every TensorType), a shape, a tensor's quantization
(removed), an operator's opcode (another supported operator, or DIV, which
we do not support; the options stay) or a tensor made variable (state: an
input, an activation or a constant).  The seeds are one or
two models per supported operator (tests/modelgen.py).

For every mutant the compile for the host must either refuse it with a
one-line TinymlError or accept it; every accepted mutant is built with the
host board's AddressSanitizer and UBSan (at -O0, which builds in 0.6 s against
0.85 s at -O1; one build per distinct generated project, objects reused where
make would compile the same input), run on random inputs, and compared with
TFLM, which runs in a child process (it may crash on what it does not check).  The bar: no
traceback, no hang, no sanitizer finding, and every accepted model
bit-exact with TFLM (float32 outputs within verify's tolerance); a model TFLM refuses must be refused by us
too.

``TINYML_FUZZ_CASES`` sets the number of mutants (default 250, the
``make test`` run); ``make fuzz`` runs 5,000.  ``TINYML_FUZZ_SEED`` changes
the seed.  The summary (counts, refusals by reason, time) is printed.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import math
import multiprocessing
import os
import re
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tests.modelgen import build, float_cases, op_cases
from tests.tflite_edit import edit_model, set_opcode
from tinyml.boards import load_board
from tinyml.codegen.ops import supported_ops
from tinyml.compiler import build_model, write_project
from tinyml.errors import TinymlError
from tinyml.targets.run import run_project
from tinyml.tools.verify import pack_samples, random_inputs, same_output, tolerant_outputs, unpack_outputs

DEFAULT_CASES = 250
SAMPLES = 3
CASE_TIMEOUT = 30.0  # seconds for compiling one mutant, or for TFLM on it

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
SCALES = (0.0, -1.0, math.nan, math.inf, -math.inf, 1e38, 1e-38, 1e-45, 1e-10, 1e10)
SCALE_FACTORS = (1e-6, 1e6, 2.0 ** -30, 2.0 ** 30, 0.5, 2.0, 256.0, 1.0 / 256.0)
ZERO_POINTS = (-129, 128, -128, 127, 255, 256, -1, 1, INT32_MAX, INT32_MIN, (1 << 40))
INT32S = (0, -1, 1, 2, 3, 5, 65536, 1 << 24, INT32_MAX, INT32_MIN)
FLOATS = (0.0, -1.0, 1e-30, 1e30, math.nan, math.inf, -math.inf, 0.5, 2.0)
TENSOR_TYPES = tuple(range(23))
OPTION_FIELDS = ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "depthMultiplier", "filterHeight",
                 "filterWidth", "axis", "weightsFormat",
                 # data movement
                 "beginMask", "endMask", "shrinkAxisMask", "ellipsisMask", "newAxisMask", "numSplits", "valuesCount",
                 "num", "blockSize")
ENUM_FIELDS = {"padding": (0, 1, 2, 7), "fusedActivationFunction": tuple(range(7)),
               "keepDims": (0, 1), "keepNumDims": (0, 1)}
FLOAT_FIELDS = ("beta", "alpha")
OPCODES = (*sorted(supported_ops()), "DIV")


# ---------------------------------------------------------------------------
# Seeds and mutations.


def seed_cases() -> list[Any]:
    """One model per supported operator, two (per-channel and per-tensor) for the weighted ones; then the float32
    models hello_world and the float CNN (every float operator)."""
    out = []
    for op in supported_ops():
        cases = op_cases(op)
        out.append(cases[0])
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"):
            other = [c for c in cases if c.per_channel != cases[0].per_channel]
            out.extend(other[:1])
    return out + float_cases()[:2]


Mutation = tuple[str, Callable[[Any, Any], None]]


def _pick(rng: np.random.Generator, seq: Any) -> Any:
    return seq[int(rng.integers(0, len(seq)))]


def _set_vector(vec: Any, k: int, value: Any, dtype: Any) -> Any:
    arr = np.array(vec, dtype=dtype).reshape(-1)
    arr[k] = value
    return arr


def _set_tensor(i: int, attr: str, value: Any) -> Callable[[Any, Any], None]:
    """An editor setting field ``attr`` of tensor ``i`` to ``value``."""
    return lambda mm, ss: setattr(mm.subgraphs[0].tensors[i], attr, value)


def mutation(m: Any, s: Any, rng: np.random.Generator) -> Mutation | None:
    """A description and an editor of one semantic change of model object ``m`` (None: no target)."""
    sg = m.subgraphs[0]
    tensors, ops = sg.tensors, sg.operators
    family = _pick(rng, ("scale", "zero_point", "bias", "weights", "option", "operand", "type", "shape",
                         "quant_dim", "no_quant", "opcode", "variable"))
    quantized = [i for i, t in enumerate(tensors) if t.quantization is not None and t.quantization.scale is not None
                 and len(t.quantization.scale) > 0]

    def const_of(dtype: int) -> list[int]:
        return [i for i, t in enumerate(tensors) if t.type == dtype and m.buffers[t.buffer].data is not None
                and len(m.buffers[t.buffer].data) > 0]

    if family == "scale" and quantized:
        i = _pick(rng, quantized)
        q = tensors[i].quantization
        k = int(rng.integers(0, len(q.scale)))
        old = float(q.scale[k])
        value = _pick(rng, SCALES) if rng.random() < 0.5 else old * _pick(rng, SCALE_FACTORS)

        def f(mm: Any, ss: Any) -> None:
            qq = mm.subgraphs[0].tensors[i].quantization
            qq.scale = _set_vector(qq.scale, k, value, np.float32)
        return f"tensor {i} scale[{k}] {old:g} -> {value:g}", f
    if family == "zero_point" and quantized:
        i = _pick(rng, quantized)
        q = tensors[i].quantization
        n = len(q.zeroPoint) if q.zeroPoint is not None else 0
        k = int(rng.integers(0, max(n, 1)))
        value = _pick(rng, ZERO_POINTS)

        def f(mm: Any, ss: Any) -> None:
            qq = mm.subgraphs[0].tensors[i].quantization
            zp = qq.zeroPoint if qq.zeroPoint is not None and len(qq.zeroPoint) else [0]
            qq.zeroPoint = _set_vector(zp, k, value, np.int64)
        return f"tensor {i} zero_point[{k}] -> {value}", f
    if family in ("bias", "weights"):
        dtype, np_dtype, values = ((s.TensorType.INT32, np.int32, (INT32_MIN, INT32_MAX, INT32_MAX // 2, -(1 << 24)))
                                   if family == "bias" else (s.TensorType.INT8, np.int8, (-128, 127)))
        targets = const_of(dtype)
        if not targets:
            return None
        i = _pick(rng, targets)
        value = _pick(rng, values)
        whole = rng.random() < 0.3
        pos = int(rng.integers(0, 1 << 30))

        def f(mm: Any, ss: Any) -> None:
            buf = mm.buffers[mm.subgraphs[0].tensors[i].buffer]
            arr = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype=np_dtype).copy()
            if whole:
                arr[:] = value
            else:
                arr[pos % arr.size] = value
            buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8).copy()
        return f"tensor {i} {family} {'all' if whole else 'one'} -> {value}", f
    if family == "option":
        with_opts = [j for j, o in enumerate(ops) if o.builtinOptions is not None]
        if not with_opts:
            return None
        j = _pick(rng, with_opts)
        opts = ops[j].builtinOptions
        fields = [a for a in OPTION_FIELDS + tuple(ENUM_FIELDS) + FLOAT_FIELDS if hasattr(opts, a)]
        if not fields:
            return None
        name = _pick(rng, fields)
        if name in ENUM_FIELDS:
            value: Any = _pick(rng, ENUM_FIELDS[name])
            if name in ("keepDims", "keepNumDims"):
                value = bool(value)
        elif name in FLOAT_FIELDS:
            value = _pick(rng, FLOATS)
        else:
            value = _pick(rng, INT32S)
            if name == "weightsFormat":
                value = int(value) & 0x7F

        def f(mm: Any, ss: Any) -> None:
            setattr(mm.subgraphs[0].operators[j].builtinOptions, name, value)
        return f"operator {j} {name} -> {value}", f
    if family == "operand":
        j = int(rng.integers(0, len(ops)))
        which = _pick(rng, ("inputs", "outputs"))
        how = _pick(rng, ("absent", "out_of_range", "other", "drop", "append", "swap"))
        n_t = len(tensors)
        other = int(rng.integers(0, n_t))
        k_raw = int(rng.integers(0, 1 << 30))

        def f(mm: Any, ss: Any) -> None:
            o = mm.subgraphs[0].operators[j]
            lst = [int(x) for x in (getattr(o, which) if getattr(o, which) is not None else [])]
            if not lst and how not in ("append",):
                lst = [0]
            k = k_raw % max(len(lst), 1)
            if how == "absent":
                lst[k] = -1
            elif how == "out_of_range":
                lst[k] = n_t
            elif how == "other":
                lst[k] = other
            elif how == "drop":
                del lst[k]
            elif how == "append":
                lst.append(other)
            elif len(lst) > 1:
                lst[0], lst[-1] = lst[-1], lst[0]
            setattr(o, which, np.asarray(lst, dtype=np.int32))
        return f"operator {j} {which} {how}", f
    if family == "type":
        i = int(rng.integers(0, len(tensors)))
        value = _pick(rng, TENSOR_TYPES)
        return f"tensor {i} type -> {value}", _set_tensor(i, "type", value)
    if family == "shape":
        i = int(rng.integers(0, len(tensors)))
        shape = [int(d) for d in (tensors[i].shape if tensors[i].shape is not None else [])]
        how = _pick(rng, ("dim", "rank_up", "rank_down"))
        if how == "dim" and shape:
            k = int(rng.integers(0, len(shape)))
            shape[k] = _pick(rng, (0, 1, shape[k] + 1, max(shape[k] - 1, 0), 2 * shape[k], INT32_MAX, -1))
        elif how == "rank_up":
            shape.insert(0, 1)
        elif shape:
            shape = shape[1:]
        return f"tensor {i} shape -> {shape}", _set_tensor(i, "shape", np.asarray(shape, dtype=np.int32))
    if family == "quant_dim" and quantized:
        i = _pick(rng, quantized)
        value = _pick(rng, (0, 1, 2, 3, 4, -1))
        drop = rng.random() < 0.5

        def f(mm: Any, ss: Any) -> None:
            qq = mm.subgraphs[0].tensors[i].quantization
            if drop and len(qq.scale) > 1:
                qq.scale = np.asarray(qq.scale, dtype=np.float32)[:-1]
                qq.zeroPoint = np.asarray(qq.zeroPoint, dtype=np.int64)[:-1]
            else:
                qq.quantizedDimension = value
        return f"tensor {i} {'one scale fewer' if drop else f'quantized_dimension -> {value}'}", f
    if family == "no_quant" and quantized:
        i = _pick(rng, quantized)
        return f"tensor {i} quantization removed", _set_tensor(i, "quantization", None)
    if family == "opcode":
        j = int(rng.integers(0, len(ops)))
        name = _pick(rng, OPCODES)
        return f"operator {j} opcode -> {name}", lambda mm, ss: set_opcode(mm, ss, j, name)
    if family == "variable":  # state TFLM keeps between invocations (an input, an activation, a constant)
        i = int(rng.integers(0, len(tensors)))
        return f"tensor {i} is_variable -> True", _set_tensor(i, "isVariable", True)
    return None


def mutants(models: list[bytes], n: int, seed: int, encode: bool = True):
    """``n`` (seed index, description, mutant bytes), deterministic in ``seed``
    (``encode=False``: the descriptions only, with None for the bytes)."""
    from tests.tflite_edit import schema

    s = schema()
    objs = [s.ModelT.InitFromObj(s.Model.GetRootAsModel(bytearray(m), 0)) for m in models]  # read, never changed
    rng = np.random.default_rng(seed)
    made = 0
    while made < n:
        k = made % len(models)
        mut = mutation(objs[k], s, rng)
        if mut is None:
            continue
        what, fn = mut
        data = edit_model(models[k], fn) if encode else None
        made += 1
        yield k, what, data


# ---------------------------------------------------------------------------
# TFLM in a child process.


def _tflm_child(model: bytes, samples: list[list[np.ndarray]], sequence: bool = False) -> tuple[str, Any]:
    from tinyml.tools.reference import run_tflm_batch

    try:
        return "ok", run_tflm_batch(model, samples, sequence=sequence)
    except (RuntimeError, TinymlError, ValueError) as e:
        return "refused", " ".join(str(e).split())[:200]


class Tflm:
    """TFLM in a worker process, restarted after a crash or a hang."""

    def __init__(self) -> None:
        self.pool: cf.ProcessPoolExecutor | None = None

    def run(self, model: bytes, samples: list[list[np.ndarray]], sequence: bool = False) -> tuple[str, Any]:
        """TFLM's outputs of ``samples`` (``sequence``: one sequence of invokes, state carried, as the firmware
        runs a model with state)."""
        if self.pool is None:
            self.pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        fut = self.pool.submit(_tflm_child, model, samples, sequence)
        try:
            return fut.result(timeout=CASE_TIMEOUT)
        except cf.process.BrokenProcessPool:
            self.close()
            return "crashed", "TFLM crashed"
        except cf.TimeoutError:
            self.close()
            return "crashed", "TFLM hung"
        except Exception as e:  # noqa: BLE001 - the Python side of TFLM failed on this model
            return "failed", f"{type(e).__name__}: {e}"

    def close(self) -> None:
        if self.pool is not None:
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.kill()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


# ---------------------------------------------------------------------------
# The run.


class ObjectCache:
    """Object files of earlier host builds, reused where make would compile the same input: the key
    is the source, the Makefile (flags) and every header the compiler read for it (from its .d
    file).  Most mutants change model.c only, and the kernels take the longest to compile."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.deps: dict[str, list[set[str]]] = {}  # source digest -> the header sets seen with it
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _digest(proj: Path, files: list[str]) -> str:
        h = hashlib.sha256()
        for f in files:
            p = proj / f
            h.update(f.encode() + b"\0" + (p.read_bytes() if p.is_file() else b"-"))
        return h.hexdigest()

    def _sources(self, proj: Path) -> list[str]:
        return [str(c.relative_to(proj)) for c in sorted(proj.glob("*.c")) + sorted(proj.glob("runtime/*.c"))]

    def restore(self, proj: Path) -> None:
        for src in self._sources(proj):
            for deps in self.deps.get(self._digest(proj, [src, "Makefile"]), []):
                obj = self.root / (self._digest(proj, [src, "Makefile", *sorted(deps)]) + ".o")
                if obj.is_file():
                    dst = proj / "build" / "obj" / Path(src).with_suffix(".o")
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(obj.with_suffix(".d"), dst.with_suffix(".d"))
                    shutil.copyfile(obj, dst)
                    break

    def store(self, proj: Path) -> None:
        for src in self._sources(proj):
            o = proj / "build" / "obj" / Path(src).with_suffix(".o")
            if not o.is_file():
                continue
            rule = o.with_suffix(".d").read_text().split("\n\n")[0].split(":", 1)[1]
            deps = {d for d in rule.replace("\\\n", " ").split() if d != src}
            known = self.deps.setdefault(self._digest(proj, [src, "Makefile"]), [])
            if deps not in known:
                known.append(deps)
            obj = self.root / (self._digest(proj, [src, "Makefile", *sorted(deps)]) + ".o")
            if not obj.is_file():
                shutil.copyfile(o.with_suffix(".d"), obj.with_suffix(".d"))
                shutil.copyfile(o, obj)


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:  # pragma: no cover - only on a hang
    raise _Timeout()


def _reason(e: TinymlError) -> str:
    """A refusal's kind: the error class and the message without numbers and names."""
    msg = re.sub(r"^\S*\.tflite: ", "", str(e))
    msg = re.sub(r"'[^']*'", "'…'", msg)
    msg = re.sub(r"-?\d[\d.e+-]*|nan|inf", "N", msg)
    msg = re.sub(r"operator N \(([A-Z_0-9]+)\)", r"\1", msg)
    return f"{type(e).__name__}: {msg[:90]}"


@dataclasses.dataclass
class FuzzStats:
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    builds: int = 0
    reasons: Counter = dataclasses.field(default_factory=Counter)
    findings: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    times: Counter = dataclasses.field(default_factory=Counter)  # seconds per stage

    def summary(self) -> str:
        exact = ("all bit-exact with TFLM (float-computed outputs within tolerance)" if not self.findings
                 else "see the findings")
        lines = [f"semantic fuzz: {self.cases} mutants in {self.seconds:.0f} s: {self.accepted} accepted "
                 f"({self.builds} distinct host builds, {exact}), {self.refused} refused, "
                 f"{len(self.findings)} findings; seconds: "
                 + ", ".join(f"{k} {v:.0f}" for k, v in self.times.items())]
        lines += [f"  {n:5d}  {r}" for r, n in self.reasons.most_common(40)]
        lines += [f"  FINDING: {f}" for f in self.findings[:30]]
        return "\n".join(lines)


def run_fuzz(n: int, seed: int, work: Path) -> FuzzStats:
    cases = seed_cases()
    models = [build(c) for c in cases]
    board = load_board("host")
    board = dataclasses.replace(board, cflags=tuple(board.cflags) + ("-O0",))
    stats = FuzzStats()
    built: dict[str, Path] = {}
    objects = ObjectCache(work / "objects")
    tflm = Tflm()
    start = time.monotonic()

    def finding(what: str) -> None:
        stats.findings.append(what)
        print(f"FINDING: {what}", flush=True)

    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for k, what, data in mutants(models, n, seed):
            stats.cases += 1
            if stats.cases % 500 == 0:
                print(f"semantic fuzz: {stats.cases}/{n} after {time.monotonic() - start:.0f} s, {stats.accepted} "
                      f"accepted, {len(stats.findings)} findings", flush=True)
            where = f"mutant {stats.cases - 1} of {cases[k].id}: {what}"
            path = work / "mutant.tflite"
            path.write_bytes(data)
            t0 = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT)
            try:
                compiled = build_model(path, board, name="fz")
            except TinymlError as e:
                stats.refused += 1
                stats.reasons[_reason(e)] += 1
                if "\n" in str(e) or not str(e):
                    finding(f"{where}: refusal is not one line: {e!r}")
                continue
            except _Timeout:
                finding(f"{where}: the compile hung")
                continue
            except Exception as e:  # noqa: BLE001 - a traceback is the finding
                finding(f"{where}: {type(e).__name__}: {e}")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                stats.times["compile"] += time.monotonic() - t0
            stats.accepted += 1
            graph = compiled.graph
            xs = random_inputs(graph, SAMPLES, stats.cases)
            key = hashlib.sha256(repr(sorted((f, c) for f, c in compiled.files.items()
                                             if f != "project.json")).encode()).hexdigest()
            proj = built.get(key)
            if proj is None:
                proj = work / f"p{len(built)}"
                write_project(compiled.files, proj)
                objects.restore(proj)
                built[key] = proj
                stats.builds += 1
            t0 = time.monotonic()
            try:
                result = run_project(proj, pack_samples(graph, xs), timeout=CASE_TIMEOUT)
                objects.store(proj)
                ours = unpack_outputs(graph, result.output, SAMPLES)
            except TinymlError as e:
                finding(f"{where}: the host build failed or found undefined behaviour: {e}")
                continue
            t1 = time.monotonic()
            stats.times["build and run"] += t1 - t0
            status, ref = tflm.run(data, xs, sequence=bool(graph.state_tensors()))
            stats.times["TFLM"] += time.monotonic() - t1
            if status != "ok":
                finding(f"{where}: accepted, but TFLM {status} ({ref})")
                continue
            for i, (a, b) in enumerate(zip(ours, ref)):
                same = all(same_output(x, np.asarray(y), tol)  # float-computed outputs: within tolerance
                           for x, y, tol in zip(a, b, tolerant_outputs(graph)))
                if not same or len(a) != len(b):
                    finding(f"{where}: sample {i} differs from TFLM")
                    break
    finally:
        signal.signal(signal.SIGALRM, old)
        tflm.close()
    stats.seconds = time.monotonic() - start
    return stats


def test_semantic_fuzz(tmp_path: Path) -> None:
    n = int(os.environ.get("TINYML_FUZZ_CASES", DEFAULT_CASES))
    seed = int(os.environ.get("TINYML_FUZZ_SEED", 19))
    stats = run_fuzz(n, seed, tmp_path)
    print(stats.summary())
    assert stats.cases == n
    assert not stats.findings, stats.summary()
    # The mutants must exercise both outcomes, or the test could not fail.
    assert stats.accepted > n // 10 and stats.refused > n // 10, stats.summary()


def test_mutations_cover_every_family_and_operator() -> None:
    """The seeds cover every supported operator, and the mutants every kind of field (10,000 descriptions, cheap
    to draw: depthMultiplier exists in the two depthwise seeds of 33 only)."""
    cases = seed_cases()
    assert {c.op for c in cases} == set(supported_ops())
    models = [build(c) for c in cases]
    seen = " ".join(what for _, what, _ in mutants(models, max(10000, 100 * len(models)), 0, encode=False))
    for field in ("scale[", "zero_point[", "bias", "weights", "strideH", "dilationHFactor", "depthMultiplier",
                  "padding", "fusedActivationFunction", "filterHeight", "inputs absent", "inputs out_of_range",
                  "inputs swap", "outputs", "type ->", "shape ->", "quantized_dimension", "one scale fewer", "quantization removed", "opcode ->",
                  "is_variable"):
        assert field in seen, field
