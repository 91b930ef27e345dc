"""Whole networks with random weights, bit-exact against TFLM on the host and every QEMU board."""

from __future__ import annotations

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, zoo_cases

QEMU_BOARDS = ["mps2-an385", "mps2-an386", "mps2-an500", "mps3-an547"]
NETWORKS = [c for c in zoo_cases() if c.id != "mobilenet_v2-144"]


@pytest.mark.parametrize("case", NETWORKS, ids=lambda c: c.id)
def test_network_host(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("board", QEMU_BOARDS)
@pytest.mark.parametrize("case", NETWORKS, ids=lambda c: c.id)
def test_network_qemu(case, board, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board=board, samples=2)
