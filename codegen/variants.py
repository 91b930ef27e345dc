"""Kernel variants: one declaration per kernel template, side by side with it.

A variant is a template in ``templates/kernels/<template>.c.j2`` plus the
declaration below, the way CMSIS-NN pairs each kernel with its
``*_get_buffer_size``.  The declaration is plain data: the cores it needs,
the operator parameters it accepts, whether it runs in place over an input
(in the form the lowering states for the call: "elementwise" or "ring")
and whether it computes patch windows, its scratch bytes (arena) and stack
bytes, and an estimate of its cost.  Lowering produces the portable call
of every operator once; :func:`options` lists the variants that can
compute it on a board, fastest first, with the facts the memory planner
(``tinyml.schedule``) chooses among; :mod:`tinyml.codegen.specialize`
then builds the chosen variant's call.

Costs are estimated instructions: MACs (or output elements, for kernels
without MACs) times the family's instructions per MAC, coarse figures from
the QEMU instruction counts of ``tinyml bench kernels`` (DS-CNN and
MobileNetV1 on the Cortex-M4 and M55).  The planner compares them; the
exact figures come from ``tinyml profile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tinyml.codegen import families
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.schedule.plan import OpFacts

Check = Callable[[LowerContext, KernelCall], bool]
Build = Callable[[LowerContext, KernelCall], KernelCall]


def _no_stack(call: KernelCall) -> int:
    return 0


@dataclass(frozen=True)
class Variant:
    template: str  # templates/kernels/<template>.c.j2
    implements: str  # the portable kernel whose call (and params struct) it computes
    family: str  # "portable", "dsp" or "mve"
    needs: tuple[str, ...] = ()  # board features (boards/*.toml `features`)
    inplace: bool = False  # may run in place over the inputs the lowering names (call.inplace_inputs)
    ring: bool = False  # its template takes ring_len/lag params and a ring argument (in place through a ring)
    window: bool = False  # computes a patch window of its output (conv_s8.c.j2's window params)
    accepts: Check | None = None  # the operator parameters it handles (None: every call of `implements`)
    stack: Callable[[KernelCall], int] = _no_stack  # bytes of its on-stack buffers
    per_mac: float = 1.0  # estimated instructions per MAC (per output element without MACs)
    build: Build | None = None  # its specialization (weights rearranged, shapes baked in); None: the call as is
    helpers: tuple[str, ...] = ()  # shared C it needs, rendered once per model (templates/kernels/tml_*.j2)

    def applies(self, ctx: LowerContext, call: KernelCall) -> bool:
        if call.kernel != self.implements or not set(self.needs) <= set(ctx.features):
            return False
        if self.accepts is not None and not self.accepts(ctx, call):
            return False
        return self.stack(call) <= families.stack_limit(ctx)

    def facts(self, call: KernelCall, out_elements: int) -> OpFacts:
        """What the planner needs to know of this variant for ``call``."""
        work = call.macs if call.macs else out_elements
        return OpFacts(
            inplace_inputs=tuple(call.inplace_inputs) if self.inplace else (),
            inplace_kind=call.inplace_kind,
            scratch_bytes=call.scratch_bytes,
            patchable=self.window and call.patchable,
            macs=call.macs,
            variant=self.template,
            stack_bytes=self.stack(call),
            cost=int(round(work * self.per_mac)),
        )


def _portable(template: str, *, inplace: bool = False, ring: bool = False, window: bool = False,
              per_mac: float = 4.0) -> Variant:
    return Variant(template=template, implements=template, family="portable", inplace=inplace or ring, ring=ring,
                   window=window, per_mac=per_mac, helpers=(RING,) if ring else ())


# Shared helpers: ".inc.j2" ones go into tml_kernels.h, ".c.j2" ones into tml_kernels.c.
RING = "kernels/tml_ring.inc.j2"  # tml_ring_store, for the ring form of in-place kernels
DSP = "kernels/tml_dsp_common.c.j2"  # SIMD32 loads, rotated SXTB16, requantize-and-clamp of the DSP family
MVE = "kernels/tml_mve_common.c.j2"  # the MVE family's lane requantization and tail helpers

# One declaration per template in templates/kernels/ (tml_* files are shared helpers, not kernels).
# Fastest first within a kernel: options() keeps this order.
VARIANTS: tuple[Variant, ...] = (
    Variant("conv_s8_mve", "conv_s8", "mve", ("mve",), accepts=families.mve_conv_ok, stack=families.mve_conv_stack,
            per_mac=1.6, build=families.mve_conv, helpers=(MVE,)),
    Variant("conv_s8_dsp", "conv_s8", "dsp", ("dsp",), accepts=families.dsp_conv_ok, stack=families.dsp_conv_stack,
            per_mac=2.0, build=families.dsp_conv, helpers=(DSP,)),
    _portable("conv_s8", ring=True, window=True, per_mac=12.0),
    Variant("dwconv_s8_mve", "dwconv_s8", "mve", ("mve",), accepts=families.mve_dwconv_ok,
            stack=families.mve_dwconv_stack, per_mac=2.5, build=families.mve_dwconv, helpers=(MVE,)),
    Variant("dwconv_s8_dsp", "dwconv_s8", "dsp", ("dsp",), accepts=families.dsp_dwconv_ok,
            stack=families.dsp_dwconv_stack, per_mac=3.0, build=families.dsp_dwconv, helpers=(DSP,)),
    _portable("dwconv_s8", ring=True, window=True, per_mac=14.0),
    Variant("fc_s8_mve", "fc_s8", "mve", ("mve",), accepts=families.mve_fc_ok, per_mac=1.2, build=families.mve_fc,
            helpers=(MVE,)),
    Variant("fc_s8_dsp", "fc_s8", "dsp", ("dsp",), accepts=families.dsp_fc_ok, per_mac=1.5, build=families.dsp_fc,
            helpers=(DSP,)),
    _portable("fc_s8", ring=True, per_mac=8.0),
    _portable("add_s8", inplace=True, per_mac=30.0),
    _portable("mul_s8", inplace=True, per_mac=25.0),
    _portable("elementwise_lut_s8", inplace=True, per_mac=5.0),
    _portable("relu6_s8", inplace=True, per_mac=6.0),
    _portable("avgpool_s8", per_mac=10.0),
    _portable("maxpool_s8", per_mac=8.0),
    _portable("mean_s8", per_mac=8.0),
    _portable("pad_s8", per_mac=4.0),
    _portable("concat_s8", per_mac=4.0),
    _portable("softmax_s8", per_mac=60.0),
    _portable("quantize_f32_s8", per_mac=30.0),
    _portable("dequantize_s8_f32", per_mac=10.0),
)

_BY_TEMPLATE = {v.template: v for v in VARIANTS}


def variant(template: str) -> Variant:
    return _BY_TEMPLATE[template]


def options(ctx: LowerContext, call: KernelCall) -> list[Variant]:
    """The variants that compute ``call`` on the board of ``ctx``, fastest first (the portable one last)."""
    found = [v for v in VARIANTS if v.applies(ctx, call)]
    if not found:
        raise ValueError(f"no kernel variant declared for {call.kernel} (op {call.op_index}); this is a bug")
    return found


def fastest(ctx: LowerContext, call: KernelCall) -> Variant:
    return options(ctx, call)[0]
