"""State kept between invocations (variable tensors): the planner gives each one an arena region of its own,
live at every step, reported as "state"; the model's init and NAME_reset() fill it as TFLM does; validation
admits it only at the inputs an operator's row declares as state.  (The operators that keep state and their
sequences of invokes against TFLM: tests/test_svdf.py.)"""

from __future__ import annotations

import numpy as np

from tinyml.graph.ir import Graph, Op, Quant, Tensor
from tinyml.schedule.plan import OpFacts, conflicts, plan_memory


def _q(zp: int = 0) -> Quant:
    return Quant(scale=np.array([0.1], np.float32), zero_point=np.array([zp], np.int64))


def _graph() -> Graph:
    """x -> ADD(x, x) -> a; a and the variable tensor s -> "SEQ" -> b; b -> ADD(b, b) -> y: s is state."""
    t = [Tensor(0, "x", (1, 64), "int8", _q()), Tensor(1, "a", (1, 64), "int8", _q()),
         Tensor(2, "s", (1, 40), "int16", _q(), variable=True), Tensor(3, "b", (1, 64), "int8", _q()),
         Tensor(4, "y", (1, 64), "int8", _q()), Tensor(5, "w", (1, 64), "int8", _q(), variable=True)]
    ops = [Op(0, "ADD", [0, 0], [1]), Op(1, "SEQ", [1, 2], [3]), Op(2, "ADD", [3, 3], [5]), Op(3, "ADD", [5, 5], [4])]
    return Graph(name="g", tensors=t, ops=ops, inputs=[0], outputs=[4])


def test_state_tensors_are_variables_read_before_any_write() -> None:
    g = _graph()
    assert g.state_tensors() == [2]  # tensor 5 is variable but written before it is read: an activation


def test_state_has_its_own_region_live_at_every_step() -> None:
    """Its own bytes at the start of the arena, counted in the peak at every step, never run over in place."""
    g = _graph()
    facts = {i: OpFacts(inplace_inputs=(0,)) for i in range(len(g.ops))}
    plan = plan_memory(g, facts)
    b = plan.buffers[plan.tensor_buffer[2]]
    assert (b.kind, b.first, b.last, b.size, b.offset) == ("state", 0, len(g.ops) - 1, 80, 0)
    assert all(o.offset >= 80 for o in plan.buffers if o is not b)  # one region at the start of the arena
    assert plan.state_bytes == 80 and not conflicts(g, plan)
    assert all(plan.tensor_buffer[t] != plan.tensor_buffer[2] for t in (0, 1, 3, 4, 5))
    for step in range(len(g.ops)):  # counted in the peak at every step
        assert b in plan.live_buffers(step)
    assert plan.peak_bytes >= 80 + 64
    assert all(ip.tensor != 2 for ip in plan.inplace.values())
    assert plan_memory(Graph(name="h", tensors=g.tensors[:2], ops=g.ops[:1], inputs=[0], outputs=[1])
                       ).state_bytes == 0
