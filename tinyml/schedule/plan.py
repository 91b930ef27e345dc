"""Static arena planning: execution order, tensor lifetimes, arena offsets.

Every activation tensor (model inputs and outputs included) gets an offset
in one static arena.  Ops that only reinterpret their input (RESHAPE,
SQUEEZE) make their output an alias of the input: both share one buffer.
Buffers whose lifetimes overlap never overlap in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyml.graph.ir import Graph

ALIAS_OPS = ("RESHAPE", "SQUEEZE")
ALIGN = 16


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Buffer:
    """One region of the arena shared by a tensor and its aliases."""

    tensors: list[int]
    size: int
    first: int  # first step at which it is live (op position; -1: before the first op)
    last: int  # last step at which it is live
    offset: int = -1


@dataclass
class Plan:
    order: list[int]  # positions in graph.ops, in execution order
    buffers: list[Buffer]
    tensor_buffer: dict[int, int]  # tensor index -> buffer index
    arena_bytes: int
    strategy: str = "greedy"
    notes: list[str] = field(default_factory=list)

    def offset(self, tensor: int) -> int:
        return self.buffers[self.tensor_buffer[tensor]].offset

    def live_bytes(self) -> list[int]:
        """Bytes of activations live at each step of the order."""
        out = []
        for step in range(len(self.order)):
            out.append(sum(b.size for b in self.buffers if b.first <= step <= b.last))
        return out

    @property
    def peak_bytes(self) -> int:
        return max(self.live_bytes(), default=0)


def plan_memory(graph: Graph) -> Plan:
    """A simple correct plan: topological order as stored, greedy-by-size placement."""
    order = list(range(len(graph.ops)))
    step_of = {pos: s for s, pos in enumerate(order)}

    # Union tensors that alias each other.
    parent: dict[int, int] = {}

    def find(t: int) -> int:
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    for op in graph.ops:
        if op.kind in ALIAS_OPS and op.inputs and op.inputs[0] >= 0 and not graph.tensors[op.inputs[0]].is_const:
            parent[find(op.outputs[0])] = find(op.inputs[0])

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    n_steps = len(order)
    for t in graph.activation_tensors():
        root = find(t)
        members.setdefault(root, []).append(t)
    for t in graph.inputs:
        r = find(t)
        first[r] = -1
        last[r] = max(last.get(r, -1), -1)
    for pos in order:
        s = step_of[pos]
        op = graph.ops[pos]
        for t in op.outputs:
            r = find(t)
            first[r] = min(first.get(r, s), s)
            last[r] = max(last.get(r, s), s)
        for t in op.inputs:
            if t >= 0 and not graph.tensors[t].is_const:
                r = find(t)
                first[r] = min(first.get(r, s), s)
                last[r] = max(last.get(r, s), s)
    for t in graph.outputs:
        r = find(t)
        last[r] = n_steps
        first.setdefault(r, -1)

    buffers: list[Buffer] = []
    tensor_buffer: dict[int, int] = {}
    for root, ts in sorted(members.items()):
        if root not in first:
            continue  # not used by any op
        size = max(graph.tensors[t].nbytes for t in ts)
        tensor_buffer.update({t: len(buffers) for t in ts})
        buffers.append(Buffer(tensors=sorted(ts), size=size, first=first[root], last=last[root]))

    arena = place_greedy(buffers)
    return Plan(order=order, buffers=buffers, tensor_buffer=tensor_buffer, arena_bytes=arena)


def place_greedy(buffers: list[Buffer]) -> int:
    """Greedy by size: largest first, each at the lowest offset that fits (TFLM's scheme)."""
    placed: list[Buffer] = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.first)):
        conflicts = sorted(
            (p for p in placed if not (p.last < b.first or b.last < p.first)), key=lambda p: p.offset)
        offset = 0
        for p in conflicts:
            if offset + _align(b.size) <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        b.offset = offset
        placed.append(b)
    return _align(max((b.offset + b.size for b in buffers), default=0))
