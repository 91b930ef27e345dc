"""The declaration of a kernel variant: what it can do and what it costs, as plain data.

A variant is a template in ``templates/kernels/<template>.c.j2`` plus one
:class:`Variant` declared beside the code that produces its call, the way
CMSIS-NN pairs each kernel with its ``*_get_buffer_size``: the portable
kernels in the lowering module of their operator (``ops/*.py``), the DSP
and MVE variants next to their specialization in ``families.py``.
``variants.py`` gathers them.  A declaration states the cores it needs, the
operator parameters it accepts, whether it runs in place over an input (in
the form the lowering states for the call: "elementwise" or "ring") and
whether it computes patch windows, its scratch bytes (arena) and stack
bytes, and an estimate of its cost.

Costs are estimated instructions: MACs (or output elements, for kernels
without MACs) times the variant's instructions per MAC, coarse figures from
the QEMU instruction counts of ``tinyml bench kernels``.  The planner
compares them; exact figures come from ``tinyml profile``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil
from typing import Callable

from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.schedule.plan import OpFacts

STACK_LIMIT_BYTES = 8 * 1024  # largest on-stack buffer a variant may use, and at most a third of the stack

# Shared C helpers: ".inc.j2" ones go into tml_kernels.h, ".c.j2" ones into model.c, once per model.
RING = "kernels/tml_ring.inc.j2"  # tml_ring_store, for the ring form of in-place kernels
DSP = "kernels/tml_dsp_common.c.j2"  # SIMD32 loads, rotated SXTB16, requantize-and-clamp of the DSP family
MVE = "kernels/tml_mve_common.c.j2"  # the MVE family's lane requantization and tail helpers
SIGMOID_S16 = "kernels/tml_sigmoid_s16.c.j2"  # TFLM's int16 sigmoid and tanh on its sigmoid table (LOGISTIC, TANH, LSTM)
FLOAT_HELPERS = "kernels/tml_float.inc.j2"  # tml_clamp_f32, TML_FLT_MAX, <math.h> (the float32 kernels)

FAMILY_RANK = {"mve": 0, "dsp": 1, "portable": 2}  # fastest first, where several variants apply

# Estimated cycles per instruction of each kernel family on each core, to turn the declared costs
# (estimated instructions) into estimated cycles without running QEMU (``variants.estimate_cycles``).
# Fitted to the cycle model (zero-wait-state, TRM timings; the M7 and M55 tables are approximations):
# per core and family, the cycles over the instructions of the layers that family ran, as
# `tinyml profile MODEL --board B --json` measured them in December 2026 for the zoo networks ds_cnn,
# resnet8 and mobilenet_v1 on mps2-an385 (Cortex-M3), mps2-an386 (M4) and mps3-an547 (M55), and
# ds_cnn alone on mps2-an505 (M33) and mps2-an500 (M7).  Cores without an entry
# (M0, M0+) get no estimate.  The estimate's error is mostly the declared instructions', not these
# factors': on mps2-an386 it is 5% above the profiled cycles for ds_cnn (tests/test_profile.py checks
# it within 15%), 6% below for mobilenet_v1 and 30% above for resnet8.
CYCLES_PER_INSTRUCTION: dict[tuple[str, str], float] = {
    ("cortex-m3", "portable"): 1.54,
    ("cortex-m4", "portable"): 1.43,  # the softmax, pooling and FC layers beside the DSP kernels
    ("cortex-m4", "dsp"): 1.13,
    ("cortex-m33", "portable"): 1.42,
    ("cortex-m33", "dsp"): 1.14,
    ("cortex-m7", "portable"): 0.83,
    ("cortex-m7", "dsp"): 0.76,
    ("cortex-m55", "portable"): 1.20,
    ("cortex-m55", "dsp"): 1.18,
    ("cortex-m55", "mve"): 1.50,
}


def stack_limit(ctx: LowerContext) -> int:
    """Largest on-stack buffer a variant may declare on the board of ``ctx``."""
    return min(STACK_LIMIT_BYTES, ctx.stack_bytes // 3) if ctx.stack_bytes else STACK_LIMIT_BYTES


Check = Callable[[LowerContext, KernelCall], bool]
Build = Callable[[LowerContext, KernelCall], KernelCall]


def _zero(call: KernelCall) -> int:
    return 0  # no on-stack buffer, no extra ring unit


@dataclass(frozen=True)
class Variant:
    """One kernel variant (see the module docstring)."""

    template: str  # templates/kernels/<template>.c.j2
    implements: str  # the portable kernel whose call (and params struct) it computes
    family: str  # "portable", "dsp" or "mve"
    needs: tuple[str, ...] = ()  # board features (boards/*.toml `features`)
    inplace: bool = False  # may run in place over the inputs the lowering names (call.inplace_inputs)
    ring: bool = False  # its template takes ring_len/lag params and a ring argument (in place through a ring)
    ring_extra: Callable[[KernelCall], int] = _zero  # ring units it holds beyond lag + 1 (computes ahead)
    ring_direct: bool = False  # its whole-layer form reads every input a unit needs before it writes the unit
    # (all of a pixel's taps, or its input rows), so it runs in place without a ring where no lag is needed
    direct_stack: Callable[[KernelCall], int] = _zero  # > 0: its template has its own form for that (spec
    # over_input: its whole-layer form is not safe over its input), with that many more on-stack bytes
    direct_cost: Callable[[KernelCall], int] = _zero  # estimated instructions that form adds
    direct_accepts: Callable[[KernelCall], bool] | None = None  # the calls it so runs (None: every one)
    window: bool = False  # computes a patch window of its output (conv_s8.c.j2's window params)
    strided_input: bool = False  # reads input 0 through the call's input_strides (a TRANSPOSE folded into it)
    strided_output: bool = False  # writes output 0 through the call's output_strides (a TRANSPOSE of it folded)
    accepts: Check | None = None  # the operator parameters it handles (None: every call of `implements`)
    stack: Callable[[KernelCall], int] = _zero  # bytes of its on-stack buffers (whole layer)
    form_stack: Callable[[KernelCall], int] = _zero  # more on-stack bytes when it runs in place or in patches
    # where its on-stack buffers (stack) exceed the limit for a layer: its in-place forms (ring, and without a
    # ring) hold them in the op's arena scratch instead, before the ring (its template's spec.scratch_rows)
    stack_in_scratch: bool = False
    per_mac: float = 1.0  # estimated instructions per MAC (per output element without MACs)
    per_output: float = 0.0  # estimated instructions per output element on top (requantization, per-pixel set-up)
    # (per_mac, per_output) of one call, for a variant whose code paths cost differently (None: the two above)
    rates: Callable[[KernelCall], tuple[float, float]] | None = None
    # float kernels: estimated instructions per MAC on a core without the "fpu" feature (soft float); 0: per_mac
    per_mac_soft_float: float = 0.0
    per_byte: bool = False  # without MACs, per_mac counts per output byte (kernels that move bytes of any type)
    ring_per_byte: float = 3.0  # estimated instructions per output byte stored through the ring (in place)
    ring_stores: Callable[[KernelCall], int] = _zero  # copies out of the ring in a whole-layer run (in place)
    ring_per_store: float = 0.0  # estimated instructions each copy out of the ring adds (its set-up)
    patch_call: int = 7000  # estimated instructions each call of a patch window adds (halo rows refilled, set-up)
    patch_row: float = 0.0  # estimated instructions a patch window adds per output row and channel it computes
    # the window form's estimated instructions over the whole layer's, per MAC (another loop order: e.g. MVE
    # depthwise windows run 4 channels of one pixel, the whole layer 4 pixels of one channel)
    window_scale: float = 1.0
    build: Build | None = None  # its specialization (weights rearranged, shapes baked in); None: the call as is
    helpers: tuple[str, ...] = ()  # shared C it needs, rendered once per model (templates/kernels/tml_*.j2)
    # a slower variant over fewer weight bytes than the variant named here, which the planner leaves out for
    # it, largest layers first, where the board's flash is short (codegen/specialize.py, flash_fallbacks)
    saves_flash_of: str | None = None
    # a layer it refuses whole for its width (on-stack buffers or offsets that grow with the output rows) it
    # computes as full-height column strips, each a call of its window form sized to fit (strip_columns), or
    # in a patch stage whose windows are that narrow (widest_window); never in place
    strips: bool = False
    strip_row: float = 0.0  # estimated instructions each strip adds per output row and channel (its passes'
    # set-up, its halo columns read again)
    code_bytes: int = 800  # estimated flash bytes of one specialized function of it (its machine code; the
    # mean over the zoo networks' builds, tinyml.compiler.code_estimate_bytes)

    def applies(self, ctx: LowerContext, call: KernelCall) -> bool:
        if call.kernel != self.implements or not set(self.needs) <= set(ctx.features):
            return False
        if (call.input_strides and not self.strided_input) or (call.output_strides and not self.strided_output):
            return False
        return self.fits_whole(ctx, call) or self.strip_columns(ctx, call) > 0

    def fits_whole(self, ctx: LowerContext, call: KernelCall) -> bool:
        """It computes ``call`` as one whole-layer call (its parameters accepted, its buffers on the stack)."""
        if self.accepts is not None and not self.accepts(ctx, call):
            return False
        return self.stack(call) <= stack_limit(ctx)

    def widest_window(self, ctx: LowerContext, call: KernelCall) -> int:
        """Where it does not compute ``call`` whole: the most output columns of a window of it that it
        computes, specialized for that width (strip_view); 0: it computes it whole, or no window fits."""
        if not (self.strips and self.window and call.patchable) or self.fits_whole(ctx, call):
            return 0
        for cols in range(call.params["out_w"] - 1, 0, -1):
            view = strip_view(call, cols)
            if (self.accepts is None or self.accepts(ctx, view)) \
                    and self.stack(view) + self.form_stack(view) <= stack_limit(ctx):
                return cols
        return 0

    def strip_columns(self, ctx: LowerContext, call: KernelCall) -> int:
        """The output columns of the widest of the fewest equal strips it computes ``call`` in where it does
        not compute it whole (0: it does, or no strip fits)."""
        widest = self.widest_window(ctx, call)
        return ceil(call.params["out_w"] / ceil(call.params["out_w"] / widest)) if widest else 0

    def rows_in_scratch(self, ctx: LowerContext, call: KernelCall) -> bool:
        """Its in-place forms hold its on-stack buffers in the op's arena scratch for ``call`` (stack_in_scratch,
        and they exceed the limit)."""
        return self.stack_in_scratch and self.inplace and self.ring and self.stack(call) > stack_limit(ctx) \
            and (self.accepts is None or self.accepts(ctx, call)) and self.form_stack(call) <= stack_limit(ctx)

    def _scratch_forms(self, ctx: LowerContext, call: KernelCall, facts: OpFacts, out_elements: int) -> OpFacts:
        """``facts`` of a layer it runs whole only in place, its buffers in scratch (rows_in_scratch), with
        those forms: as the kernel's usual ones, the buffers' bytes in the op's scratch instead of the stack."""
        if not self.rows_in_scratch(ctx, call):
            return facts
        direct = self._direct(ctx, call, 0)  # its buffers in scratch: none of them on the stack
        return replace(facts, inplace_inputs=tuple(call.inplace_inputs), inplace_kind=call.inplace_kind,
                       form_stack_bytes=self.form_stack(call), form_scratch_bytes=self.stack(call),
                       ring_extra=self.ring_extra(call), ring_direct=direct,
                       direct_stack_bytes=self.direct_stack(call) if direct else 0,
                       direct_cost=self.direct_cost(call) if direct else 0,
                       ring_cost=self._ring_cost(call, out_elements))

    def _direct(self, ctx: LowerContext, call: KernelCall, on_stack: int) -> bool:
        """It runs ``call`` in place without a ring (ring_direct, direct_accepts), its direct form's buffers on
        the stack beside ``on_stack`` bytes of its others."""
        return self.ring and self.ring_direct and (self.direct_accepts is None or self.direct_accepts(call)) \
            and on_stack + self.direct_stack(call) <= stack_limit(ctx)

    def _ring_cost(self, call: KernelCall, out_elements: int) -> int:
        """Estimated instructions its copies out of the ring add to a whole-layer run in place."""
        return int(round(out_elements * self.ring_per_byte + self.ring_stores(call) * self.ring_per_store))

    def instructions_per_mac(self, ctx: LowerContext) -> float:
        if self.per_mac_soft_float and "fpu" not in ctx.features:
            return self.per_mac_soft_float
        return self.per_mac

    def patch_rows(self, call: KernelCall, out_elements: int) -> int:
        """What a column of patch windows adds: patch_row per output row and channel of the layer."""
        return int(round(self.patch_row * out_elements / call.params["out_w"])) if self.patch_row else 0

    def facts(self, ctx: LowerContext, call: KernelCall, out_elements: int) -> OpFacts:
        """What the planner needs to know of this variant for ``call`` on the board of ``ctx``."""
        work = call.macs if call.macs else out_elements
        per_mac, per_output = self.rates(call) if self.rates else (self.instructions_per_mac(ctx), self.per_output)
        cols = self.strip_columns(ctx, call)
        if cols:  # column strips of its window form (cost), or patch windows as narrow; in place only with its
            # buffers in scratch (the whole layer then, at its usual cost)
            view = strip_view(call, self.widest_window(ctx, call))
            strips = len(strip_bounds(call, cols)) - 1
            facts = OpFacts(scratch_bytes=call.scratch_bytes, patchable=True, max_window_w=view.params["out_w"],
                            macs=call.macs, variant=self.template, stack_bytes=self.stack(view) + self.form_stack(view),
                            cost=int(round(work * per_mac + out_elements * per_output)),
                            strip_cost=int(round(strips * out_elements / call.params["out_w"] * self.strip_row)),
                            patch_call_cost=self.patch_call, patch_rows_cost=self.patch_rows(call, out_elements),
                            window_scale=self.window_scale, strided_input=bool(call.input_strides))
            return self._scratch_forms(ctx, call, facts, out_elements)
        forms = self.stack(call) + self.form_stack(call) <= stack_limit(ctx)  # the forms' buffers fit the stack too
        direct = self._direct(ctx, call, self.stack(call))
        return OpFacts(
            inplace_inputs=tuple(call.inplace_inputs) if self.inplace and forms else (),
            inplace_kind=call.inplace_kind,
            scratch_bytes=call.scratch_bytes,
            patchable=self.window and call.patchable and forms,
            macs=call.macs,
            variant=self.template,
            stack_bytes=self.stack(call),
            form_stack_bytes=self.form_stack(call) if forms else 0,
            cost=int(round(work * per_mac + out_elements * per_output)),
            ring_extra=self.ring_extra(call) if self.inplace else 0,
            ring_direct=direct,
            direct_stack_bytes=self.direct_stack(call) if direct else 0,
            direct_cost=self.direct_cost(call) if direct else 0,
            ring_cost=self._ring_cost(call, out_elements) if self.ring else 0,
            patch_call_cost=self.patch_call if self.window else 0,
            patch_rows_cost=self.patch_rows(call, out_elements) if self.window else 0,
            window_scale=self.window_scale if self.window else 1.0,
            strided_input=bool(call.input_strides),
        )


def strip_view(call: KernelCall, cols: int) -> KernelCall:
    """``call`` narrowed to a layer of ``cols`` output columns without padding at its sides (its input the
    columns they read): what a variant's strips are specialized for (their window params then place each
    strip in the real layer, padding included)."""
    p = call.params
    width = (cols - 1) * p["stride_w"] + (p["k_w"] - 1) * p.get("dil_w", 1) + 1
    return replace(call, params=dict(p, in_w=width, out_w=cols, pad_w=0))


STRIP_KEYS = ("in_w", "out_w", "pad_w")  # the params strip_view changes


def strip_bounds(call: KernelCall, cols: int) -> list[int]:
    """The first output column of each strip of at most ``cols`` columns, and the layer's width."""
    out_w = call.params["out_w"]
    n = ceil(out_w / cols)
    return [round(i * out_w / n) for i in range(n + 1)]


def portable(template: str, *, inplace: bool = False, ring: bool = False, window: bool = False,
             per_mac: float = 4.0, per_output: float = 0.0,
             rates: Callable[[KernelCall], tuple[float, float]] | None = None,
             strided_input: bool = False, strided_output: bool = False, code_bytes: int = 800) -> Variant:
    """The declaration of a portable kernel: it computes every call of its own kernel, on every core."""
    return Variant(template=template, implements=template, family="portable", inplace=inplace or ring, ring=ring,
                   window=window, per_mac=per_mac, per_output=per_output, rates=rates, strided_input=strided_input,
                   strided_output=strided_output, helpers=(RING,) if ring else (), code_bytes=code_bytes)


def portable_f32(template: str, fpu: float, soft: float) -> Variant:
    """The declaration of a portable float32 kernel: ``fpu`` estimated instructions per MAC (per output element
    without MACs) on a core with a single-precision FPU, ``soft`` on one without (the compiler's float
    library); it takes the float helpers (FLOAT_HELPERS)."""
    return replace(portable(template, per_mac=fpu), per_mac_soft_float=soft, helpers=(FLOAT_HELPERS,))
