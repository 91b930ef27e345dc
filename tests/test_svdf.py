"""SVDF (int8 input and output, int16 or int8 state kept between invocations; and float32) against TFLM over
sequences of invokes: a sweep (ranks, memory sizes, batches, feature sizes, int8 state with a zero point,
saturating and wrapping sums, a state listed among the subgraph inputs, float32 with its activations) in one
model of side-by-side SVDFs, on the host and under QEMU on mps2-an386; NAME_reset() restoring the first
invoke's behaviour; the state in the memory figures; the refusals of the validation rows; and a streaming
keyword spotter of SVDF layers, a fully connected layer and a softmax (like TFLM's keyword benchmark model),
on the host and mps2-an386.

The converter does not make SVDF from Keras: every model here is written directly (tests/seqmodels.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.seqmodels import q as _q, svdf_kws_model, svdf_layer, svdf_model, svdf_models
from tests.tflite_edit import craft_model
from tinyml.compiler import build_model, fit_of, write_project
from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.tools.inspect import inspect_model
from tinyml.tools.plan import plan_model
from tinyml.tools.reference import run_tflm_batch
from tinyml.tools.verify import pack_samples, random_inputs, unpack_outputs
from tinyml.targets.run import run_project

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs qemu-system-arm and arm-none-eabi-gcc")


# The sweep: one SVDF per case, side by side in one model (one build per board), run as one sequence of 6
# invokes with a reset before the 4th.
CASES: dict[str, dict[str, Any]] = {
    "rank1_mem4": dict(),
    "rank2_mem3_in7": dict(rank=2, memory=3, size=7, units=3),
    "rank2_mem8_in40": dict(rank=2, memory=8, size=40, units=8, out_zp=-7),
    "rank1_mem1": dict(memory=1, size=5),  # no history: the newest step alone
    "rank3_mem2_in1": dict(rank=3, memory=2, size=1, units=2),
    "batch2": dict(batch=2, rank=2, memory=5, size=6, units=3),
    "relu_ignored": dict(relu=True, out_zp=-20),  # TFLM's integer SVDF applies no fused activation
    "int8_state_zp": dict(state="INT8", state_scale=0.05, state_zp=7, wt_scale=0.01, out_scale=0.1),
    "int8_state_saturates": dict(state="INT8", state_scale=0.005, state_zp=-100, wt_scale=0.01, out_scale=0.02),
    # the feature matmul saturates the int16 state, the time sums saturate the output
    "saturating": dict(state_scale=0.0001, wt_scale=0.001, wt_max=32767, out_scale=0.001, size=40),
    # left shifts on both multipliers (scales above 1)
    "left_shifts": dict(state_scale=0.00002, wf_scale=0.5, wt_scale=0.5, wt_max=30, out_scale=0.0001),
    # the time sums exceed int32 and wrap, as TFLM's int32 sums do
    "wrapping": dict(state_scale=1e-6, wf_scale=1.0, wt_scale=1.0, wt_max=32767, memory=16, rank=4,
                     out_scale=2e-3, size=40),
    # its state also listed among the subgraph's inputs: state all the same, not a caller's input
    "state_as_input": dict(size=8, units=4, memory=3, in_zp=-2, seed=1),
    # float32 SVDF: within verify's float tolerance, as the other float kernels
    "f32_rank1": dict(float32=True),
    "f32_rank2_relu_batch2": dict(float32=True, rank=2, memory=6, size=13, units=3, batch=2, activation=1),
    "f32_mem1_relu6": dict(float32=True, memory=1, activation=3),
}


def sweep_model() -> bytes:
    names = list(CASES)
    return svdf_models([CASES[n] for n in names], state_inputs=(names.index("state_as_input"),))


def test_svdf_sweep_is_bitexact_on_host(tmp_path: Path) -> None:
    model = sweep_model()
    graph = parse_tflite(model)
    assert len(graph.inputs) == len(CASES) and len(graph.state_tensors()) == len(CASES)  # no state as input
    report = assert_bitexact(model, tmp_path, samples=6, resets=[3])
    assert report.sequence and report.float_outputs and report.exact_outputs  # int8 outputs bit-exact


def test_svdf_state_is_planned_and_reported(tmp_path: Path) -> None:
    model = svdf_model(rank=2, memory=8, size=40, units=8)
    c = build_model(parse_tflite(model, source="m.tflite"), "host")
    assert c.plan.state_bytes == 1 * 8 * 16 * 2  # batch x memory x filters, int16
    assert c.plan.peak_bytes >= c.plan.state_bytes + 40 + 8
    files = c.files
    assert "#define MODEL_STATE_BYTES 256u" in files["model.h"] and "int model_reset(void);" in files["model.h"]
    assert "static void model_fill_state(void)" in files["model.c"]
    # its own part of the memory figures of compile (the fit line), plan and inspect
    assert "(kernel scratch 0, state 256 of it)" in fit_of(c).format()
    report = plan_model(parse_tflite(model, source="m.tflite"))
    assert report.state_bytes == 256 and "state kept between invocations 256 of it" in report.format()
    info = inspect_model(parse_tflite(model, source="m.tflite"))
    assert info.totals.state_bytes == 256 and "state kept between invocations 256 of it" in info.format()


def test_reset_restores_the_first_invocation(tmp_path: Path) -> None:
    """The same inputs after NAME_reset() give the first outputs again, and without it they do not."""
    model = svdf_model(rank=2, memory=4, size=12, units=5)
    graph = parse_tflite(model, source="m.tflite")
    xs = random_inputs(graph, 3, seed=5)
    proj = tmp_path / "proj"
    write_project(build_model(graph, "host").files, proj)
    raw = run_project(proj, pack_samples(graph, xs + xs + xs), resets=[3]).output
    ours = [o[0] for o in unpack_outputs(graph, raw, 9)]
    for k in range(3):
        assert np.array_equal(ours[k], ours[3 + k])  # reset before sample 3
    assert any(not np.array_equal(ours[k], ours[6 + k]) for k in range(3))  # state carried into sample 6
    ref = run_tflm_batch(model, xs + xs + xs, sequence=True, resets=[3])
    assert all(np.array_equal(a, b[0]) for a, b in zip(ours, ref))


# ---------------------------------------------------------------------------
# refusals: one line each


def _edited(**change: Any) -> bytes:
    """svdf_model() with one tensor or the operator changed: tensor fields as {tensor: {field: value}},
    ``options`` for the operator's, ``inputs`` for its input list, ``extra`` for a second operator."""
    rng = np.random.default_rng(0)
    tensors: list[dict[str, Any]] = [dict(name="features", shape=[1, 10], type="INT8", **_q(0.05))]
    out, op = svdf_layer(tensors, 0, units=4, rank=1, memory=4, rng=rng)
    for k, fields in change.get("tensors", {}).items():
        tensors[k].update(fields)
    kind, ins, outs, (table, options) = op
    ops = [(kind, change.get("inputs", ins), outs, (table, {**options, **change.get("options", {})}))]
    outputs = [out]
    if change.get("extra"):  # a second SVDF reading the same state
        tensors.append(dict(name="second", shape=[1, 4], type="INT8", **_q(0.05)))
        ops.append((kind, ins, [len(tensors) - 1], (table, options)))
        outputs.append(len(tensors) - 1)
    return craft_model(tensors, ops, inputs=[0], outputs=outputs)


REFUSED = {
    "rank_zero": (dict(options={"rank": 0}), ModelError, "(SVDF): rank is 0; allowed is [1, "),
    "rank_not_dividing": (dict(options={"rank": 3}), ModelError, "has 4 filters, not a multiple of the rank 3"),
    "state_not_variable": (dict(tensors={4: {"variable": False}}), ModelError,
                           "input 4 (tensor 4 ('svdf_state')) holds the operator's state, so it must be a variable"),
    "state_shape": (dict(tensors={4: {"shape": [1, 15]}}), ModelError,
                    "activation_state tensor 4 ('svdf_state') has shape [1, 15]; allowed is [1, 16]"),
    "input_3d": (dict(tensors={0: {"shape": [1, 1, 10]}}), ModelError, "has shape [1, 1, 10]; allowed is 2-D"),
    "bias_scale": (dict(tensors={3: _q(0.5)}), ModelError, "bias tensor 3 ('svdf_bias') has scale 0.5; allowed is "
                                                           "within 1e-5 of activation_state scale x weights_time"),
    "time_type": (dict(tensors={2: {"type": "INT8", "data": np.ones((4, 4), np.int8)}}), ModelError,
                  "weights_time tensor 2 ('svdf_weights_time') is int8 and activation_state tensor 4 "
                  "('svdf_state') is int16; allowed is the same type"),
    "no_bias": (dict(inputs=[0, 1, 2, -1, 4]), ModelError, "input 3 (bias) is -1 (absent); it is required"),
    "state_shared": (dict(extra=True), UnsupportedError, "its state tensor 4 ('svdf_state') is also read elsewhere"),
    "state_16_zp": (dict(tensors={4: _q(0.002, 5)}), ModelError, "has zero point 5"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_svdf_refusals_are_one_line(name: str) -> None:
    change, error, expect = REFUSED[name]
    msg = refusal(_edited(**change), error)
    assert expect in msg, msg


# ---------------------------------------------------------------------------
# a streaming keyword spotter: SVDF layers, a fully connected layer, softmax (one frame per invoke)


def test_svdf_kws_streams_bitexact_on_host(tmp_path: Path) -> None:
    model = svdf_kws_model()
    graph = parse_tflite(model)
    assert [op.kind for op in graph.ops] == ["SVDF"] * 3 + ["FULLY_CONNECTED", "SOFTMAX"]
    ref = run_tflm_batch(model, random_inputs(graph, 12, 0), sequence=True)  # TFLM runs it ...
    assert len({r[0].tobytes() for r in ref}) > 6  # ... and its scores move with the stream
    report = assert_bitexact(model, tmp_path, samples=12, resets=[8])
    assert report.sequence


# ---------------------------------------------------------------------------
# under QEMU (mps2-an386, Cortex-M4)


@needs_qemu
def test_svdf_sweep_is_bitexact_on_qemu(tmp_path: Path) -> None:
    assert_bitexact(sweep_model(), tmp_path, board="mps2-an386", samples=5, resets=[3])


@needs_qemu
def test_svdf_kws_streams_bitexact_on_qemu(tmp_path: Path) -> None:
    assert_bitexact(svdf_kws_model(), tmp_path, board="mps2-an386", samples=10, resets=[6])
