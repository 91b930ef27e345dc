"""The commands users call on a model or a project: inspect, plan, verify,
profile, bench, run (``execute``), and the TFLM oracle (``reference``) they
check against.  Each sits on top of the flow (graph, codegen, schedule,
compiler, targets) and nothing below imports them."""
