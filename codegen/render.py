"""Rendering: lowered kernel calls plus a memory plan become C source files.

Python decides (names, offsets, parameter values); the templates in
``templates/`` hold all C.  Templates receive plain values only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
import numpy as np

from tinyml.codegen.lower import Alias, Arg, KernelCall, Lowered, kernel_function_name
from tinyml.codegen.variants import variant
from tinyml.graph.ir import C_TYPES, Graph, Tensor
from tinyml.resources import resource_dir
from tinyml.schedule.place import ALIGN
from tinyml.schedule.plan import Plan


def environment() -> jinja2.Environment:
    """The one Jinja environment of every generated file (kernels, model API, project files, application
    mains): templates/ as its root, strict undefined names, block tags that take their line with them."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["c_rows"] = c_rows
    return env


def c_rows(values: np.ndarray, per_row: int = 24) -> list[str]:
    """Format an integer or float array as rows of C initializer text."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind == "f":
        text = [c_float(float(v)) for v in flat]
    else:
        text = np.char.mod("%d", flat.astype(np.int64)).tolist()
    return [", ".join(text[i:i + per_row]) for i in range(0, len(text), per_row)]


def c_float(x: float) -> str:
    if np.isnan(x) or np.isinf(x):
        raise ValueError(f"cannot render {x} as a C float constant")
    s = f"{np.float32(x).item():.9g}"
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def c_comment(text: str, limit: int | None = 60) -> str:
    """``text`` (a tensor's name: the model's, untrusted; a path) as it may stand inside a C comment: printable
    ASCII, no comment end or start, at most ``limit`` characters (None: all)."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text[:limit])
    return clean.replace("*/", "*_").replace("/*", "_*")


def text_line(text: str) -> str:
    """``text`` (a source path: the user's, any characters) as it may stand in a generated text file's line
    comment (CMake's ``#``, a C comment) or Markdown code span: c_comment's printable ASCII on one line, and
    no backtick (which ends a code span) or ``${`` (a CMake variable reference)."""
    return c_comment(text, None).replace("`", "'").replace("${", "$_{")


ARENA_KINDS = ("static", "caller")


@dataclass(frozen=True)
class Storage:
    """Where a model's memory lives: its arena ``static`` (in model.c, the default) or ``caller``
    (given to NAME_init by the firmware), and the linker sections of the weights and of the static
    arena (None: the compiler's .rodata and .bss)."""

    arena: str = "static"
    weights_section: str | None = None
    arena_section: str | None = None


@dataclass
class IoInfo:
    index: int
    ctype: str
    bytes: int
    offset: int
    shape: list[int]
    scale: str
    zero_point: int


def _io(graph: Graph, plan: Plan, t: Tensor, i: int) -> dict[str, Any]:
    return dict(
        index=i,
        ctype=C_TYPES.get(t.dtype, "int8_t"),
        bytes=t.nbytes,
        offset=plan.offset(t.index),
        shape=list(t.shape),
        scale=c_float(t.quant.s) if t.quant is not None else "1.0f",
        zero_point=t.quant.zp if t.quant is not None else 0,
        dtype=t.dtype,
        streamed=False,
    )


def _stream_view(graph: Graph, plan: Plan, call_views: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What model.c needs to stream input 0 row by row (None when it is held whole): its buffer, the source
    rows of each band of patches, and the calls that fetch a band (the stage's first op, at each band's first
    patch) and drain the rows no window read (after the stage)."""
    st = plan.stream
    if st is None:
        return None
    src = graph.tensors[st.source]
    rows = int(src.shape[1])
    for view in call_views:
        if view["op_index"] == st.ops[0]:
            view["stream_band"] = st.grid[1]
        if view["op_index"] == st.ops[-1]:
            view["stream_drain"] = True
    return dict(offset=plan.offset(st.source), rows=rows, row_bytes=src.nbytes // rows, held=st.stream_rows,
                bands=[list(b) for b in st.bands])


def render_model(graph: Graph, calls: list[Lowered], plan: Plan, *, trace_default: bool = False,
                 storage: Storage = Storage(), header: str = "model.h") -> dict[str, str]:
    """Return {file name: content} for model.h, model.c (the model with its kernels, static) and the
    kernels' headers (``header``: how model.c includes model.h)."""
    env = environment()
    name = graph.name
    const_tensors: dict[int, dict[str, Any]] = {}
    call_views: list[dict[str, Any]] = []
    kernels: dict[str, dict[str, Any]] = {}  # function name -> template info
    const_arrays: list[dict[str, Any]] = []

    def arg_expr(call: KernelCall, a: Arg) -> dict[str, Any]:
        if a.kind == "tensor":
            t = graph.tensors[a.tensor]
            if t.is_const:
                if t.index not in const_tensors:
                    cname = f"{name}_t{t.index}"
                    const_tensors[t.index] = dict(name=cname, ctype=C_TYPES[t.dtype], values=t.data,
                                                  count=t.size, comment=c_comment(t.name))
                # a kernel that moves bytes (concat_s8, copy_nd_s8, split_s8) takes a float32 constant as bytes
                return dict(kind="const", name=const_tensors[t.index]["name"], ctype=a.ctype,
                            cast=C_TYPES[t.dtype] != a.ctype)
            return dict(kind="arena", offset=plan.offset(t.index), ctype=a.ctype, writable=a.writable)
        if a.kind == "const":
            return dict(kind="const", name=f"{name}_op{call.op_index}_{a.name}", ctype=a.ctype, cast=False)
        if a.kind == "null":
            return dict(kind="null", ctype=a.ctype, writable=a.writable)
        if a.kind == "scratch":  # the call's scratch buffer, placed by the memory plan
            return dict(kind="arena", offset=plan.scratch_offset(call.op_index), ctype=a.ctype, writable=True)
        raise ValueError(a.kind)

    for item in calls:
        if isinstance(item, Alias):
            t = graph.tensors[item.target]
            # a folded TRANSPOSE's output is its input's bytes in the input's layout: nothing to trace
            call_views.append(dict(alias=True, op_index=item.op_index, op_kind=item.op_kind,
                                   folded_into=item.folded_into,
                                   stream_band=0, stream_drain=False,
                                   traces=[] if item.folded_into >= 0 else
                                   [dict(offset=plan.offset(t.index), bytes=t.nbytes)]))
            continue
        fn = kernel_function_name(item.kernel, item.spec)
        base = item.params_kernel or item.kernel  # whose params struct the kernel takes
        kernels.setdefault(fn, dict(kernel=item.kernel, template=f"kernels/{item.kernel}.c.j2", function=fn,
                                    spec=item.spec,
                                    types_template=f"kernels/{base}.c.j2"))
        for c in item.consts:
            const_arrays.append(dict(name=f"{name}_op{item.op_index}_{c.name}", ctype=c.ctype,
                                     values=c.values, count=int(c.values.size), comment=f"op {item.op_index}"))
        def c_params(values: dict[str, Any], op_index: int = item.op_index) -> dict[str, Any]:
            return {k: f"{name}_op{op_index}_{v}" if isinstance(v, str) else c_float(float(v))
                    if isinstance(v, np.floating) else int(v) for k, v in values.items()}

        params = c_params(item.params)
        call_views.append(dict(
            alias=False, op_index=item.op_index, op_kind=item.op_kind, function=fn,
            params_type=f"tml_{base}_params", params_name=f"{name}_op{item.op_index}_params",
            params=params, args=[arg_expr(item, a) for a in item.args],
            # every output, in order (verify matches the k-th record of an operator to its k-th output)
            traces=[dict(offset=plan.offset(o), bytes=graph.tensors[o].nbytes) for o in item.outputs],
            # patch-based execution (specialize.py): one params struct per patch
            patches=[c_params(pp) for pp in item.patch_params], patch_loop=item.patch_loop,
            stream_band=0, stream_drain=False,  # see _stream_view
        ))
    consts = list(const_tensors.values()) + const_arrays

    # State kept between invocations, filled as TFLM's ResetVariableTensors does: an int8 tensor's bytes
    # with its zero point, any other type's with 0.
    states = [dict(index=t, name=graph.tensors[t].name, offset=plan.offset(t), bytes=graph.tensors[t].nbytes,
                   fill=(graph.tensors[t].quant.zp & 0xFF) if graph.tensors[t].dtype == "int8"
                   and graph.tensors[t].quant is not None else 0)
              for t in graph.state_tensors()]
    inputs = [_io(graph, plan, graph.tensors[t], i) for i, t in enumerate(graph.inputs)]
    outputs = [_io(graph, plan, graph.tensors[t], i) for i, t in enumerate(graph.outputs)]
    stream = _stream_view(graph, plan, call_views)
    if stream is not None:
        inputs[0].update(streamed=True)
    ctx = dict(
        name=name, NAME=name.upper(), arena_bytes=max(plan.arena_bytes, 16), inputs=inputs, outputs=outputs,
        calls=call_views, consts=consts, kernels=list(kernels.values()), source=c_comment(graph.source, None),
        trace_default=trace_default, arena_align=ALIGN, caller_arena=storage.arena == "caller",
        weights_section=storage.weights_section, arena_section=storage.arena_section, header=header,
        states=states, state_bytes=plan.state_bytes, stream=stream,
    )
    helpers = list(dict.fromkeys(h for k in kernels.values() for h in variant(k["kernel"]).helpers))
    h_parts = [env.get_template(h).render() for h in helpers if h.endswith(".inc.j2")]
    c_parts = [env.get_template(h).render() for h in helpers if not h.endswith(".inc.j2")]
    typed: set[str] = set()
    for k in kernels.values():
        tpl = env.get_template(k["template"])
        for types in dict.fromkeys((k["types_template"], k["template"])):
            if types not in typed:
                typed.add(types)
                h_parts.append(env.get_template(types).render(part="types", function=k["function"], spec=k["spec"]))
        h_parts.append(tpl.render(part="h", function=k["function"], spec=k["spec"]))
        c_parts.append(tpl.render(part="c", function=k["function"], spec=k["spec"]))
    return {
        "model.h": env.get_template("model.h.j2").render(ctx),
        "model.c": env.get_template("model.c.j2").render(ctx, kernel_parts=c_parts),
        "tml_kernels.h": env.get_template("kernels/tml_kernels.h.j2").render(parts=h_parts),
        "tml_qmath.h": env.get_template("kernels/tml_qmath.h.j2").render(ctx),
        "tml_fixedpoint.h": env.get_template("kernels/tml_fixedpoint.h.j2").render(ctx),
    }
