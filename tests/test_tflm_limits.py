"""Where validation's limits meet TFLM's (issue 17): int8 and float32 CONCATENATION of more than 10 inputs, which
TFLM refuses (kMaxInputNum), refused in one line; the int8 MEAN's multiplier checked against one output's
int32 sum (as TFLM sums), not the whole input's, so that a MEAN of many values into many outputs compiles,
bit-exact on the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.tflite_edit import craft_model
from tinyml.cli import main as cli_main
from tinyml.errors import ModelError, TinymlError
from tinyml.tools.reference import run_tflm


def _concat_model(dtype: str, n: int) -> bytes:
    """``n`` [1, 2, 3] inputs concatenated on the last axis."""
    quant: dict[str, Any] = dict(scale=[0.05], zero_point=[-3]) if dtype == "INT8" else {}
    tensors = [dict(name=f"x{k}", shape=[1, 2, 3], type=dtype, **quant) for k in range(n)]
    tensors.append(dict(name="y", shape=[1, 2, 3 * n], type=dtype, **quant))
    return craft_model(tensors, [("CONCATENATION", list(range(n)), [n], ("ConcatenationOptions", {"axis": -1}))],
                       inputs=list(range(n)), outputs=[n])


@pytest.mark.parametrize("dtype, np_dtype", [("INT8", np.int8), ("FLOAT32", np.float32)])
def test_concatenation_of_11_inputs_is_refused_as_tflm_refuses_it(dtype: str, np_dtype: Any, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = _concat_model(dtype, 11)
    with pytest.raises(TinymlError):
        run_tflm(model, [np.ones([1, 2, 3], np_dtype)] * 11)
    msg = refusal(model, ModelError)
    assert "operator 0 (CONCATENATION): has 11 inputs; allowed is at most 10 (as TFLM requires)" in msg, msg
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert cli_main(["compile", str(path), "--board", "host", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 11 inputs" in err[0] and "Traceback" not in err[0]


def test_concatenation_of_10_inputs_is_bitexact(tmp_path: Path) -> None:
    assert_bitexact(_concat_model("INT8", 10), tmp_path, board="host", samples=2)


def _mean_model(shape: list[int], axes: list[int], out: list[int], s_in: float, s_out: float) -> bytes:
    tensors = [dict(name="x", shape=shape, type="INT8", scale=[s_in], zero_point=[5]),
               dict(name="axis", shape=[len(axes)], type="INT32", data=np.array(axes, np.int32)),
               dict(name="y", shape=out, type="INT8", scale=[s_out], zero_point=[-7])]
    return craft_model(tensors, [("MEAN", [0, 1], [2])], inputs=[0], outputs=[2])


def test_int8_mean_bound_is_per_output(tmp_path: Path) -> None:
    """80,000 values, 2 into each output, rescaled by 200 (left shift 8): one output's sum is small, the whole
    input's bound (80,000 x 133 x 2^8, zero point 5) would overflow int32."""
    assert_bitexact(_mean_model([40000, 2], [-1], [40000], 0.1, 0.0005), tmp_path, board="host", samples=2)


def test_int8_mean_whose_one_output_sum_overflows_is_refused() -> None:
    """90,000 values into one output, rescaled by 200: 90,000 x 133 x 2^8 overflows int32."""
    msg = refusal(_mean_model([1, 300, 300], [1, 2], [1], 0.1, 0.0005), ModelError)
    assert "operator 0 (MEAN): the multiplier input scale / output scale is 200 (left shift 8) on an accumulator " \
           "of up to 11970000" in msg, msg
