"""`tinyml bench kernels`: exact instructions per MAC of the kernel families under QEMU, and the
estimated cycles of the MLPerf Tiny networks next to published results.

Six layer shapes from the MLPerf Tiny networks (one-layer int8 models with
random weights and per-channel requantization, built with Keras and cached)
and the four MLPerf Tiny v1.x reference architectures (DS-CNN, MobileNetV1-0.25
at 96x96x3, ResNet-8 and the 640-128x4-8-128x4-640 FC autoencoder, from
:mod:`tinyml.train.zoo` with random weights, built on demand into the user
cache), each compiled twice for the same board in the same run: with the
board's default build (its fastest kernel family, DSP or MVE) and with the
portable C kernels, which are the anchor.  The shape table also shows the
published CMSIS-NN figure and the target of each shape, and the network table
the estimated cycles of the default build (the cycle model of the board's
core, zero wait states) next to the best published MLPerf Tiny latency of a
comparable core, as cycles = ms x MHz (fixed numbers quoted with their
source in :data:`PUBLISHED`, not measured here).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinyml.boards import load_board
from tinyml.codegen.families import family
from tinyml.errors import TinymlError
from tinyml.resources import cache_build, cache_root
from tinyml.tools.profile import compile_to, profile_compiled
from tinyml.train import zoo
from tinyml.train.quantize import quantize_int8

MODEL_VERSION = 1  # bump when a builder below changes


@dataclass(frozen=True)
class Shape:
    name: str
    kind: str  # "conv", "depthwise", "dense"
    input: tuple[int, ...]
    params: tuple[tuple[str, Any], ...]
    cmsis_m4: float  # CMSIS-NN instructions per MAC on mps2-an386 (from the issue)
    target_m4: float

    def p(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


SHAPES = (
    Shape("conv 10x4 s2, 1->64 ch, out 25x5", "conv", (49, 10, 1),
          (("filters", 64), ("kernel", (10, 4)), ("strides", (2, 2))), 3.47, 2.8),
    Shape("depthwise 3x3 s1, 64 ch, 25x5", "depthwise", (25, 5, 64),
          (("kernel", (3, 3)), ("strides", (1, 1))), 8.33, 6.6),
    Shape("pointwise 1x1, 64->64 ch, 25x5", "conv", (25, 5, 64),
          (("filters", 64), ("kernel", (1, 1)), ("strides", (1, 1))), 2.09, 1.7),
    Shape("fully connected 64->12", "dense", (64,), (("units", 12),), 2.83, 2.3),
    Shape("depthwise 3x3 s2, 8 ch, 96x96->48x48", "depthwise", (96, 96, 8),
          (("kernel", (3, 3)), ("strides", (2, 2))), 10.0, 8.0),
    Shape("pointwise 1x1, 8->16 ch, 48x48", "conv", (48, 48, 8),
          (("filters", 16), ("kernel", (1, 1)), ("strides", (1, 1))), 6.63, 5.3),
)
CMSIS_M55_TOTAL = 1.59  # CMSIS-NN on mps3-an547, total over the six shapes (from the issue)
NETWORKS = ("ds_cnn", "mobilenet_v1", "resnet8", "fc_autoencoder")


@dataclass(frozen=True)
class Published:
    """A published MLPerf Tiny latency: ``ms`` at ``mhz`` on ``system``, as cycles = ms x MHz."""

    task: str
    ms: float
    mhz: float
    system: str

    @property
    def cycles(self) -> float:
        return self.ms * self.mhz * 1000.0


_M4 = "NUCLEO-L4R5ZI, Cortex-M4F 120 MHz"
_M85 = "RA8D1, Cortex-M85 480 MHz, TFLM + CMSIS-NN"
# MLPerf Tiny v1.x inference results, closed division (mlcommons.org/benchmarks/inference-tiny).
# Per board: the published core our estimate stands beside (the M55 has no published MLPerf Tiny result;
# the M85 is its closest published relative, and the faster one).
PUBLISHED: dict[str, tuple[str, dict[str, Published]]] = {
    "mps2-an386": ("Cortex-M4", {
        "ds_cnn": Published("KWS", 43.19, 120, f"{_M4}, X-CUBE-AI 9.0"),
        "mobilenet_v1": Published("VWW", 88.93, 120, f"{_M4}, X-CUBE-AI 9.0"),
        "resnet8": Published("IC", 165.13, 120, f"{_M4}, X-CUBE-AI 9.0"),
        "fc_autoencoder": Published("AD", 4.05, 120, f"{_M4}, Plumerai"),
    }),
    "mps3-an547": ("Cortex-M85", {
        "ds_cnn": Published("KWS", 3.465, 480, _M85),
        "mobilenet_v1": Published("VWW", 13.39, 480, _M85),
        "resnet8": Published("IC", 8.48, 480, _M85),
    }),
}
PUBLISHED_SOURCE = "MLPerf Tiny v1.x inference results, closed division (mlcommons.org/benchmarks/inference-tiny)"


def bench_cache() -> Path:
    return cache_root() / "bench"


def _store(path: Path, data: bytes) -> Path:
    return cache_build(path, lambda tmp: tmp.write_bytes(data))


def shape_model(shape: Shape, seed: int = 0) -> Path:
    """The one-layer int8 model of ``shape`` (random weights, ReLU, per-channel), cached."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in shape.name)
    path = bench_cache() / f"layer-{slug}-s{seed}-v{MODEL_VERSION}.tflite"
    if path.is_file():
        return path
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape.input, batch_size=1)
    if shape.kind == "conv":
        x = keras.layers.Conv2D(shape.p("filters"), shape.p("kernel"), strides=shape.p("strides"),
                                padding="same", activation="relu")(inp)
    elif shape.kind == "depthwise":
        x = keras.layers.DepthwiseConv2D(shape.p("kernel"), strides=shape.p("strides"), padding="same",
                                         activation="relu")(inp)
    else:
        x = keras.layers.Dense(shape.p("units"), activation="relu")(inp)
    model = keras.Model(inp, x)
    rng = np.random.default_rng(seed + 1)
    for w in model.weights:
        if w.path.endswith("bias"):
            w.assign(rng.normal(0.0, 0.3, size=tuple(w.shape)).astype("float32"))
    rep = rng.normal(0.0, 1.0, size=(32, *shape.input)).astype(np.float32)
    return _store(path, quantize_int8(model, rep, per_channel=True))


def zoo_network_path(name: str) -> Path:
    """Where zoo_network caches ``name`` (the key follows its BENCH_NETWORKS entry)."""
    key = hashlib.sha256(repr(zoo.BENCH_NETWORKS[name]).encode()).hexdigest()[:12]
    return cache_root() / "zoo" / f"{name}-{key}.tflite"


def zoo_network(name: str, progress: Callable[[str], None] | None = None) -> Path:
    """tinyml.train.zoo.BENCH_NETWORKS[``name``] as int8 .tflite: built with random weights and quantized with
    TensorFlow (the train extra) on first use, then cached under the user cache."""
    path = zoo_network_path(name)
    if not path.is_file():
        if progress is not None:
            progress(f"{name}: building it with random weights and quantizing it with TensorFlow (once; cached in "
                     f"{path})")
        _store(path, zoo.bench_network(name))
    return path


# The MLPerf Tiny networks of `bench kernels`, as zoo networks (the AD autoencoder in its MLPerf shape,
# 640-128-128-128-128-8-128-128-128-128-640).
_ZOO_IDS = {"fc_autoencoder": "fc_autoencoder-mlperf"}


def network_model(name: str) -> Path:
    """The MLPerf Tiny network ``name`` (one of NETWORKS) with random weights as int8 .tflite, cached."""
    if name not in NETWORKS:
        raise TinymlError(f"unknown benchmark network {name!r}; use one of {', '.join(NETWORKS)}")
    return zoo_network(_ZOO_IDS.get(name, name))


@dataclass
class Row:
    name: str
    macs: int
    fast: int  # instructions, board's family
    portable: int  # instructions, portable kernels
    kernel: str
    cmsis: float | None = None
    target: float | None = None
    cycles: int = 0  # estimated by the cycle model, board's family
    published: Published | None = None

    @property
    def ratio(self) -> float | None:
        """Our estimated cycles over the published figure's cycles."""
        return self.cycles / self.published.cycles if self.published and self.cycles else None

    @property
    def fast_per_mac(self) -> float:
        return self.fast / self.macs

    @property
    def portable_per_mac(self) -> float:
        return self.portable / self.macs

    @property
    def meets(self) -> bool | None:
        return None if self.target is None else self.fast_per_mac <= self.target


@dataclass
class KernelBench:
    board: str
    family: str
    shapes: list[Row]
    networks: list[Row]

    def to_json(self) -> dict[str, Any]:
        def row(r: Row) -> dict[str, Any]:
            return dict(name=r.name, macs=r.macs, kernel=r.kernel, instructions=r.fast,
                        instructions_per_mac=r.fast_per_mac, portable_instructions=r.portable,
                        portable_instructions_per_mac=r.portable_per_mac, cmsis_nn_per_mac=r.cmsis,
                        target_per_mac=r.target, meets_target=r.meets,
                        cycles=r.cycles or None, cycles_per_mac=r.cycles / r.macs if r.cycles else None,
                        cycles_what="estimated, zero-wait-state (cycle model of the board's core), default build",
                        published=None if r.published is None else dict(
                            task=r.published.task, ms=r.published.ms, mhz=r.published.mhz,
                            cycles=r.published.cycles, system=r.published.system, source=PUBLISHED_SOURCE),
                        ratio=r.ratio)

        macs = sum(r.macs for r in self.shapes)
        fast = sum(r.fast for r in self.shapes)
        total = dict(macs=macs, instructions=fast, portable_instructions=sum(r.portable for r in self.shapes))
        if self.board == "mps3-an547" and macs:
            total.update(instructions_per_mac=fast / macs, cmsis_nn_per_mac=CMSIS_M55_TOTAL,
                         meets_target=fast / macs <= CMSIS_M55_TOTAL)
        return dict(board=self.board, family=self.family, shapes=[row(r) for r in self.shapes],
                    shapes_total=total, networks=[row(r) for r in self.networks])

    def format(self) -> str:
        lines = [f"kernel benchmark on {self.board}: family '{self.family}' against portable C, "
                 "exact instruction counts under QEMU (same run)"]
        if self.shapes:
            lines.append("")
            m4 = self.board == "mps2-an386"
            head = (f"{'layer shape':<38} {'MACs':>9} {'portable':>9} {self.family:>8} {'speedup':>8}"
                    + (f" {'CMSIS-NN':>9} {'target':>7}" if m4 else ""))
            lines += [head + "   (instructions per MAC)", "-" * len(head)]
            for r in self.shapes:
                line = (f"{r.name:<38} {r.macs:>9,} {r.portable_per_mac:>9.2f} {r.fast_per_mac:>8.2f} "
                        f"{r.portable / r.fast:>7.1f}x")
                if m4:
                    line += f" {r.cmsis:>9.2f} {'<= %.2f' % r.target:>7} {'ok' if r.meets else 'MISSED'}"
                lines.append(line)
            macs = sum(r.macs for r in self.shapes)
            fast = sum(r.fast for r in self.shapes)
            port = sum(r.portable for r in self.shapes)
            total = f"{'all six shapes':<38} {macs:>9,} {port / macs:>9.2f} {fast / macs:>8.2f} {port / fast:>7.1f}x"
            if self.board == "mps3-an547":
                total += (f"   (target: CMSIS-NN on the M55, {CMSIS_M55_TOTAL:.2f}: "
                          f"{'ok' if fast / macs <= CMSIS_M55_TOTAL else 'MISSED'})")
            lines += ["-" * len(head), total]
        if self.networks:
            lines += ["", f"{'network':<38} {'MACs':>11} {'portable':>9} {self.family:>8} {'speedup':>8}"
                      "   (instructions per MAC)", "-" * 78]
            for r in self.networks:
                lines.append(f"{r.name:<38} {r.macs:>11,} {r.portable_per_mac:>9.2f} {r.fast_per_mac:>8.2f} "
                             f"{r.portable / r.fast:>7.1f}x")
            lines += ["", *self._format_published()]
        return "\n".join(lines)

    def _format_published(self) -> list[str]:
        core, _ = PUBLISHED.get(self.board, ("", {}))
        head = (f"{'network':<16} {'est. cycles':>12} {'cyc/MAC':>7}  {'published':>10} {'ms':>8} {'MHz':>4}"
                f"  {'ratio':>6}  published system")
        lines = [f"estimated cycles on {self.board} (cycle model of its core, zero-wait-state, default build, "
                 f"measured now)" + (f" against the best published MLPerf Tiny {core} results" if core else ""),
                 head, "-" * len(head)]
        for r in self.networks:
            p = r.published
            pub = (f"{p.cycles / 1e6:>9.2f}M {p.ms:>8.3f} {p.mhz:>4.0f}  {r.ratio:>5.2f}x  {p.task}: {p.system}"
                   if p else f"{'-':>10} {'':>8} {'':>4}  {'':>6}  (none published for this core)")
            lines.append(f"{r.name:<16} {r.cycles:>12,} {r.cycles / r.macs:>7.2f}  {pub}")
        if core:
            lines.append(f"published: {PUBLISHED_SOURCE}; cycles = ms x MHz; ratio = our estimated cycles / "
                         "published cycles (below 1: fewer cycles)")
        return lines


def _measure(model: Path, board: str, families: str, work: Path) -> tuple[int, int, str, int]:
    """(MACs, instructions, kernel of the largest layer, estimated cycles) of a whole model."""
    project = work / f"{model.stem}-{families}"
    compiled = compile_to(model, board, project, families)
    rep = profile_compiled(compiled, project)
    top = max(rep.layers, key=lambda l: l.macs)
    return rep.macs, rep.instructions, top.kernel, rep.cycles


def bench_kernels(board: str = "mps2-an386", *, networks: tuple[str, ...] = NETWORKS,
                  shapes: tuple[int, ...] | None = None,
                  progress: Callable[[str], None] | None = None) -> KernelBench:
    """Measure the layer ``shapes`` (indices into :data:`SHAPES`, default all) and the zoo ``networks``
    (names from :data:`NETWORKS`) on ``board``, with its default build and with the portable kernels."""
    say = progress or (lambda _m: None)
    brd = load_board(board)
    fam = family(brd.features)
    for name in networks:
        if name not in NETWORKS:
            raise TinymlError(f"unknown benchmark network {name!r}; use one of {', '.join(NETWORKS)}")
    chosen = [SHAPES[i] for i in shapes] if shapes is not None else list(SHAPES)
    published = PUBLISHED.get(brd.name, ("", {}))[1]
    rows, nets = [], []
    with tempfile.TemporaryDirectory(prefix="tinyml-bench-") as tmp:
        work = Path(tmp)
        for s in chosen:
            model = shape_model(s)
            macs, fast, kernel, _ = _measure(model, board, "auto", work)
            _, port, _, _ = _measure(model, board, "portable", work)
            rows.append(Row(s.name, macs, fast, port, kernel, s.cmsis_m4, s.target_m4))
            say(f"{s.name}: {fast / macs:.2f} instructions/MAC ({port / macs:.2f} portable)")
        for name in networks:
            model = network_model(name)
            macs, fast, kernel, cycles = _measure(model, board, "auto", work)
            _, port, _, _ = _measure(model, board, "portable", work)
            nets.append(Row(name, macs, fast, port, kernel, cycles=cycles, published=published.get(name)))
            say(f"{name}: {fast / macs:.2f} instructions/MAC ({port / macs:.2f} portable), "
                f"{cycles:,} estimated cycles")
    return KernelBench(board=brd.name, family=fam, shapes=rows, networks=nets)
