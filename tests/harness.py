"""Shared test helpers: compile a model for a board, run it, compare with TFLM."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pytest

from tinyml.compiler import lower_graph
from tinyml.errors import TinymlError
from tinyml.graph import parse_tflite
from tinyml.tools.verify import VerifyReport, verify_model


def assert_bitexact(model: bytes | Path, tmp_path: Path, board: str = "host", samples: int = 4,
                    seed: int = 0, sram: int | None = None, resets: Sequence[int] = (),
                    stream_input: bool = False) -> VerifyReport:
    """``samples`` random inputs through the model on ``board`` and through TFLM, every output byte the same.
    A model with state runs them as one sequence of invokes on one model instance on both sides (state
    carried), reset before the sample indices ``resets`` (NAME_reset(), the interpreter's reset()).
    ``stream_input``: the model's input streamed row by row (NAME_invoke_rows, rows read from input.bin)."""
    if isinstance(model, bytes):
        path = tmp_path / "model.tflite"
        path.write_bytes(model)
    else:
        path = Path(model)
    report = verify_model(path, board, samples=samples, seed=seed, work_dir=tmp_path / "proj", sram=sram,
                          resets=resets, stream_input=stream_input)
    assert report.ok, report.summary()
    return report


def refusal(model: bytes, error: type[TinymlError] = TinymlError) -> str:
    """The one line validation gives for ``model`` (parsed from bytes named m.tflite)."""
    with pytest.raises(error) as e:
        lower_graph(parse_tflite(model, source="m.tflite"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("m.tflite: "), msg
    return msg
