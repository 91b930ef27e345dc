"""The TFLM oracle (tinyml.tools.reference) and the test-model factory (tests.modelgen)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelgen import all_cases, build, build_many, inputs_for, model_ops, op_cases, zoo_cases
from tinyml.errors import TinymlError
from tinyml.tools.reference import (
    run_tflm,
    run_tflm_batch,
    tflm_arena_bytes,
    tflm_intermediates,
    tflm_io_details,
)


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb


def _model_obj(model: bytes):
    fb = _schema()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model, 0))


def _op_outputs(model: bytes) -> set[int]:
    sg = _model_obj(model).subgraphs[0]
    return {int(t) for op in sg.operators for t in op.outputs if t >= 0}


def _expose_all(model: bytes) -> tuple[bytes, list[int]]:
    """The model with every operator output also a subgraph output (object API, no hand-made flatbuffer)."""
    import flatbuffers

    m = _model_obj(model)
    sg = m.subgraphs[0]
    produced = [int(t) for op in sg.operators for t in op.outputs if t >= 0]
    extra = [t for t in produced if t not in [int(o) for o in sg.outputs]]
    sg.outputs = [int(o) for o in sg.outputs] + extra
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), [int(o) for o in sg.outputs]


@pytest.fixture(scope="module")
def conv_model():
    case = op_cases("CONV_2D")[0]
    return case, build(case)


@pytest.fixture(scope="module")
def ds_cnn():
    case = zoo_cases("ds_cnn")[0]
    return case, build(case)


def test_run_one_and_batch_agree(conv_model):
    case, model = conv_model
    ins, outs = tflm_io_details(model)
    samples = inputs_for(case, model, n=3)
    batch = run_tflm_batch(model, samples)
    assert len(batch) == 3
    for sample, got in zip(samples, batch):
        single = run_tflm(model, sample)
        assert len(single) == len(outs)
        for a, b, info in zip(single, got, outs):
            assert a.dtype == info.dtype and a.shape == info.shape
            np.testing.assert_array_equal(a, b)
    # different inputs give different outputs (the interpreter is really re-run)
    assert not np.array_equal(batch[0][0], batch[1][0])


def test_wrong_input_is_a_tinyml_error(conv_model):
    _, model = conv_model
    ins, _ = tflm_io_details(model)
    with pytest.raises(TinymlError, match="dtype"):
        run_tflm(model, [np.zeros(ins[0].shape, np.float32)])
    with pytest.raises(TinymlError, match="input"):
        run_tflm(model, [])


def test_intermediates_cover_every_op_output(ds_cnn):
    case, model = ds_cnn
    sample = inputs_for(case, model, n=2)[1]
    inter = tflm_intermediates(model, sample)
    assert set(inter) == _op_outputs(model)
    _, outs = tflm_io_details(model)
    (out,) = run_tflm(model, sample)
    np.testing.assert_array_equal(inter[outs[0].index], out)


def test_intermediates_match_a_model_exposing_them(ds_cnn):
    """kPreserveAllTensors values equal those of a model whose every op output is a graph output."""
    case, model = ds_cnn
    sample = inputs_for(case, model, n=2)[1]
    inter = tflm_intermediates(model, sample)
    exposed, order = _expose_all(model)
    values = run_tflm(exposed, sample)
    assert len(values) == len(order)
    for idx, value in zip(order, values):
        assert inter[idx].dtype == value.dtype
        np.testing.assert_array_equal(inter[idx].reshape(value.shape), value, err_msg=f"tensor {idx}")


def test_arena_bytes(conv_model):
    from tinyml.tools.reference import _interpreter

    case, model = conv_model
    n = tflm_arena_bytes(model)
    ins, _ = tflm_io_details(model)
    act = sum(int(np.prod(i.shape)) for i in ins)
    assert act < n < 1 << 20
    interp = _interpreter(model, n, preserve_all=False)  # allocates with exactly n bytes
    interp.set_input(inputs_for(case, model, n=1)[0][0], 0)
    interp.invoke()


def test_case_ids_are_unique():
    ids = [c.id for c in all_cases()]
    assert len(ids) == len(set(ids))
    assert len(op_cases()) <= 400


def test_per_tensor_cases_have_one_weight_scale():
    pc = op_cases("CONV_2D")[0]
    pt = op_cases("CONV_2D")[1]
    assert pc.per_channel and not pt.per_channel and pc.params == pt.params
    for case, many in ((pc, True), (pt, False)):
        m = _model_obj(build(case))
        sg = m.subgraphs[0]
        for op in sg.operators:
            w = sg.tensors[op.inputs[1]]
            n = len(w.quantization.scale)
            assert (n > 1) == many, f"{case.id}: {n} weight scales"


def _first_case_per_op():
    seen, cases = set(), []
    for c in op_cases():
        if c.op not in seen:
            seen.add(c.op)
            cases.append(c)
    return cases


@pytest.mark.parametrize("case", _first_case_per_op(), ids=lambda c: c.id)
def test_case_has_its_op_and_runs(case):
    model = build(case)
    assert case.op in model_ops(model)
    for sample in inputs_for(case, model, n=2):
        run_tflm(model, sample)


@pytest.mark.slow
def test_every_case_has_its_op_and_runs():
    cases = all_cases()
    models = build_many(cases, progress=False)
    for case, model in zip(cases, models):
        assert case.op in model_ops(model), case.id
        for sample in inputs_for(case, model, n=2):
            run_tflm(model, sample)
