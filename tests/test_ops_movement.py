"""TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK, DEPTH_TO_SPACE, SPACE_TO_DEPTH: bit-exact
with TFLM.

* the converter-made cases of tests/modelgen.py, on the host and (three of them) on QEMU (mps2-an386),
  among them a small network of convolutions around SPLIT, TRANSPOSE and STRIDED_SLICE;
* a sweep per operator over the edge cases (1-D to the largest rank TFLM takes, odd sizes, negative axes
  and indices, masks, strides above 1 and negative, clamped indices, several outputs), as one
  hand-built model per operator (one operator per case, each on its own model input and output), so
  that the sweep is one build per operator; one model with an operator of each kind on QEMU;
* the loop merging of the strided gather (unit test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases
from tests.tflite_edit import schema
from tinyml.codegen.lower import KernelCall
from tinyml.codegen.ops.movement import COPY_ND_RANK, COPY_ND_RATES, copy_nd_rates, gather_loops
from tinyml.codegen.variants import variant
from tinyml.compiler import build_model

OPS = ("TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
CASES = op_cases(*OPS)
QEMU_BOARD = "mps2-an386"
SCALE, ZP = 0.05, -7


# ---------------------------------------------------------------------------
# converter-made cases


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.parametrize("case", [c for c in CASES if c.op in ("SPLIT_V", "DEPTH_TO_SPACE") or c.kind == "move_net"],
                         ids=lambda c: c.id)
def test_case_qemu(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board=QEMU_BOARD, samples=2)


# ---------------------------------------------------------------------------
# hand-built models: several operators, each from its own model input to its own model output(s)


def _act(shape: list[int] | tuple[int, ...], scale: float | None = SCALE, zp: int = ZP) -> dict[str, Any]:
    """An int8 tensor (``scale`` None: without quantization)."""
    return dict(shape=list(shape), dtype="int8", scale=scale, zp=zp)


def _const(values: list[int], dtype: str = "int32", shape: list[int] | None = None) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.int64 if dtype == "int64" else np.int32)
    return dict(shape=list(arr.shape) if shape is None else shape, dtype=dtype, data=arr)


class Net:
    """A model of independent operators (each an op kind, its tensors and options) for one build."""

    def __init__(self) -> None:
        self.tensors: list[dict[str, Any]] = []
        self.ops: list[tuple[str, list[int], list[int], tuple[str, dict[str, Any]] | None]] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, spec: dict[str, Any]) -> int:
        self.tensors.append(spec)
        return len(self.tensors) - 1

    def op(self, kind: str, ins: list[dict[str, Any]], outs: list[dict[str, Any]],
           options: tuple[str, dict[str, Any]] | None = None) -> None:
        """Operator ``kind``: the int8 activations among ``ins`` become model inputs, every output a model
        output."""
        idx_in = [self.tensor(t) for t in ins]
        self.inputs += [i for i, t in zip(idx_in, ins) if t.get("data") is None]
        idx_out = [self.tensor(t) for t in outs]
        self.outputs += idx_out
        self.ops.append((kind, idx_in, idx_out, options))

    def model(self) -> bytes:
        s = schema()
        types = {"int8": s.TensorType.INT8, "int32": s.TensorType.INT32, "int64": s.TensorType.INT64}
        buffers = [s.BufferT()]
        tensors = []
        for k, spec in enumerate(self.tensors):
            t = s.TensorT()
            t.shape = list(spec["shape"])
            t.type = types[spec["dtype"]]
            t.name = f"t{k}"
            t.buffer = 0
            if spec.get("data") is not None:
                buf = s.BufferT()
                buf.data = list(np.ascontiguousarray(spec["data"]).tobytes())
                t.buffer = len(buffers)
                buffers.append(buf)
            if spec.get("scale") is not None:
                q = s.QuantizationParametersT()
                q.scale = [float(spec["scale"])]
                q.zeroPoint = [int(spec["zp"])]
                t.quantization = q
            tensors.append(t)
        kinds = list(dict.fromkeys(kind for kind, _, _, _ in self.ops))
        codes = []
        for kind in kinds:
            c = s.OperatorCodeT()
            c.builtinCode = getattr(s.BuiltinOperator, kind)
            c.deprecatedBuiltinCode = min(c.builtinCode, 127)
            c.version = 1
            codes.append(c)
        operators = []
        for kind, ins, outs, options in self.ops:
            o = s.OperatorT()
            o.opcodeIndex = kinds.index(kind)
            o.inputs, o.outputs = list(ins), list(outs)
            if options is not None:
                name, fields = options
                table = getattr(s, name + "T")()
                for f, v in fields.items():
                    setattr(table, f, v)
                o.builtinOptionsType = getattr(s.BuiltinOptions, name)
                o.builtinOptions = table
            operators.append(o)
        sg = s.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = tensors, operators, self.inputs, self.outputs, "main"
        m = s.ModelT()
        m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, codes, [sg], buffers
        m.description = "tinyml test"
        b = flatbuffers.Builder(4096)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _shape_of(shape: tuple[int, ...], index: tuple[Any, ...]) -> list[int]:
    return list(np.empty(shape, dtype=np.int8)[index].shape)


def transpose(net: Net, shape: tuple[int, ...], perm: tuple[int, ...], out_scale: float | None = SCALE) -> None:
    in_scale = SCALE if out_scale is not None else None
    net.op("TRANSPOSE", [_act(shape, in_scale), _const(list(perm))], [_act([shape[p] for p in perm], out_scale)])


def strided_slice(net: Net, shape: tuple[int, ...], index: tuple[Any, ...]) -> None:
    """A Python index (slices and integers, one per dimension) as STRIDED_SLICE: a slice's None start or
    stop becomes a begin or end mask bit (its value 0, or a stray value the mask overrides), an integer
    a shrunk axis."""
    begin, end, strides, bmask, emask, smask = [], [], [], 0, 0, 0
    for k, ix in enumerate(index):
        if isinstance(ix, int):
            begin.append(ix), end.append(ix + 1), strides.append(1)
            smask |= 1 << k
            continue
        step = 1 if ix.step is None else ix.step
        begin.append(7 * k + 3 if ix.start is None else ix.start)
        end.append(-5 * k - 2 if ix.stop is None else ix.stop)
        strides.append(step)
        bmask |= (ix.start is None) << k
        emask |= (ix.stop is None) << k
    net.op("STRIDED_SLICE", [_act(shape), _const(begin), _const(end), _const(strides)],
           [_act(_shape_of(shape, index))],
           ("StridedSliceOptions", dict(beginMask=bmask, endMask=emask, shrinkAxisMask=smask)))


def slice_op(net: Net, shape: tuple[int, ...], begin: list[int], size: list[int], dtype: str = "int32") -> None:
    index = tuple(slice(b, None if n == -1 else b + n) for b, n in zip(begin, size))
    net.op("SLICE", [_act(shape), _const(begin, dtype), _const(size, dtype)], [_act(_shape_of(shape, index))])


def split(net: Net, shape: tuple[int, ...], axis: int, n: int) -> None:
    parts = np.split(np.empty(shape, dtype=np.int8), n, axis=axis)
    net.op("SPLIT", [_const([axis], shape=[]), _act(shape)], [_act(p.shape) for p in parts],
           ("SplitOptions", dict(numSplits=n)))


def split_v(net: Net, shape: tuple[int, ...], axis: int, sizes: list[int], const_sizes: bool = True) -> None:
    """SPLIT_V; ``const_sizes=False``: size_splits is a model input (TFLM never reads it)."""
    rest = shape[axis] - sum(s for s in sizes if s != -1)
    resolved = [rest if s == -1 else s for s in sizes]
    parts = np.split(np.empty(shape, dtype=np.int8), np.cumsum(resolved)[:-1], axis=axis)
    size_splits = _const(sizes) if const_sizes else dict(shape=[len(sizes)], dtype="int32")
    net.op("SPLIT_V", [_act(shape), size_splits, _const([axis], shape=[1])], [_act(p.shape) for p in parts],
           ("SplitVOptions", dict(numSplits=len(sizes))))


def pack(net: Net, shape: tuple[int, ...], axis: int, n: int, constant: int = -1) -> None:
    """PACK of ``n`` inputs; input ``constant`` (if any) is a constant tensor."""
    out = np.stack([np.empty(shape, dtype=np.int8)] * n, axis=axis).shape
    rng = np.random.default_rng(n)
    ins = [dict(_act(shape), data=rng.integers(-128, 128, size=shape, dtype=np.int8)) if k == constant
           else _act(shape) for k in range(n)]
    net.op("PACK", ins, [_act(out)], ("PackOptions", dict(valuesCount=n, axis=axis)))




def unpack(net: Net, shape: tuple[int, ...], axis: int) -> None:
    out = list(np.moveaxis(np.empty(shape, dtype=np.int8), axis, 0).shape[1:])
    net.op("UNPACK", [_act(shape)], [_act(out) for _ in range(shape[axis])],
           ("UnpackOptions", dict(num=shape[axis], axis=axis)))


def depth_to_space(net: Net, shape: tuple[int, ...], b: int) -> None:
    n, h, w, c = shape
    net.op("DEPTH_TO_SPACE", [_act(shape)], [_act([n, h * b, w * b, c // (b * b)])],
           ("DepthToSpaceOptions", dict(blockSize=b)))


def space_to_depth(net: Net, shape: tuple[int, ...], b: int) -> None:
    n, h, w, c = shape
    net.op("SPACE_TO_DEPTH", [_act(shape)], [_act([n, h // b, w // b, c * b * b])],
           ("SpaceToDepthOptions", dict(blockSize=b)))


S = slice
SWEEPS: dict[str, list[tuple[Any, ...]]] = {
    "TRANSPOSE": [
        ((7,), (0,)), ((3, 5), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (0, 1, 2)), ((1, 3, 1, 5), (3, 2, 1, 0)),
        ((2, 3, 4, 5), (0, 2, 3, 1)), ((2, 5, 3, 4), (0, 3, 1, 2)), ((2, 3, 2, 3, 5), (4, 2, 0, 3, 1)),
        ((3, 1, 4, 1, 2), (1, 3, 0, 4, 2)),
        ((4, 6), (1, 0), 0.2),  # another output scale: TFLM copies the bytes regardless
        ((3, 5), (1, 0), None),  # no quantization: TFLM reads none
    ],
    "STRIDED_SLICE": [
        ((9,), (S(None, None, -1),)), ((9,), (S(1, 8, 3),)), ((9,), (S(-3, None),)), ((9,), (S(100, -100, -2),)),
        ((9,), (S(0, None, 10),)), ((9,), (S(-100, 4),)), ((9,), (S(7, 2, -1),)),
        ((5, 6), (S(None), S(None, None, 2))), ((5, 6), (-2, S(None, None, -1))), ((5, 6), (S(4, 0, -2), S(1, -1))),
        ((5, 6), (S(None), 5)), ((5, 6), (-1, 0)),
        ((3, 4, 5, 6), (S(None), S(1, 3), S(None, None, -2), S(2, None))),
        ((3, 4, 5, 6), (1, S(None), 2, S(None, None, -1))),
        ((3, 4, 5, 6), (S(-1, None, -1), S(0, 4, 3), S(3, 1, -1), -1)),
        ((2, 3, 1, 7), (S(None), S(None), S(None), S(1, 6, 2))),
    ],
    "SLICE": [
        ((9,), [2], [-1]), ((4, 5), [1, 0], [3, -1]), ((2, 3, 4, 5), [0, 1, 1, 2], [2, 2, -1, 3]),
        ((2, 2, 3, 2, 4), [1, 0, 1, 0, 1], [1, -1, 2, 2, 2]), ((4, 5), [0, 2], [4, 3], "int64"),
        ((3, 7), [3 - 1, 0], [1, 7]),
    ],
    "SPLIT": [
        ((12,), 0, 3), ((4, 6), -1, 2), ((2, 3, 4, 6), 1, 3), ((2, 3, 4, 6), -4, 2), ((3, 1, 2, 2, 4), 4, 4),
        ((5, 3), 0, 1),
    ],
    "SPLIT_V": [((10,), 0, [3, -1, 2]), ((4, 7), 1, [1, 2, 4]), ((2, 5, 3), -2, [5]), ((2, 6, 3), 1, [-1, 4]),
                ((3, 8), -1, [5, 3], False)],
    "PACK": [((5,), 0, 3), ((5,), -1, 2), ((2, 3, 4), 1, 2), ((2, 3), 2, 1), ((2, 3, 1, 2), -3, 3),
             ((4, 3), 1, 2, 0)],
    "UNPACK": [((3, 4), 0), ((3, 4), -1), ((2, 3, 4, 2), 2), ((1, 5), 0), ((2, 3, 2, 1, 3), -5), ((3,), 0)],
    "DEPTH_TO_SPACE": [((1, 2, 3, 8), 2), ((2, 3, 2, 18), 3), ((1, 1, 1, 4), 2), ((1, 2, 2, 5), 1)],
    "SPACE_TO_DEPTH": [((1, 4, 6, 3), 2), ((2, 6, 3, 5), 3), ((1, 2, 2, 1), 2), ((1, 3, 3, 2), 1)],
}
ADD = {"TRANSPOSE": transpose, "STRIDED_SLICE": strided_slice, "SLICE": slice_op, "SPLIT": split,
       "SPLIT_V": split_v, "PACK": pack, "UNPACK": unpack, "DEPTH_TO_SPACE": depth_to_space,
       "SPACE_TO_DEPTH": space_to_depth}


@pytest.mark.parametrize("kind", OPS)
def test_sweep_host(kind: str, tmp_path: Path) -> None:
    net = Net()
    for args in SWEEPS[kind]:
        ADD[kind](net, *args)
    assert_bitexact(net.model(), tmp_path, board="host", samples=3)


@pytest.mark.qemu
def test_every_operator_qemu(tmp_path: Path) -> None:
    """The first two cases of every sweep in one model, on the Cortex-M target."""
    net = Net()
    for kind in OPS:
        for args in SWEEPS[kind][:2]:
            ADD[kind](net, *args)
    assert_bitexact(net.model(), tmp_path, board=QEMU_BOARD, samples=2)


def _random_index(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """A random non-empty Python index of ``shape``: out-of-range and negative starts and stops, strides up to
    +-7, absent bounds (mask bits) and single indices (shrunk axes)."""
    def bound(d: int) -> int | None:
        return None if rng.random() < 0.3 else int(rng.integers(-2 * d, 2 * d + 1))

    while True:
        index: list[Any] = []
        for d in shape:
            if rng.random() < 0.2:
                index.append(int(rng.integers(-d, d)))
                continue
            step = int(rng.choice([1, 1, -1, 2, -2, 3, -3, 7, -7]))
            index.append(slice(bound(d), bound(d), step))
        if 0 not in _shape_of(shape, tuple(index)):
            return tuple(index)


def test_random_gathers(tmp_path: Path) -> None:
    """In one model: 20 random strided slices of 1-D to 4-D inputs, 6 random transposes and 6 random slices
    of 1-D to 5-D inputs."""
    rng = np.random.default_rng(17)
    net = Net()

    def shape_of(max_rank: int) -> tuple[int, ...]:
        return tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(1, max_rank + 1))))

    for _ in range(20):
        shape = shape_of(4)
        strided_slice(net, shape, _random_index(rng, shape))
    for _ in range(6):
        shape = shape_of(5)
        transpose(net, shape, tuple(int(p) for p in rng.permutation(len(shape))))
    for _ in range(6):
        shape = shape_of(5)
        begin = [int(rng.integers(0, d)) for d in shape]
        size = [-1 if rng.random() < 0.3 else int(rng.integers(1, d - b + 1)) for d, b in zip(shape, begin)]
        slice_op(net, shape, begin, size, "int64" if rng.random() < 0.3 else "int32")
    assert_bitexact(net.model(), tmp_path, board="host", samples=2)


def test_chained_operators_share_the_arena(tmp_path: Path) -> None:
    """SPLIT's outputs feed further operators (one is also a model output, one is never read) before a PACK,
    and UNPACK's scalar outputs a PACK: the planner places several outputs of one operator and their
    lifetimes."""
    net = Net()
    x = net.tensor(_act([2, 6, 4]))
    net.inputs.append(x)
    axis = net.tensor(_const([1], shape=[]))
    parts = [net.tensor(_act([2, 2, 4])) for _ in range(3)]
    net.ops.append(("SPLIT", [axis, x], parts, ("SplitOptions", dict(numSplits=3))))
    perm = net.tensor(_const([0, 2, 1]))
    t0 = net.tensor(_act([2, 4, 2]))
    net.ops.append(("TRANSPOSE", [parts[0], perm], [t0], None))
    t2 = net.tensor(_act([2, 4, 2]))
    net.ops.append(("TRANSPOSE", [parts[2], perm], [t2], None))
    packed = net.tensor(_act([2, 2, 4, 2]))
    net.ops.append(("PACK", [t2, t0], [packed], ("PackOptions", dict(valuesCount=2, axis=1))))
    net.outputs += [packed, parts[2]]
    # UNPACK into scalars, PACKed again in another order
    y = net.tensor(_act([3]))
    net.inputs.append(y)
    scalars = [net.tensor(_act([])) for _ in range(3)]
    net.ops.append(("UNPACK", [y], scalars, ("UnpackOptions", dict(num=3, axis=0))))
    repacked = net.tensor(_act([3]))
    net.ops.append(("PACK", [scalars[2], scalars[0], scalars[1]], [repacked],
                    ("PackOptions", dict(valuesCount=3, axis=0))))
    net.outputs.append(repacked)
    assert_bitexact(net.model(), tmp_path, board="host", samples=3)


# ---------------------------------------------------------------------------
# the gather's loops


@pytest.mark.parametrize("dims, steps, loops", [
    ([2, 3, 4], [12, 4, 1], ([1] * 5 + [24], [0] * 5 + [1])),  # contiguous: one copy
    ([4, 3, 2], [1, 8, 4], ([1] * 4 + [4, 6], [0] * 4 + [1, 4])),  # a transpose: the inner two merge (8 = 2 x 4)
    ([4, 2, 3], [1, 3, 8], ([1] * 3 + [4, 2, 3], [0] * 3 + [1, 3, 8])),  # a transpose: nothing merges
    ([1, 5, 1, 3], [99, 3, 7, 1], ([1] * 5 + [15], [0] * 5 + [1])),  # ones dropped, then merged
    ([3, 4], [-9, -2], ([1] * 4 + [3, 4], [0] * 4 + [-9, -2])),  # backward with stride 2: a gap between rows
    ([3, 4], [-8, -2], ([1] * 5 + [12], [0] * 5 + [-2])),  # backward with stride 2 throughout
    ([3, 4], [-4, -1], ([1] * 5 + [12], [0] * 5 + [-1])),  # backward, contiguous
    ([1, 1], [5, 5], ([1] * 6, [0] * 6)),  # one element
])
def test_gather_loops(dims, steps, loops) -> None:
    assert gather_loops(dims, steps) == loops


def test_the_planner_sees_the_declared_kernels(tmp_path: Path) -> None:
    """Every operator runs its portable kernel, declared with no scratch and no stack buffer, and costs the
    declared instructions per output byte (SPLIT: over all its outputs)."""
    net = Net()
    for kind in OPS:
        ADD[kind](net, *SWEEPS[kind][0])
    path = tmp_path / "m.tflite"
    path.write_bytes(net.model())
    compiled = build_model(path, QEMU_BOARD)
    kernels = {"PACK": "concat_s8", "SPLIT": "split_s8", "SPLIT_V": "split_s8", "UNPACK": "split_s8"}
    for op in compiled.graph.ops:
        facts = compiled.plan.choice[op.index]
        assert facts.variant == kernels.get(op.kind, "copy_nd_s8")
        assert (facts.scratch_bytes, facts.stack_bytes, facts.form_stack_bytes, facts.inplace_inputs) == (0, 0, 0, ())
        out_bytes = sum(compiled.graph.tensors[t].nbytes for t in op.outputs)
        v = variant(facts.variant)
        call = next(k for k in compiled.calls if isinstance(k, KernelCall) and k.op_index == op.index)
        assert facts.cost == round(out_bytes * (v.rates(call)[0] if v.rates else v.per_mac))
    assert compiled.plan.scratch_bytes == 0 and compiled.plan.stack_bytes == 0


def test_copy_costs_per_byte_and_per_pass() -> None:
    """copy_nd_s8's estimate (COPY_ND_RATES): rows copied with memcpy cost their bytes and a pass each,
    bytes gathered one by one more per byte; a 4-byte inner loop costs more per byte than a 32-byte one (a
    4-byte memcpy about as much as a gather: 7.5 per byte measured)."""
    def call(inner: int, step: int) -> KernelCall:
        params = {f"d{k}": 1 for k in range(COPY_ND_RANK)} | {f"s{k}": 0 for k in range(COPY_ND_RANK)}
        params.update({f"d{COPY_ND_RANK - 1}": inner, f"s{COPY_ND_RANK - 1}": step, "start": 0})
        return KernelCall(op_index=0, op_kind="TRANSPOSE", kernel="copy_nd_s8", spec={}, params=params, args=[])
    rows, gather = COPY_ND_RATES["rows"], COPY_ND_RATES["gather"]
    assert copy_nd_rates(call(32, 1)) == (pytest.approx(rows[0] + rows[1] / 32), 0.0)
    assert copy_nd_rates(call(32, 5)) == (pytest.approx(gather[0] + gather[1] / 32), 0.0)
    assert copy_nd_rates(call(4, 1))[0] > copy_nd_rates(call(32, 1))[0]
    assert copy_nd_rates(call(32, 5))[0] > copy_nd_rates(call(32, 1))[0]


def test_verify_names_the_later_output_of_a_split_that_differs(tmp_path: Path) -> None:
    """verify traces every output of a multi-output operator: when SPLIT's second output differs from TFLM's
    (one byte flipped after the kernel here), the mismatch names SPLIT and that output, not nothing."""
    from tinyml.tools.verify import random_inputs, verify_compiled

    case = next(c for c in CASES if c.op == "SPLIT")
    path = tmp_path / "split.tflite"
    data = build(case)
    path.write_bytes(data)
    compiled = build_model(path, "host")
    split = next(op for op in compiled.graph.ops if op.kind == "SPLIT")
    second = compiled.graph.tensors[split.outputs[1]]
    traces = [line for line in str(compiled.files["model.c"]).splitlines()
              if line.strip().startswith(f"TML_TRACE_OP({split.index},")]
    assert len(traces) == len(split.outputs)
    offset = compiled.plan.offset(second.index)
    name = compiled.graph.name
    compiled.files["model.c"] = str(compiled.files["model.c"]).replace(
        traces[1], f"    {name}_arena[{offset}] ^= 1;\n{traces[1]}")
    report = verify_compiled(compiled, data, random_inputs(compiled.graph, 1, 0), work_dir=tmp_path / "proj")
    (m,) = report.mismatches
    assert (m.op_index, m.op_kind, m.tensor) == (split.index, "SPLIT", second.name)
    assert m.detail.startswith("element 0: ")
