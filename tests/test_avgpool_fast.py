"""avgpool_s8_dsp (AVERAGE_POOL_2D int8, DSP family): its division by the tap count, which calls it takes,
and bit-exactness against TFLM under QEMU on a Cortex-M4 (mps2-an386) and a Cortex-M55 (mps3-an547, which
runs the DSP variant: there is no MVE one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, case
from tests.test_ops_pool import EXTRA, _extra_model
from tinyml.boards import load_board
from tinyml.codegen.families import dsp_avgpool_ok
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.variants import fastest
from tinyml.compiler import build_model

SWEEP = [
    case("avgpool", "AVERAGE_POOL_2D", (3, 3, 23), pool=(3, 3), strides=(1, 1), padding="valid"),  # global
    case("avgpool", "AVERAGE_POOL_2D", (8, 8, 12), pool=(2, 2), strides=(2, 2), padding="valid"),
    case("avgpool", "AVERAGE_POOL_2D", (7, 6, 9), pool=(3, 3), strides=(1, 1), padding="same"),  # border counts
    case("avgpool", "AVERAGE_POOL_2D", (9, 9, 5), pool=(3, 3), strides=(2, 2), padding="same"),
]


def test_rounding_division_equals_tflm() -> None:
    """The kernel's q = floor(n * M / 2^32) - 128, n = s + k (avgpool_s8_dsp.c.j2: k and M by the tap
    count and the sign of s), equals TFLM's (s +- count/2) / count (C division) for every count of at most
    256 taps and every sum those taps can make, and n fits a halfword."""
    for count in range(1, 257):
        s = np.arange(-128 * count, 127 * count + 1, dtype=np.int64)
        if count == 1:
            m, kp, kn = 2 ** 32 - 1, 129, 129
        else:
            m, kp, kn = 0xFFFFFFFF // count + 1, 128 * count + count // 2, 128 * count + count - 1 - count // 2
        n = s + np.where(s < 0, kn, kp)
        assert n.min() >= 0 and n.max() < 2 ** 16 and m < 2 ** 32
        got = ((n * m) >> 32) - 128
        half = count // 2
        want = np.where(s > 0, (s + half) // count, -((-s + half) // count))
        assert np.array_equal(got, want), count


def _pool_call(filter_hw: tuple[int, int], **extra: int) -> KernelCall:
    params = dict(batches=1, in_h=20, in_w=20, channels=8, out_h=1, out_w=1, filter_h=filter_hw[0],
                  filter_w=filter_hw[1], stride_h=1, stride_w=1, pad_h=0, pad_w=0, act_min=-128, act_max=127)
    params.update(extra)
    return KernelCall(op_index=0, op_kind="AVERAGE_POOL_2D", kernel="avgpool_s8", spec={}, params=params,
                      args=[], inputs=[0], outputs=[1])


def test_dsp_avgpool_accepts() -> None:
    ctx = LowerContext(graph=None, features=tuple(load_board("mps2-an386").features))  # type: ignore[arg-type]
    assert dsp_avgpool_ok(ctx, _pool_call((16, 16)))
    assert not dsp_avgpool_ok(ctx, _pool_call((16, 17)))  # a sum could overflow a halfword
    assert not dsp_avgpool_ok(ctx, _pool_call((3, 3), oy0=0))  # a field another pass added
    assert fastest(ctx, _pool_call((3, 3))).template == "avgpool_s8_dsp"
    assert fastest(ctx, _pool_call((17, 17))).template == "avgpool_s8"
    host = LowerContext(graph=None, features=tuple(load_board("host").features))  # type: ignore[arg-type]
    assert fastest(host, _pool_call((3, 3))).template == "avgpool_s8"


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_dsp_avgpool_is_chosen(board: str, tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(build(SWEEP[0]))
    kernels = [c.kernel for c in build_model(str(path), board).calls if isinstance(c, KernelCall)]
    assert kernels == ["avgpool_s8_dsp"]


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
@pytest.mark.parametrize("c", SWEEP, ids=lambda c: c.id)
def test_dsp_avgpool_bitexact(c, board: str, tmp_path: Path) -> None:
    assert_bitexact(build(c), tmp_path, board=board, samples=2)


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["mps3-an547"])  # mps2-an386: tests/test_ops_pool.py test_extra_mps2_an386
@pytest.mark.parametrize("name", ["avgpool-relu", "avgpool-relu6"])
def test_dsp_avgpool_fused_activation_bitexact(name: str, board: str, tmp_path: Path) -> None:
    inputs, body, expect = EXTRA[name]
    assert_bitexact(_extra_model(name, inputs, body, expect), tmp_path, board=board, samples=2)


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["mps2-an500", "mps2-an505"])  # Cortex-M7, Cortex-M33: the same variant
@pytest.mark.parametrize("c", SWEEP[::2], ids=lambda c: c.id)
def test_dsp_avgpool_bitexact_other_cores(c, board: str, tmp_path: Path) -> None:
    assert_bitexact(build(c), tmp_path, board=board, samples=2)
