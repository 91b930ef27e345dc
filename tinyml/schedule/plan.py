"""Static arena planning: execution order, tensor lifetimes, in-place execution, arena offsets.

Every activation tensor (model inputs and outputs included) gets an offset
in one static arena.  Ops that only reinterpret their input (RESHAPE,
SQUEEZE) make their output an alias of the input: both share one buffer; so
does an operator whose facts say it runs no kernel (``OpFacts.alias``: a
TRANSPOSE folded into the addressing of the operator that reads it).
Buffers whose lifetimes overlap never overlap in memory, with two planned
exceptions that the kernels are built for:

* in place: an operator whose kernel declares it (``OpFacts.inplace_inputs``)
  writes its output over an input that dies there.  Elementwise kernels write
  element i after reading element i (same start, same size).  Ring kernels
  (convolutions, fully connected) compute each output pixel into a small ring
  buffer (a scratch buffer of the plan) and store it ``lag`` pixels later,
  when no remaining output pixel reads the input bytes it lands on; the
  output starts ``delta`` bytes after the input (see ``InPlace``).
* a patch stage (see ``tinyml.schedule.patch``): its output may overlap the
  rows of its input that no later patch reads.

A streamed model input (a patch stage with ``stream``) is a buffer of the
most source rows a band of patches reads, live only while its stage runs.

State (the variable tensors of ``Graph.state_tensors``: what sequence
operators keep between invocations) lives in one region at the start of the
arena, in buffers of kind "state" that are live at every step, so that no
other tensor shares their bytes; the generated code fills them in its init
and reset.

The planner is a function of the Graph plus what the lowering says about
each operator's kernel (``OpFacts``, given by the compiler); it imports
nothing from code generation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from tinyml.graph.ir import Graph
from tinyml.schedule.geometry import pixel_last_use, ring_lag, window_of
from tinyml.schedule.place import ALIGN, Item, Link, align, place

ALIAS_OPS = ("RESHAPE", "SQUEEZE")
ORDER_LIMIT = 48  # execution orders tried where the graph branches


def _align(n: int, a: int = ALIGN) -> int:
    return align(n, a)


@dataclass(frozen=True)
class OpFacts:
    """What one kernel variant of an operator allows and costs, as its declaration states
    (``tinyml.codegen.variants``); plain data, so the planner knows nothing of kernels."""

    inplace_inputs: tuple[int, ...] = ()  # input positions whose memory the output may reuse
    inplace_kind: str = "elementwise"  # "elementwise" or "ring" (see the module docstring)
    scratch_bytes: int = 0  # scratch the kernel always needs (in the arena)
    patchable: bool = False  # the kernel computes sub-windows (patch-based execution)
    max_window_w: int = 0  # patchable: the widest window (output columns) it computes (0: any)
    strip_cost: int = 0  # > 0: outside a patch stage it runs in column strips, which add these instructions
    macs: int = 0
    variant: str = ""  # the variant's name (its template)
    stack_bytes: int = 0  # bytes of the kernel's on-stack buffers
    form_stack_bytes: int = 0  # more on-stack bytes when it runs in place or patch by patch
    # > 0: in place, its stack_bytes buffers are these bytes of its scratch instead, before the ring (a layer
    # too wide for them on the stack)
    form_scratch_bytes: int = 0
    cost: int = 0  # estimated instructions of one run over the whole layer
    ring_extra: int = 0  # in place through a ring: units the kernel holds beyond lag + 1 (it computes ahead)
    ring_direct: bool = False  # a ring kernel whose whole-layer form reads all a unit needs before writing it
    # (so it runs in place without a ring where the output trails its input far enough: no lag)
    direct_stack_bytes: int = 0  # more on-stack bytes when it runs in place without a ring
    direct_cost: int = 0  # estimated instructions added when it runs in place without a ring
    ring_cost: int = 0  # estimated instructions added when it runs in place through a ring (the copies out)
    patch_call_cost: int = 0  # estimated instructions each patch-window call adds, in a patch stage
    patch_rows_cost: int = 0  # estimated instructions each column of patch windows adds (their rows set up again)
    window_scale: float = 1.0  # in a patch stage, cost (scaled by the pixels computed) is multiplied by this
    alias: bool = False  # no kernel runs: the output is the input's bytes, its reader addresses them in their
    # own layout (a TRANSPOSE folded into its consumer)
    strided_input: bool = False  # reads input 0 in another layout than row-major (a TRANSPOSE folded into it):
    # as a patch stage's first op, its stage output must not overlap its input's rows (they are not contiguous)


@dataclass
class Buffer:
    """One region of the arena: a tensor and its aliases, a scratch buffer, or a patch buffer."""

    tensors: list[int]
    size: int
    first: int  # first step at which it is live (position in the order)
    last: int  # last step at which it is live
    offset: int = -1
    # "tensor", "scratch" (one op's ring / scratch), "patch" (a patch stage's window) or "state" (a variable
    # tensor kept between invocations: live at every step)
    kind: str = "tensor"
    op: int = -1  # scratch and patch buffers: the op (graph index) they belong to


@dataclass
class InPlace:
    """Operator ``op`` writes its output over input tensor ``tensor``.

    The output starts ``delta`` bytes after the input (may be negative).
    Ring kernels: output units (pixels, or rows of a fully connected layer)
    of ``unit_bytes`` are computed into a ring of ``ring`` units (scratch
    buffer ``scratch``) and unit q is stored after unit q + ``lag`` has been
    computed (or later: a kernel that computes units ahead, several at a
    time, declares how many more it holds, and the ring is that much
    longer than ``lag + 1``).  Elementwise kernels: ``ring`` is 0.  A ring
    kernel that declares ``ring_direct`` may instead run ``direct``: no
    ring, its output placed far enough before its input that no unit it
    writes is read again (lag 0).
    """

    op: int
    tensor: int
    delta: int
    lag: int = 0
    ring: int = 0
    unit_bytes: int = 0
    scratch: int = -1
    direct: bool = False


@dataclass
class PatchWindow:
    """What one operator computes for one patch (image coordinates of its full tensors).

    The input buffer holds rows [in_y0, in_y0 + in_h) and columns
    [in_x0, in_x0 + in_w) of the operator's input (row pitch in_w pixels);
    the operator computes output rows [oy0, oy0 + out_h), columns
    [ox0, ox0 + out_w) into an output buffer whose first pixel is
    (out_y0, out_x0) with a row pitch of out_pitch pixels.
    """

    in_y0: int
    in_x0: int
    in_h: int
    in_w: int
    oy0: int
    ox0: int
    out_h: int
    out_w: int
    out_y0: int
    out_x0: int
    out_pitch: int


@dataclass
class PatchStage:
    """Operators ``ops`` run patch by patch over a ``grid`` of the output of the last one."""

    ops: list[int]  # graph op indices, in execution order
    grid: tuple[int, int]  # patch rows x patch columns
    source: int  # tensor read by the first op (whole)
    split: int  # tensor written by the last op (whole)
    windows: list[list[PatchWindow]]  # [op][patch], patches in raster order
    macs: int  # MACs of these ops when run patch by patch
    extra_macs: int  # ... minus their MACs layer by layer
    delta: int | None = None  # offset(split) - offset(source) when they share memory
    # per op (as ops): its output pixels over all patches / its output pixels layer by layer (the halos it
    # recomputes: the first op's, mostly); empty: the stage's MACs over its MACs layer by layer for every op
    op_scale: list[float] = field(default_factory=list)
    # The source is the model's input 0 streamed row by row (a caller's callback fills it band by band):
    # its buffer holds only the source rows [y0, y1) of the current band of patches (full width), ``bands``
    # per patch row, and the first op's windows read from that buffer (in_y0 = the band's y0).
    stream: bool = False
    bands: list[tuple[int, int]] = field(default_factory=list)

    @property
    def stream_rows(self) -> int:
        """Source rows the stream buffer holds (the most any band reads); 0 for a stage that is not streamed."""
        return max((y1 - y0 for y0, y1 in self.bands), default=0) if self.stream else 0

    @property
    def patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def widest(self, op: int) -> int:
        """The most output columns operator ``op`` computes in one window."""
        return max(w.out_w for w in self.windows[self.ops.index(op)])


@dataclass
class Plan:
    order: list[int]  # positions in graph.ops, in execution order
    buffers: list[Buffer]
    tensor_buffer: dict[int, int]  # tensor index -> buffer index
    arena_bytes: int
    strategy: str = "greedy"
    notes: list[str] = field(default_factory=list)
    inplace: dict[int, InPlace] = field(default_factory=dict)  # op index -> decision
    scratch: dict[int, int] = field(default_factory=dict)  # op index -> scratch buffer index
    stages: list[PatchStage] = field(default_factory=list)
    macs: int = 0  # layer-by-layer MACs of the model (when the lowering told us)
    extra_macs: int = 0  # added by patch stages
    # The kernel variant each operator runs (op index -> its facts), set by
    # tinyml.schedule.choose; empty for a plan made from one set of facts.
    choice: dict[int, OpFacts] = field(default_factory=dict)
    fastest_cost: int = 0  # estimated cost of the fastest candidate plan (tinyml.schedule.choose)
    slower_ops: list[int] = field(default_factory=list)  # ops not on their fastest variant (to fit memory)

    @property
    def stack_bytes(self) -> int:
        """The largest on-stack buffer of the chosen kernels (one kernel runs at a time)."""
        return max(((0 if f.form_scratch_bytes and op in self.inplace else f.stack_bytes)
                    + (f.form_stack_bytes if self.runs_in_form(op) else 0)
                    + (f.direct_stack_bytes if self.runs_direct(op) else 0)
                    for op, f in self.choice.items()), default=0)

    def runs_in_form(self, op: int) -> bool:
        """Operator ``op`` runs in place through a ring, or patch by patch."""
        ip = self.inplace.get(op)
        return (ip is not None and ip.ring > 0) or self.stage_of(op) is not None

    def runs_direct(self, op: int) -> bool:
        """Operator ``op`` runs in place without a ring."""
        ip = self.inplace.get(op)
        return ip is not None and ip.direct

    @property
    def scratch_bytes(self) -> int:
        """Arena bytes of kernel scratch buffers and rings (part of arena_bytes)."""
        return sum(b.size for b in self.buffers if b.kind == "scratch")

    @property
    def state_bytes(self) -> int:
        """Arena bytes of the state kept between invocations (part of arena_bytes, live at every step)."""
        return sum(b.size for b in self.buffers if b.kind == "state")

    @property
    def cost(self) -> int:
        """Estimated instructions of the chosen kernels (the sum of :meth:`op_cost`)."""
        return int(round(sum(self.op_cost(op) for op in self.choice)))

    def op_cost(self, op: int) -> float:
        """Estimated instructions of operator ``op``'s kernel: in a patch stage scaled by the pixels it
        computes (its halos recomputed) and by its window form's rate over the whole layer's
        (OpFacts.window_scale), plus a cost per patch call and per column of patches; a ring kernel adds its
        copies out of the ring (or, in place without a ring, what that form adds)."""
        f = self.choice[op]
        st = self.stage_of(op)
        if st is None:
            scale = 1.0
        elif st.op_scale:
            scale = st.op_scale[st.ops.index(op)] * f.window_scale
        else:
            scale = st.macs / max(st.macs - st.extra_macs, 1) * f.window_scale
        ip = self.inplace.get(op)
        return (f.cost * scale + (f.ring_cost if ip is not None and ip.ring else 0)
                + (f.direct_cost if ip is not None and ip.direct else 0)
                + (f.patch_call_cost * st.patches + f.patch_rows_cost * st.grid[1] if st is not None
                   else f.strip_cost if ip is None else 0))

    def offset(self, tensor: int) -> int:
        return self.buffers[self.tensor_buffer[tensor]].offset

    def scratch_offset(self, op: int) -> int:
        return self.buffers[self.scratch[op]].offset

    @property
    def stream(self) -> PatchStage | None:
        """The patch stage that streams the model's input 0 row by row, if any."""
        return next((st for st in self.stages if st.stream), None)

    def stream_held(self) -> str:
        """"N rows of M bytes held" for a plan that streams its input (the rows in its arena), else ""."""
        st = self.stream
        if st is None:
            return ""
        return f"{st.stream_rows} rows of {self.buffers[self.tensor_buffer[st.source]].size // st.stream_rows} bytes held"

    def stage_of(self, op: int) -> PatchStage | None:
        for s in self.stages:
            if op in s.ops:
                return s
        return None

    def live_buffers(self, step: int) -> list[Buffer]:
        return [b for b in self.buffers if b.first <= step <= b.last]

    def live_bytes(self) -> list[int]:
        """Bytes of arena in use at each step of the order (overlapping in-place buffers counted once)."""
        out = []
        for step in range(len(self.order)):
            spans = sorted((b.offset, b.offset + b.size) for b in self.live_buffers(step) if b.size > 0)
            total, end = 0, -1
            for s, e in spans:
                if e <= end:
                    continue
                total += e - max(s, end)
                end = e
            out.append(total)
        return out

    @property
    def peak_bytes(self) -> int:
        return max(self.live_bytes(), default=0)

    @property
    def peak_step(self) -> int:
        live = self.live_bytes()
        return int(np.argmax(live)) if live else 0


# ---------------------------------------------------------------------------
# execution orders


def topological_orders(graph: Graph, limit: int = ORDER_LIMIT) -> list[list[int]]:
    """Up to ``limit`` execution orders (the stored one first) in which every op runs after its producers."""
    n = len(graph.ops)
    producers = graph.producers()
    deps: list[set[int]] = []
    for op in graph.ops:
        deps.append({producers[t] for t in op.inputs if t >= 0 and t in producers and producers[t] != op.index})
    stored = list(range(n))
    if any(d >= i for i in range(n) for d in deps[i]):
        return [stored]  # not in execution order: keep it (the compiler rejects such graphs)
    orders: list[list[int]] = [stored]
    users: list[list[int]] = [[] for _ in range(n)]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    missing = [len(d) for d in deps]
    seq: list[int] = []
    ready = sorted(i for i in range(n) if missing[i] == 0)

    def dfs(ready: list[int]) -> None:
        if len(orders) >= limit:
            return
        if not ready:
            if len(seq) == n and seq != stored:
                orders.append(list(seq))
            return
        for k, i in enumerate(ready):
            rest = ready[:k] + ready[k + 1:]
            seq.append(i)
            for u in users[i]:
                missing[u] -= 1
            dfs(sorted(rest + [u for u in users[i] if missing[u] == 0]))
            for u in users[i]:
                missing[u] += 1
            seq.pop()
            if len(orders) >= limit:
                return

    if n <= 400:
        dfs(ready)
    return orders


# ---------------------------------------------------------------------------
# planning one order


class _Union:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, t: int) -> int:
        while self.parent.get(t, t) != t:
            t = self.parent[t]
        return t

    def join(self, child: int, root: int) -> None:
        self.parent[self.find(child)] = self.find(root)


def _direct_delta(last_use: np.ndarray, in_unit: int, out_unit: int, n_out: int, in_bytes: int,
                  out_bytes: int) -> int:
    """The largest offset of the output relative to the input at which no unit the kernel writes is read
    again (lag 0; the lag only grows with the offset)."""
    lo, hi = -out_bytes, in_bytes - out_bytes  # no overlap at lo
    if ring_lag(last_use, in_unit, out_unit, n_out, hi) == 0:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ring_lag(last_use, in_unit, out_unit, n_out, mid) == 0:
            lo = mid
        else:
            hi = mid
    return lo


DIRECT = ("all", "aligned", "none")  # plan_memory's ways of running ring kernels in place without a ring


def _ring_choice(graph: Graph, op_index: int, in_bytes: int, out_bytes: int, extra: int = 0,
                 direct: str = "none") -> tuple[int, int, int, bool] | None:
    """(delta, lag, unit bytes, direct) of the cheapest in-place layout of a ring kernel, or None.  With
    ``direct`` "all" (the kernel declares ``ring_direct``) also without a ring, which wins ties; with
    "aligned" only where that does not place the output lower than the ring would (outputs shifted below
    their inputs op after op can leave gaps in the arena)."""
    op = graph.ops[op_index]
    win = window_of(graph, op)
    if win is not None:
        last_use = pixel_last_use(win)
        in_unit, out_unit, n_out = win.in_c, win.out_c, win.out_h * win.out_w
    elif op.kind == "FULLY_CONNECTED" and len(op.inputs) >= 2:
        w = graph.tensors[op.inputs[1]]
        if len(w.shape) != 2 or w.shape[1] == 0:
            return None
        accum, depth = int(w.shape[1]), int(w.shape[0])
        inp = graph.tensors[op.inputs[0]]
        if inp.size % accum:
            return None
        rows = inp.size // accum
        last_use = np.arange(rows, dtype=np.int64)
        in_unit, out_unit, n_out = accum, depth, rows
    else:
        return None
    if in_unit * last_use.size != in_bytes or out_unit * n_out != out_bytes:
        return None
    best: tuple[int, int, int, int, bool] | None = None
    for delta in sorted({0, in_bytes - out_bytes}):
        lag = ring_lag(last_use, in_unit, out_unit, n_out, delta)
        foot = max(in_bytes, delta + out_bytes) - min(0, delta) + (lag + 1 + extra) * out_unit
        if best is None or foot < best[0]:
            best = (foot, delta, lag, out_unit, False)
    assert best is not None
    if direct != "none":
        delta = _direct_delta(last_use, in_unit, out_unit, n_out, in_bytes, out_bytes)
        foot = max(in_bytes, delta + out_bytes) - min(0, delta)
        if foot <= best[0] and (direct == "all" or delta >= best[1]):
            best = (foot, delta, 0, out_unit, True)
    if best[0] >= in_bytes + out_bytes:
        return None  # no saving
    return best[1], best[2], best[3], best[4]


def _plan_once(graph: Graph, order: list[int], facts: dict[int, OpFacts], stages: list[PatchStage],
               inplace_ok: bool, disabled: set[int], min_lag: dict[int, int], direct: str = "all",
               direct_at: frozenset[int] | None = None) -> Plan:
    step_of = {pos: s for s, pos in enumerate(order)}
    n_steps = len(order)
    uf = _Union()
    for op in graph.ops:
        if (op.kind in ALIAS_OPS or facts.get(op.index, OpFacts()).alias) and op.inputs and op.inputs[0] >= 0 \
                and op.outputs and not graph.tensors[op.inputs[0]].is_const:
            uf.join(op.outputs[0], op.inputs[0])
    stage_ops = {o for st in stages for o in st.ops}
    # stage intermediate tensor -> (its stage, the stage op position that writes it)
    patch_tensors: dict[int, tuple[PatchStage, int]] = {}
    for st in stages:
        for j, o in enumerate(st.ops[:-1]):
            patch_tensors[graph.ops[o].outputs[0]] = (st, j)

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def touch(t: int, s: int) -> None:
        r = uf.find(t)
        first[r] = min(first.get(r, s), s)
        last[r] = max(last.get(r, s), s)

    state = set(graph.state_tensors())
    for t in graph.activation_tensors():
        if t in patch_tensors or t in state:
            continue
        members.setdefault(uf.find(t), []).append(t)
    # a streamed input is live only while its stage runs, in a buffer of its band's rows
    streamed = {st.source: st for st in stages if st.stream}
    for t in graph.inputs:
        if not graph.tensors[t].is_const and t not in streamed:
            touch(t, 0)
    for pos in order:
        s = step_of[pos]
        op = graph.ops[pos]
        for t in list(op.outputs) + [t for t in op.inputs if t >= 0]:
            if t in patch_tensors or graph.tensors[t].is_const:
                continue
            touch(t, s)
    for st in stages:
        s0, s1 = step_of[st.ops[0]], step_of[st.ops[-1]]
        touch(st.source, s1)  # read by every patch
        touch(st.split, s0)  # written by every patch
    for t in graph.outputs:
        if not graph.tensors[t].is_const:
            touch(t, n_steps - 1)

    buffers: list[Buffer] = []
    tensor_buffer: dict[int, int] = {}
    for root, ts in sorted(members.items()):
        if root not in first:
            continue  # not used by any op
        size = max(graph.tensors[t].nbytes for t in ts)
        if root in streamed:
            src = graph.tensors[root]
            size = streamed[root].stream_rows * (src.nbytes // max(int(src.shape[1]), 1))
        tensor_buffer.update({t: len(buffers) for t in ts})
        buffers.append(Buffer(tensors=sorted(ts), size=size, first=first[root], last=last[root]))
    links: list[Link] = []  # output may overlap its dying input up to dmax
    inplace: dict[int, InPlace] = {}
    scratch: dict[int, int] = {}
    out_set = {uf.find(t) for t in graph.outputs}

    def dies_here(t: int, s: int) -> bool:
        b = buffers[tensor_buffer[t]]
        return b.last == s and uf.find(t) not in out_set and b.kind == "tensor"

    for pos in order:
        s = step_of[pos]
        op = graph.ops[pos]
        f = facts.get(pos, OpFacts())
        if pos in stage_ops:
            continue
        decided: InPlace | None = None
        if inplace_ok and pos not in disabled and f.inplace_inputs and len(op.outputs) == 1 \
                and op.outputs[0] in tensor_buffer:
            out_t = op.outputs[0]
            ob = tensor_buffer[out_t]
            for p in f.inplace_inputs:
                if p >= len(op.inputs) or op.inputs[p] < 0 or op.inputs[p] not in tensor_buffer:
                    continue
                t = op.inputs[p]
                if op.inputs.count(t) != 1 or not dies_here(t, s) or tensor_buffer[t] == ob:
                    continue
                if any(lk.out == ob for lk in links) or buffers[ob].first != s:
                    continue
                ib = tensor_buffer[t]
                if f.inplace_kind == "ring":
                    choice = _ring_choice(graph, pos, graph.tensors[t].nbytes, graph.tensors[out_t].nbytes,
                                          f.ring_extra,
                                          direct if f.ring_direct and pos not in min_lag
                                          and (direct_at is None or pos in direct_at) else "none")
                    if choice is None:
                        continue
                    delta, lag, unit, no_ring = choice
                    if no_ring:
                        decided = InPlace(op=pos, tensor=t, delta=delta, unit_bytes=unit, direct=True)
                    else:
                        lag = max(lag, min_lag.get(pos, 0))
                        decided = InPlace(op=pos, tensor=t, delta=delta, lag=lag, ring=lag + 1 + f.ring_extra,
                                          unit_bytes=unit)
                else:
                    if buffers[ib].size != buffers[ob].size:
                        continue
                    decided = InPlace(op=pos, tensor=t, delta=0)
                links.append(Link(out=ob, inp=ib, dmax=decided.delta))
                break
        ring_bytes = decided.ring * decided.unit_bytes + f.form_scratch_bytes if decided is not None else 0
        if decided is not None:
            inplace[pos] = decided
        need = max(ring_bytes, f.scratch_bytes)
        if need > 0:
            scratch[pos] = len(buffers)
            buffers.append(Buffer(tensors=[], size=need, first=s, last=s, kind="scratch", op=pos))
            if decided is not None:
                decided.scratch = scratch[pos]

    for t, (st, j) in patch_tensors.items():
        o = st.ops[j]
        size = max(w.out_h * w.out_w for w in st.windows[j]) * graph.tensors[t].shape[-1] \
            * (graph.tensors[t].nbytes // max(graph.tensors[t].size, 1))
        tensor_buffer[t] = len(buffers)
        buffers.append(Buffer(tensors=[t], size=size, first=step_of[o], last=step_of[st.ops[j + 1]],
                              kind="patch", op=o))
    for st in stages:
        if st.delta is not None and st.source in tensor_buffer:
            links.append(Link(out=tensor_buffer[st.split], inp=tensor_buffer[st.source], dmax=st.delta))

    items = [Item(size=b.size, first=b.first, last=b.last) for b in buffers]
    arena, offsets, held, how = place(items, links)
    # The state: one region at the start of the arena (each tensor aligned), live at every step and shared
    # with nothing; the buffers placed above go after it.
    base = 0
    for t in sorted(state):
        tensor_buffer[t] = len(buffers)
        buffers.append(Buffer(tensors=[t], size=graph.tensors[t].nbytes, first=0, last=max(n_steps - 1, 0),
                              offset=base, kind="state"))
        base += _align(graph.tensors[t].nbytes)
    for b, o in zip(buffers, offsets):
        b.offset = o + base
    arena += base
    held_out = {links[i].out for i in held}
    retry: dict[int, int] = {}
    for pos, ip in list(inplace.items()):
        ob = tensor_buffer[graph.ops[pos].outputs[0]]
        if ob not in held_out:
            retry[pos] = -1  # could not be placed over its input: plan it without
            continue
        ip.delta = buffers[ob].offset - buffers[tensor_buffer[ip.tensor]].offset
        if ip.ring or ip.direct:
            lag = actual_lag(graph, ip)
            if lag > ip.lag:
                retry[pos] = lag  # (a direct one is planned again with a ring)
    macs = sum(f.macs for f in facts.values())
    plan = Plan(order=list(order), buffers=buffers, tensor_buffer=tensor_buffer, arena_bytes=arena,
                strategy=how, inplace=inplace, scratch=scratch, stages=list(stages), macs=macs,
                extra_macs=sum(st.extra_macs for st in stages))
    plan.notes.extend(f"retry {k}:{v}" for k, v in retry.items())
    return plan


def actual_lag(graph: Graph, ip: InPlace) -> int:
    """The lag a ring kernel needs with the output ``ip.delta`` bytes after its input."""
    op = graph.ops[ip.op]
    t_in, t_out = graph.tensors[ip.tensor], graph.tensors[op.outputs[0]]
    win = window_of(graph, op)
    if win is not None:
        last_use = pixel_last_use(win)
        return ring_lag(last_use, win.in_c, win.out_c, win.out_h * win.out_w, ip.delta)
    rows = t_in.nbytes // (t_out.nbytes // ip.unit_bytes) if ip.unit_bytes else 1
    n = t_out.nbytes // ip.unit_bytes
    return ring_lag(np.arange(n, dtype=np.int64), rows, ip.unit_bytes, n, ip.delta)


def _plan_order(graph: Graph, order: list[int], facts: dict[int, OpFacts], stages: list[PatchStage],
                inplace_ok: bool, without: frozenset[int] = frozenset(), direct: str = "all",
                direct_at: frozenset[int] | None = None) -> Plan:
    disabled: set[int] = set(without)
    min_lag: dict[int, int] = {}
    for _ in range(6):
        plan = _plan_once(graph, order, facts, stages, inplace_ok, disabled, min_lag, direct, direct_at)
        retry = [n for n in plan.notes if n.startswith("retry ")]
        if not retry:
            return plan
        for n in retry:
            k, v = n[6:].split(":")
            if int(v) < 0 or int(v) <= min_lag.get(int(k), -1):
                disabled.add(int(k))
            else:
                min_lag[int(k)] = int(v)
    plan = _plan_once(graph, order, facts, stages, False, disabled, min_lag)
    return plan


def plan_memory(graph: Graph, facts: dict[int, OpFacts] | None = None, *, stages: Sequence[PatchStage] = (),
                inplace: bool = True, orders: list[list[int]] | None = None,
                without: frozenset[int] = frozenset(), direct: str = "all",
                direct_at: frozenset[int] | None = None) -> Plan:
    """The smallest arena over the candidate execution orders.

    Without ``facts`` nothing runs in place (no kernel has declared it); the
    operators in ``without`` never do; ``direct`` says where a ring kernel that
    can runs in place without its ring (see ``DIRECT``), and ``direct_at``, when given, which operators
    alone may (the others run through their rings).  Each of ``stages`` (disjoint) runs its operators
    patch by patch (see ``tinyml.schedule.patch``).
    """
    facts = facts or {}
    cands = orders if orders is not None else topological_orders(graph)
    stages = sorted(stages, key=lambda st: st.ops[0])
    for st in stages:
        cands = [o for o in cands if _consecutive(o, st.ops)] or [_with_stage_consecutive(cands[0], st.ops)]
    best: Plan | None = None
    for order in cands:
        p = _plan_order(graph, order, facts, stages, inplace, without, direct, direct_at)
        if best is None or (p.arena_bytes, p.peak_bytes) < (best.arena_bytes, best.peak_bytes):
            best = p
    assert best is not None
    if len(cands) > 1:
        best.notes.append(f"best of {len(cands)} execution orders")
    return best


def _consecutive(order: list[int], ops: list[int]) -> bool:
    pos = {o: i for i, o in enumerate(order)}
    return all(pos[b] == pos[a] + 1 for a, b in zip(ops, ops[1:]))


def _with_stage_consecutive(order: list[int], ops: list[int]) -> list[int]:
    rest = [o for o in order if o not in ops[1:]]
    k = rest.index(ops[0])
    return rest[:k + 1] + ops[1:] + rest[k + 1:]


def conflicts(graph: Graph, plan: Plan) -> list[tuple[int, int, int]]:
    """Pairs of buffers that overlap in time and memory without a plan decision allowing it.

    Returns (step, buffer a, buffer b) for each violation; an empty list means the plan is safe.
    Allowed: the input and output of an in-place operator at that operator's step, and the
    source and split tensors of a patch stage (checked against its rows separately).
    """
    allowed: set[tuple[int, int, int]] = set()
    step_of = {pos: s for s, pos in enumerate(plan.order)}
    for ip in plan.inplace.values():
        a = plan.tensor_buffer[ip.tensor]
        b = plan.tensor_buffer[graph.ops[ip.op].outputs[0]]
        delta = plan.buffers[b].offset - plan.buffers[a].offset
        if delta != ip.delta:
            continue
        if (ip.ring or ip.direct) and actual_lag(graph, ip) > ip.lag:
            continue
        if not ip.ring and not ip.direct and delta > 0:
            continue
        allowed.add((step_of[ip.op], min(a, b), max(a, b)))
    for st in plan.stages:
        a, b = plan.tensor_buffer[st.source], plan.tensor_buffer[st.split]
        if st.delta is not None and plan.buffers[b].offset - plan.buffers[a].offset <= st.delta:
            for o in st.ops:
                allowed.add((step_of[o], min(a, b), max(a, b)))
    bad = []
    bufs = plan.buffers
    for i, j in itertools.combinations(range(len(bufs)), 2):
        a, b = bufs[i], bufs[j]
        if a.size == 0 or b.size == 0:
            continue
        if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
            for s in range(max(a.first, b.first), min(a.last, b.last) + 1):
                if (s, i, j) not in allowed:
                    bad.append((s, i, j))
    return bad
