"""Patch-based inference (MCUNetV2) and the search for a plan that fits an SRAM budget.

A patch stage is a chain of convolutions op_1 .. op_k.  The output of op_k
(the *split* tensor) is cut into a grid of patches; for each patch, in
raster order, the receptive field is followed back through the chain and
every op computes only the window the next one needs, into small patch
buffers.  op_1 reads its input (the *source*) whole; op_k writes its window
straight into the split tensor.  Taps that fall outside an op's full input
are padding exactly as layer by layer (the kernels bound-check against the
full image, not the window), so the result is bit-identical.

Patches of one row band finish before the next band starts, so the source's
top rows die band by band.  When the source dies in the stage, the split
tensor is placed over it with the largest offset ``delta`` at which every
band only writes over source rows that no later patch reads.

With the model's input streamed (``stream_input``: the generated code pulls
its rows from a caller's callback), the first op of a stage reads the input
from a buffer that holds only the current band's source rows (full width):
the rows the band's patches read, the overlap with the previous band kept.
Every plan then has such a stage (:func:`stream_stages`), its split tensor
never over the source, and the search adds stages over the peaks after it
from several of them (:func:`_more_stream_stages`).

A plan may hold several stages over disjoint chains: the search finds the
best single stage, then adds a stage over a chain covering the step where
the smallest plan found peaks, while that makes the arena smaller (or, with
a budget, until it fits), up to ``MAX_STAGES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyml.errors import FitError, UnsupportedError
from tinyml.graph.ir import Graph
from tinyml.schedule.geometry import Window, window_of
from tinyml.schedule.plan import DIRECT, OpFacts, PatchStage, PatchWindow, Plan, plan_memory

MAX_GRID = 16  # patches per side tried by the search
MAX_CHAIN = 12  # ops per stage tried by the search


def _bounds(n: int, parts: int) -> list[int]:
    return [round(i * n / parts) for i in range(parts + 1)]


def macs_per_pixel(graph: Graph, op_index: int) -> int:
    op = graph.ops[op_index]
    win = window_of(graph, op)
    assert win is not None
    if op.kind == "DEPTHWISE_CONV_2D":
        return win.k_h * win.k_w * win.out_c
    w = graph.tensors[op.inputs[1]]
    return win.k_h * win.k_w * int(w.shape[3]) * win.out_c


def chain_ok(graph: Graph, ops: list[int], facts: dict[int, OpFacts]) -> bool:
    """Can ``ops`` (graph op indices) form a patch stage?"""
    if not ops:
        return False
    consumers = graph.consumers()
    outs = set(graph.outputs)
    for j, o in enumerate(ops):
        op = graph.ops[o]
        if not facts.get(o, OpFacts()).patchable or window_of(graph, op) is None:
            return False
        if j > 0 and op.inputs[0] != graph.ops[ops[j - 1]].outputs[0]:
            return False
        if j < len(ops) - 1:
            t = op.outputs[0]
            if consumers.get(t, []) != [ops[j + 1]] or t in outs:
                return False
    return True


def make_stage(graph: Graph, ops: list[int], grid: tuple[int, int], facts: dict[int, OpFacts],
               stream: bool = False) -> PatchStage | None:
    """The windows of every op for every patch of ``grid`` (None if the grid does not fit the split tensor).
    With ``stream``, the source is streamed: the first op of each patch reads the rows its band of patches
    reads (full width) from a buffer holding only those (None where the bands do not move down the image)."""
    wins: list[Window] = [window_of(graph, graph.ops[o]) for o in ops]  # type: ignore[misc]
    last = wins[-1]
    gh, gw = grid
    if gh > last.out_h or gw > last.out_w:
        return None
    rb, cb = _bounds(last.out_h, gh), _bounds(last.out_w, gw)
    k = len(ops)
    regions: list[list[tuple[int, int, int, int]]] = [[] for _ in range(k)]  # [op][patch] output (y0,y1,x0,x1)
    source_rows: list[tuple[int, int]] = []  # per patch: rows of the source read
    for i in range(gh):
        for j in range(gw):
            y0, y1, x0, x1 = rb[i], rb[i + 1], cb[j], cb[j + 1]
            for n in range(k - 1, -1, -1):
                regions[n].append((y0, y1, x0, x1))
                y0, y1 = wins[n].in_rows(y0, y1)
                x0, x1 = wins[n].in_cols(x0, x1)
                if y0 >= y1 or x0 >= x1:
                    return None
            source_rows.append((y0, y1))
    bands = [(min(source_rows[b * gw + j][0] for j in range(gw)), max(source_rows[b * gw + j][1] for j in range(gw)))
             for b in range(gh)]
    if stream and any(b[0] < a[0] or b[1] < a[1] for a, b in zip(bands, bands[1:])):
        return None  # rows are read in increasing order, each once
    for n in range(k):  # a kernel that computes windows up to a width only
        widest = facts.get(ops[n], OpFacts()).max_window_w
        if widest and any(x1 - x0 > widest for _, _, x0, x1 in regions[n]):
            return None
    windows: list[list[PatchWindow]] = []
    macs = full = 0
    op_scale: list[float] = []
    for n in range(k):
        w = wins[n]
        per = macs_per_pixel(graph, ops[n])
        full += w.out_h * w.out_w * per
        op_scale.append(sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in regions[n]) / max(w.out_h * w.out_w, 1))
        row = []
        for p, (y0, y1, x0, x1) in enumerate(regions[n]):
            macs += (y1 - y0) * (x1 - x0) * per
            if n == 0 and stream:
                iy0, ix0, ih, iw = bands[p // gw][0], 0, bands[p // gw][1] - bands[p // gw][0], w.in_w
            elif n == 0:
                iy0, ix0, ih, iw = 0, 0, w.in_h, w.in_w
            else:
                py0, py1, px0, px1 = regions[n - 1][p]
                iy0, ix0, ih, iw = py0, px0, py1 - py0, px1 - px0
            if n == k - 1:
                oy0b, ox0b, pitch = 0, 0, w.out_w
            else:
                oy0b, ox0b, pitch = y0, x0, x1 - x0
            row.append(PatchWindow(in_y0=iy0, in_x0=ix0, in_h=ih, in_w=iw, oy0=y0, ox0=x0, out_h=y1 - y0,
                                   out_w=x1 - x0, out_y0=oy0b, out_x0=ox0b, out_pitch=pitch))
        windows.append(row)
    source = graph.ops[ops[0]].inputs[0]
    split = graph.ops[ops[-1]].outputs[0]
    stage = PatchStage(ops=list(ops), grid=grid, source=source, split=split, windows=windows, macs=macs,
                       extra_macs=macs - full, op_scale=op_scale, stream=stream, bands=bands if stream else [])
    if not stream and not facts.get(ops[0], OpFacts()).strided_input:  # else its input rows are not contiguous bytes
        stage.delta = _overlap_delta(graph, stage, wins[0], last, rb, source_rows)
    return stage


def _overlap_delta(graph: Graph, stage: PatchStage, first: Window, last: Window, rb: list[int],
                   source_rows: list[tuple[int, int]]) -> int | None:
    """Largest offset of the split tensor relative to the source at which no band overwrites a live row."""
    consumers = graph.consumers()
    src = stage.source
    if consumers.get(src, []) != [stage.ops[0]] or src in graph.outputs:
        return None
    if graph.tensors[src].dtype != "int8" or graph.tensors[stage.split].dtype != "int8":
        return None
    gh, gw = stage.grid
    x_row = first.in_w * first.in_c
    y_row = last.out_w * last.out_c
    # First source row that band b or any later band reads.
    firsts = [min(source_rows[b * gw + j][0] for j in range(gw)) for b in range(gh)]
    for b in range(gh - 2, -1, -1):
        firsts[b] = min(firsts[b], firsts[b + 1])
    delta = min(firsts[b] * x_row - rb[b + 1] * y_row for b in range(gh))
    return min(delta, 0)


@dataclass
class Candidate:
    plan: Plan
    stages: tuple[PatchStage, ...] = ()

    @property
    def arena(self) -> int:
        return self.plan.arena_bytes

    @property
    def extra(self) -> int:
        return self.plan.extra_macs


# patch rows x columns tried: square grids, row bands, and the rectangles of small sides (a 3x4 grid can fit
# where 3x3 does not with fewer recomputed halos than 4x4)
SIDES = (1, 2, 3, 4, 5, 6, 8)
GRIDS = sorted({(n, n) for n in (2, 3, 4, 5, 6, 8, 10, 12, 16)} | {(n, 1) for n in (2, 3, 4, 6, 8, 12, 16)}
               | {(a, b) for a in SIDES for b in SIDES if (a, b) != (1, 1)})
MAX_FULL_PLANS = 40  # full plans evaluated per search
MAX_STAGES = 4  # patch stages per plan
MAX_EXTEND_PLANS = 12  # full plans evaluated per added stage


STREAM_BANDS = (24, 32, 48, 64, 96, 128)  # more row bands tried for a streamed stage (a smaller stream buffer)


def stream_start(graph: Graph, facts: dict[int, OpFacts]) -> int:
    """The operator that reads the model's input row by row when it is streamed: the only consumer of input
    0, a convolution whose kernel computes windows.  Raises UnsupportedError (one line) for any other model."""
    what = f"model '{graph.name}' cannot stream its input row by row (--stream-input)"
    if len(graph.inputs) != 1:
        raise UnsupportedError(f"{what}: it has {len(graph.inputs)} inputs and only a single-input model can be "
                               "streamed; compile without --stream-input")
    t = graph.inputs[0]
    tensor = graph.tensors[t]
    users = graph.consumers().get(t, [])
    if len(tensor.shape) != 4 or tensor.shape[0] != 1 or tensor.is_const or t in graph.outputs:
        raise UnsupportedError(f"{what}: input 0 has shape {list(tensor.shape)}, not a batch-1 image (1, H, W, C) "
                               "read by the model; compile without --stream-input")
    kinds = ", ".join(f"op {o} ({graph.ops[o].kind})" for o in users) or "no operator"
    if len(users) != 1 or graph.ops[users[0]].inputs.count(t) != 1 or graph.ops[users[0]].inputs[0] != t:
        raise UnsupportedError(f"{what}: input 0 is read by {kinds}, and streaming needs it read once, by one "
                               "CONV_2D or DEPTHWISE_CONV_2D; compile without --stream-input")
    op = users[0]
    if window_of(graph, graph.ops[op]) is None or not facts.get(op, OpFacts()).patchable:
        raise UnsupportedError(f"{what}: input 0 is read by {kinds}, and streaming needs it read by a CONV_2D or "
                               "DEPTHWISE_CONV_2D whose kernel computes row windows; compile without --stream-input")
    return op


def stream_stages(graph: Graph, facts: dict[int, OpFacts], order: list[int]) -> list[PatchStage]:
    """The streamed patch stages: chains from the operator that reads the model's input (one operator or
    more) for every grid, and more row bands."""
    a = order.index(stream_start(graph, facts))
    stages = []
    for b in range(a, min(a + MAX_CHAIN, len(order))):
        ops = order[a:b + 1]
        if not chain_ok(graph, ops, facts):
            break
        last = window_of(graph, graph.ops[ops[-1]])
        assert last is not None
        for g in [(1, 1), *GRIDS, *((n, 1) for n in STREAM_BANDS)]:
            if g[0] <= last.out_h and g[1] <= last.out_w and (st := make_stage(graph, ops, g, facts, True)):
                stages.append(st)
    return stages


def candidate_stages(graph: Graph, facts: dict[int, OpFacts], order: list[int],
                     cover: set[int] | None = None) -> list[PatchStage]:
    """Patch stages over chains of ``order`` (covering a step of ``cover`` if given) for every grid."""
    stages = []
    for a in range(len(order)):
        for b in range(a + 1, min(a + MAX_CHAIN, len(order))):
            ops = order[a:b + 1]
            if not chain_ok(graph, ops, facts):
                break
            if cover is not None and not cover & set(range(a, b + 1)):
                continue
            last = window_of(graph, graph.ops[ops[-1]])
            assert last is not None
            for g in GRIDS:
                if g[0] > last.out_h or g[1] > last.out_w:
                    continue
                st = make_stage(graph, ops, g, facts)
                if st is not None:
                    stages.append(st)
    return stages


def _lower_bound(graph: Graph, base: Plan, stages: tuple[PatchStage, ...]) -> int:
    """A lower bound of the arena of a plan with ``stages`` (to skip hopeless candidates): outside the
    stages, the largest activation an operator reads or writes (what no in-place decision can hide); in
    each, the source and split tensors (overlapped by ``delta``) and the largest pair of consecutive patch
    buffers."""
    inside = {o for st in stages for o in st.ops}
    bound = max((graph.tensors[t].nbytes for o in base.order if o not in inside
                 for t in (*graph.ops[o].inputs, *graph.ops[o].outputs)
                 if t >= 0 and not graph.tensors[t].is_const), default=0)
    for st in stages:
        x, y = graph.tensors[st.source].nbytes, graph.tensors[st.split].nbytes
        if st.stream:
            x = x // graph.tensors[st.source].shape[1] * st.stream_rows
        xy = max(x, st.delta + y) - min(0, st.delta) if st.delta is not None else x + y
        sizes = [max(w.out_h * w.out_w for w in st.windows[j]) * graph.tensors[graph.ops[o].outputs[0]].shape[-1]
                 for j, o in enumerate(st.ops[:-1])]
        pair = max([sizes[0]] + [a + b for a, b in zip(sizes, sizes[1:])]) if sizes else 0
        bound = max(bound, xy + pair)
    return bound


def describe_stages(stages: tuple[PatchStage, ...] | list[PatchStage]) -> str:
    """"layer by layer" or the patch stages, in words."""
    if not stages:
        return "layer by layer"
    return ", ".join(f"ops {st.ops[0]}..{st.ops[-1]} in {st.grid[0]}x{st.grid[1]} patches" for st in stages)


def _staged(graph: Graph, facts: dict[int, OpFacts], stages: tuple[PatchStage, ...], order: list[int],
            tight: bool, sram: int | None) -> list[Candidate]:
    """The plan of ``stages`` in ``order`` (ring kernels in place without their ring wherever they can), and
    with ``tight``, where some kernel runs so and the arena is above ``sram`` (outputs shifted below their
    inputs can leave gaps in the arena, or raise the peak itself), also the smallest of the plans that run
    so only where it shifts nothing, or nowhere, or only at the steps where those hold more than its peak
    (without a ring an operator can need less memory than through one, and one output shifted below its
    input leaves no gap that matters); the smallest arena first."""
    p = plan_memory(graph, facts, stages=stages, orders=[order])
    out = [Candidate(p, stages)]
    if tight and any(ip.direct for ip in p.inplace.values()) and (sram is None or p.arena_bytes > sram):
        q = min((plan_memory(graph, facts, stages=stages, orders=[order], direct=d) for d in DIRECT[1:]),
                key=lambda q: q.arena_bytes)
        live = q.live_bytes()
        at = frozenset(op for s, op in enumerate(q.order)
                       if live[s] > p.peak_bytes and op in p.inplace and p.inplace[op].direct)
        if at:
            r = plan_memory(graph, facts, stages=stages, orders=[order], direct_at=at)
            if r.arena_bytes < q.arena_bytes:
                q = r
        if q.arena_bytes < p.arena_bytes:
            out.insert(0, Candidate(q, stages))
    return out


def _extend(graph: Graph, facts: dict[int, OpFacts], c: Candidate, total: int, max_extra: float | None,
            sram: int | None, tight: bool = False) -> list[Candidate]:
    """Plans with one patch stage more than ``c``, over a chain of operators outside its stages that covers
    a step where its memory peaks.  With ``sram``: fewest extra MACs first, until one fits; without: smallest
    lower bound first, each planned only while its bound beats the smallest arena found."""
    used = {o for st in c.stages for o in st.ops}
    live = c.plan.live_bytes()
    if any(st.stream for st in c.stages):  # the peak outside the stages (a streamed plan starts from many)
        live = [0 if o in used else v for o, v in zip(c.plan.order, live)]
    peak = max(live, default=0)
    cover = {s for s, v in enumerate(live) if v == peak}
    extra = sum(st.extra_macs for st in c.stages)
    new = [(c.stages + (st,), st) for st in candidate_stages(graph, facts, c.plan.order, cover)
           if not used & set(st.ops) and (max_extra is None or extra + st.extra_macs <= max_extra * total)]
    bounds = [(_lower_bound(graph, c.plan, sts), sts) for sts, _ in new]
    out: list[Candidate] = []
    if sram is not None:
        ranked = sorted([b for b in bounds if b[0] <= sram], key=lambda b: (sum(s.extra_macs for s in b[1]), b[0]))
    else:
        ranked = sorted([b for b in bounds if b[0] < c.arena],
                        key=lambda b: (b[0], -b[1][-1].patches, sum(s.extra_macs for s in b[1])))
    best = c.arena
    for lb, sts in ranked[:MAX_EXTEND_PLANS]:
        if sram is None and lb >= best:
            break
        made = _staged(graph, facts, sts, c.plan.order, tight, sram)
        q = made[0]
        out += made
        best = min(best, q.arena)
        if sram is not None and q.arena <= sram:
            break
    return out


def search(graph: Graph, facts: dict[int, OpFacts], *, sram: int | None = None,
           max_extra: float | None = None, tight: bool = False, stream: bool = False) -> list[Candidate]:
    """Plans worth comparing: layer by layer, plus patch stages.  ``tight`` (for a budget): a plan whose
    in-place outputs leave gaps above its peak is also made without them (:func:`_staged`).

    With ``sram``: candidates whose lower bound fits, fewest extra MACs first,
    until one fits.  Without: each chain of operators with its finest grid, then
    the frontier of arena against extra MACs over the chains that beat layer by
    layer (fewest extra MACs first, each planned only when its bound beats the
    smallest arena found so far), then smallest lower bound first, until no
    candidate can beat the best arena found.

    With ``stream`` (the model's input streamed row by row), every plan has a
    streamed stage: the candidates are those stages (:func:`stream_stages`)
    instead of layer by layer and the stages over its peak.
    """
    base = plan_memory(graph, facts)
    out = [] if stream else [Candidate(base)]
    live = base.live_bytes()
    peak = max(live, default=0)
    cover = {s for s, v in enumerate(live) if v == peak}
    total = max(base.macs, 1)
    stages = [st for st in (stream_stages(graph, facts, base.order) if stream
                            else candidate_stages(graph, facts, base.order, cover))
              if max_extra is None or st.extra_macs <= max_extra * total]
    bounds = [(_lower_bound(graph, base, (st,)), st) for st in stages]
    by_extra = sorted(bounds, key=lambda x: (x[1].extra_macs, x[0]))

    def plan(st: PatchStage) -> Candidate:
        made = _staged(graph, facts, (st,), base.order, tight, sram)
        out.extend(made)
        return made[0]

    if sram is not None:
        for lb, st in [(lb, st) for lb, st in by_extra if lb <= sram][:MAX_FULL_PLANS]:
            if plan(st).arena <= sram:
                return out
        return _more_stages(graph, facts, out, total, max_extra, sram, tight)
    # The frontier of arena against extra MACs.  First each chain with its finest grid (about the smallest
    # arena the chain reaches): chains that cannot beat layer by layer so are dropped.  Then fewest extra
    # MACs first, each candidate planned only when its bound beats the smallest arena found with fewer.
    finest: dict[tuple[int, ...], PatchStage] = {}
    for st in stages:
        f = finest.get(tuple(st.ops))
        if f is None or (st.patches, -st.extra_macs) > (f.patches, -f.extra_macs):
            finest[tuple(st.ops)] = st
    viable = {ops for ops, st in finest.items() if plan(st).arena < base.arena_bytes or stream}
    best, n = min(c.arena for c in out), 0
    for lb, st in by_extra:
        if n == MAX_FULL_PLANS:
            break
        if lb < best and tuple(st.ops) in viable and st is not finest[tuple(st.ops)]:
            best, n = min(best, plan(st).arena), n + 1
    # Then the smallest arena, smallest bound first (among equal bounds, the finest grid).
    n = 0
    for lb, st in sorted(bounds, key=lambda x: (x[0], -x[1].patches, x[1].extra_macs)):
        if lb >= best or n == MAX_FULL_PLANS:
            break
        if tuple(st.ops) in viable and not any(len(c.stages) == 1 and c.stages[0] is st for c in out):
            best, n = min(best, plan(st).arena), n + 1
    return _more_stages(graph, facts, out, total, max_extra, None, tight)


def _more_stages(graph: Graph, facts: dict[int, OpFacts], out: list[Candidate], total: int,
                 max_extra: float | None, sram: int | None, tight: bool = False) -> list[Candidate]:
    """``out`` and the plans with more patch stages: while a plan with one more stage than the smallest plan
    found has a smaller arena (or, with ``sram``, until one fits), up to MAX_STAGES stages.  Plans with a
    streamed stage: from each of the STREAM_STARTS whose streamed stage peaks lowest, more stages over the
    peak outside their stages while that makes the arena smaller (the streamed stage's choice and the
    stages after it depend on each other)."""
    if any(c.stages and c.stages[0].stream for c in out):
        return _more_stream_stages(graph, facts, out, total, max_extra, sram, tight)
    for _ in range(MAX_STAGES - 1):
        with_stages = [c for c in out if c.stages]
        if not with_stages or (sram is not None and any(c.arena <= sram for c in out)):
            break
        start = min(with_stages, key=lambda c: (c.arena, c.extra))
        if len(start.stages) == MAX_STAGES:
            break
        more = _extend(graph, facts, start, total, max_extra, sram, tight)
        out += more
        if not more or (sram is None and min(c.arena for c in more) >= start.arena):
            break
    return out


STREAM_STARTS = 8  # streamed plans extended with more stages


def _stage_peak(c: Candidate) -> int:
    """The most bytes a plan holds while its stages run."""
    used = {o for st in c.stages for o in st.ops}
    return max((v for o, v in zip(c.plan.order, c.plan.live_bytes()) if o in used), default=0)


def _more_stream_stages(graph: Graph, facts: dict[int, OpFacts], out: list[Candidate], total: int,
                        max_extra: float | None, sram: int | None, tight: bool) -> list[Candidate]:
    starts = sorted((c for c in out if len(c.stages) == 1), key=lambda c: (_stage_peak(c), c.extra))
    seen: set[int] = set()
    for c in starts:
        if len(seen) == STREAM_STARTS:
            break
        if _stage_peak(c) in seen:
            continue
        seen.add(_stage_peak(c))
        for _ in range(MAX_STAGES - 1):
            if sram is not None and c.arena <= sram:
                break
            more = _extend(graph, facts, c, total, max_extra, sram, tight)
            out += more
            if not more or min(q.arena for q in more) >= c.arena:
                break
            c = min(more, key=lambda q: (q.arena, q.extra))
    return out


def cheaper_fits(graph: Graph, facts: dict[int, OpFacts], found: list[Candidate], sram: int) -> list[Candidate]:
    """For each chain whose one-stage plan in ``found`` peaks within ``sram``, the plan of that chain with
    the fewest extra MACs that fits: its grids with as many extra MACs or fewer, most first (up to
    MAX_FULL_PLANS plans per chain), each planned as :func:`_staged` does with ``tight``.  (The budgeted
    search ranks every chain by extra MACs against a lower bound, which near the smallest arena a model
    reaches is the same for all of them; this searches the chains known to get there.)"""
    best: dict[tuple[int, ...], Candidate] = {}
    for c in found:
        if len(c.stages) == 1 and c.plan.peak_bytes <= sram:
            key = tuple(c.stages[0].ops)
            if key not in best or c.extra < best[key].extra:
                best[key] = c
    out = []
    for ops, c in best.items():
        stream = c.stages[0].stream
        grids = [st for g in (GRIDS + [(n, 1) for n in STREAM_BANDS] if stream else GRIDS)
                 if (st := make_stage(graph, list(ops), g, facts, stream)) is not None
                 and st.extra_macs <= c.stages[0].extra_macs]
        fit = [q for st in sorted(grids, key=lambda st: -st.extra_macs)[:MAX_FULL_PLANS]
               if (q := _staged(graph, facts, (st,), c.plan.order, True, sram)[0]).arena <= sram]
        if fit:
            out.append(min(fit, key=lambda q: (q.extra, q.arena)))
    return out


def plan_for_budget(graph: Graph, facts: dict[int, OpFacts], sram: int | None = None, *,
                    max_extra: float | None = None) -> Plan:
    """The plan that fits ``sram`` bytes of arena with the fewest extra MACs.

    Without a budget: the best layer-by-layer plan (no extra computation).
    Raises FitError naming the smallest arena reachable when nothing fits.
    """
    base = plan_memory(graph, facts)
    if sram is None or base.arena_bytes <= sram:
        return base
    cands = search(graph, facts, sram=sram, max_extra=max_extra)
    if not any(c.arena <= sram for c in cands):
        cands = search(graph, facts, max_extra=max_extra)
    fit = [c for c in cands if c.arena <= sram]
    if not fit:
        best = min(cands, key=lambda c: (c.arena, c.extra))
        how = describe_stages(best.stages)
        raise FitError(
            f"model '{graph.name}' cannot run in {sram} bytes of arena: the smallest plan found needs "
            f"{best.arena} bytes ({how}); raise --sram to at least {best.arena}")
    best = min(fit, key=lambda c: (c.extra, c.arena))
    return best.plan


def smallest_plan(graph: Graph, facts: dict[int, OpFacts], *, max_extra: float | None = None) -> Plan:
    """The plan with the smallest arena (fewest extra MACs among equals)."""
    cands = search(graph, facts, max_extra=max_extra)
    return min(cands, key=lambda c: (c.arena, c.extra)).plan
