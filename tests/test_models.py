"""Whole networks with random weights, bit-exact against TFLM on the host and every QEMU board."""

from __future__ import annotations

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, zoo_cases

QEMU_BOARDS = ["mps2-an385", "mps2-an386", "mps2-an500", "mps3-an547"]
# person_detect: tests/test_import_tflm.py runs it (as an old converter's file) on the host and under QEMU.
NETWORKS = [c for c in zoo_cases() if c.id not in ("mobilenet_v2-144", "person_detect")]


@pytest.mark.parametrize("case", NETWORKS, ids=lambda c: c.id)
def test_network_host(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


def _qemu_params() -> list:
    """Every network on every board, except the MobileNets on the Cortex-M7: it runs the DSP kernels the
    M4 runs (the kernel sweeps run them on the M7), and those two cost the suite a minute."""
    return [pytest.param(c, b, id=f"{c.id}-{b}") for c in NETWORKS for b in QEMU_BOARDS
            if not (b == "mps2-an500" and c.id.startswith("mobilenet"))]


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case, board", _qemu_params())
def test_network_qemu(case, board, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board=board, samples=2)
