"""The Python API: ``tinyml.compile``, ``tinyml.inspect``, ``tinyml.plan`` and ``tinyml.profile``.

Each returns a typed object; the CLI's compile, inspect, plan and profile commands are a thin layer
over these functions.  ``import tinyml`` imports none of this: ``tinyml/__init__.py`` loads this
module on the first use of one of the names.

    import tinyml

    m = tinyml.compile("ds_cnn.tflite", board="mps2-an386", sram=64 * 1024)
    print(m.fit.format())
    m.write("fw/kws", format="cmake")
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np

from tinyml.boards import Board, load_board
from tinyml.codegen.render import Storage
from tinyml.compiler import (Compiled, Fit, check_format, check_output_dir, check_storage, export_model, fit_of,
                             write_project)
from tinyml.errors import InputError
from tinyml.graph import Graph, parse_tflite
from tinyml.graph.tflite_import import model_name_from_path, read_model_file
from tinyml.limits import MAX_MODEL_BYTES, check_model_name, check_samples, check_seed
from tinyml.schedule.choose import TOLERANCE
from tinyml.targets.build import build_project
from tinyml.tools.execute import RunOutput, run_arrays
from tinyml.tools.inspect import Inspection, inspect_model
from tinyml.tools.plan import PlanReport, plan_model
from tinyml.tools.profile import BoardProfileReport, ProfileReport, profile_model
from tinyml.tools.verify import VerifyReport, random_inputs, verify_compiled

Model = Union[str, os.PathLike, bytes, Graph]  # a .tflite path, its bytes, or an imported Graph


def _graph_and_bytes(model: Model, name: str | None) -> tuple[Graph, bytes | None]:
    """The Graph of ``model`` and its .tflite bytes where there are any (TFLM needs them), each file read once."""
    if isinstance(model, Graph):
        return model, None
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        if len(data) > MAX_MODEL_BYTES:
            raise InputError(f"the model is {len(data):,} bytes, more than the {MAX_MODEL_BYTES:,} a model may have; "
                             "give a microcontroller-sized .tflite model")
        if name is not None:
            check_model_name(name)
        return parse_tflite(data, name=name or "model", source="<bytes>"), data
    if isinstance(model, (str, os.PathLike)):
        if name is not None:
            check_model_name(name)
        data = read_model_file(model)
        return parse_tflite(data, name=name or model_name_from_path(model), source=str(model)), data
    raise InputError(f"a model is a .tflite path, its bytes or a tinyml Graph, not {type(model).__name__}")


class _ModelFile:
    """``model`` as a path the tools read: itself, or its bytes in a temporary file (named after ``name``)."""

    def __init__(self, model: str | os.PathLike[str] | bytes, name: str | None) -> None:
        self.model, self.name, self.tmp = model, name, None

    def __enter__(self) -> str | os.PathLike[str]:
        if not isinstance(self.model, (bytes, bytearray, memoryview)):
            if isinstance(self.model, Graph):
                raise InputError("this needs the model's .tflite file; give its path or bytes, not a Graph")
            return self.model
        self.tmp = tempfile.TemporaryDirectory(prefix="tinyml-api-")
        path = Path(self.tmp.name) / f"{check_model_name(self.name) if self.name else 'model'}.tflite"
        path.write_bytes(bytes(self.model))
        return path

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


class CompiledModel(Compiled):
    """A model compiled for a board (a Compiled: ``graph``, ``board``, ``plan``, ``calls``, ``files`` in
    ``format``, ``macs``, ``weight_bytes``) with its fit summary (``fit``).  ``write`` puts the files on disk;
    ``build``, ``run`` and ``verify`` use a firmware project of the same compilation (the one written, or one
    in a temporary directory)."""

    def __init__(self, compiled: Compiled, *, fmt: str, model_bytes: bytes | None, sram: int | None,
                 storage: Storage, tolerance: float, stream_input: bool = False) -> None:
        super().__init__(graph=compiled.graph, board=compiled.board, plan=compiled.plan, calls=compiled.calls,
                         files=compiled.files, fold_note=compiled.fold_note, flash_note=compiled.flash_note)
        self.format = fmt
        self._bytes = model_bytes
        self._options = dict(sram=sram, storage=storage, tolerance=tolerance, stream_input=stream_input)
        self._by_format: dict[str, Compiled] = {fmt: compiled}
        self._project: Path | None = None  # a firmware project of this compilation on disk
        self._tmp: Path | None = None

    def __repr__(self) -> str:
        return (f"<CompiledModel {self.name} for {self.board.name} ({self.format}): arena {self.plan.arena_bytes:,} "
                f"bytes, compiled weights {self.weight_bytes:,} bytes>")

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def fit(self) -> Fit:
        """RAM (arena, kernel scratch, stacks) and estimated flash against the board's memories."""
        return fit_of(self)

    def _compiled(self, fmt: str) -> Compiled:
        check_format(fmt)
        if fmt not in self._by_format:
            self._by_format[fmt] = export_model(self.graph, self.board, fmt=fmt, **self._options)
        return self._by_format[fmt]

    def write(self, directory: str | os.PathLike[str], *, format: str | None = None,  # noqa: A002
              force: bool = False) -> Path:
        """Write the files into ``directory``, as ``format`` (default: the one compiled; "project", "library",
        "cmake" or "static-lib").  A directory that is not empty and not a tinyml output is replaced only
        with ``force``."""
        fmt = format or self.format
        check_format(fmt)
        check_output_dir(directory, force=force)
        out = write_project(self._compiled(fmt).files, directory, force=force)
        if fmt == "project":
            self._project = Path(directory)
        return out

    def _project_dir(self) -> Path:
        if self._project is not None and (self._project / "project.json").is_file():
            return self._project
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix=f"tinyml-{self.name}-"))
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
        project = self._tmp / self.name
        if not project.is_dir():
            write_project(self._compiled("project").files, project)
        return project

    def build(self) -> Path:
        """Build the firmware project (the one written with format "project", else a temporary one); returns
        the firmware binary (an ELF on an Arm board)."""
        return build_project(self._project_dir())

    def run(self, inputs: np.ndarray | Sequence[np.ndarray], *, timeout: float = 300.0) -> RunOutput:
        """Run ``inputs`` through the firmware (on the host, or under QEMU): one array per model input, or
        the array of a single-input model, with or without a leading axis of samples.  ``.outputs`` holds one
        array per model output, with a leading axis of samples."""
        arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        return run_arrays(self._project_dir(), [np.asarray(a) for a in arrays], source="inputs", timeout=timeout)

    def verify(self, samples: int = 10, *, seed: int = 0, inputs: list[list[np.ndarray]] | None = None,
               progress: Callable[[str], None] | None = None) -> VerifyReport:
        """Compare the firmware with TFLM (the reference extra) on ``samples`` random inputs (or ``inputs``:
        one list of arrays per sample), every output byte (float32 outputs within verify's tolerance: they are
        not promised bit-exact); ``.ok`` is True when all match."""
        if self._bytes is None:
            raise InputError("verifying needs the model's .tflite bytes for TFLM; compile from its path or bytes, "
                             "not a Graph")
        if inputs is None:
            check_samples(samples)
            check_seed(seed)
        xs = inputs if inputs is not None else random_inputs(self.graph, samples, seed)
        return verify_compiled(self._compiled("project"), self._bytes, xs, progress=progress)


def compile(model: Model, board: str | Board = "host", *, sram: int | None = None,  # noqa: A001
            name: str | None = None, format: str = "project", arena: str = "static",  # noqa: A002
            weights_section: str | None = None, arena_section: str | None = None,
            tolerance: float = TOLERANCE, stream_input: bool = False) -> CompiledModel:
    """Compile ``model`` (a .tflite path, its bytes, or a Graph) for ``board`` (a name from `tinyml boards` or
    a board .toml file; default the host).

    ``sram``: the arena budget in bytes (the plan that fits it with the lowest estimated cost); ``name``:
    the C name of the model (default: from the file name; "model" for bytes); ``format``: what ``files``
    and ``write`` hold ("project", "library", "cmake", "static-lib"); ``arena``: "static" or "caller";
    ``weights_section``/``arena_section``: linker sections; ``stream_input``: the model pulls its input row by
    row from a callback (``NAME_invoke_rows``, see model.h) and never holds it whole.  Nothing is written to
    disk."""
    storage = check_storage(Storage(arena=arena, weights_section=weights_section, arena_section=arena_section))
    check_format(format)
    brd = board if isinstance(board, Board) else load_board(board)
    graph, data = _graph_and_bytes(model, name)
    compiled = export_model(graph, brd, name=name, sram=sram, storage=storage, fmt=format, tolerance=tolerance,
                            stream_input=stream_input)
    return CompiledModel(compiled, fmt=format, model_bytes=data, sram=sram, storage=storage, tolerance=tolerance,
                         stream_input=stream_input)


def inspect(model: Model, board: str | None = None, *, name: str | None = None,
            stream_input: bool = False) -> Inspection:
    """What ``model`` holds and costs (`tinyml inspect`); with an Arm ``board``, the firmware's code and weight
    bytes from the ELF, and on a QEMU board the estimated latency (``stream_input``: of the build that streams
    the input row by row)."""
    if isinstance(model, Graph):
        return inspect_model(model, board, stream_input=stream_input)
    with _ModelFile(model, name) as path:
        return inspect_model(path, board, stream_input=stream_input)


def plan(model: Model, sram: int | None = None, board: str | None = None, *,
         stream_input: bool = False) -> PlanReport:
    """The memory plan `tinyml compile` makes for ``board`` (portable kernels without one) and the arena
    budget ``sram``, with the memory/cost frontier (`tinyml plan`); ``stream_input``: with the input streamed
    row by row."""
    if isinstance(model, Graph):
        return plan_model(model, sram, board, stream_input=stream_input)
    with _ModelFile(model, None) as path:
        return plan_model(path, sram, board, stream_input=stream_input)


def profile(model: str | os.PathLike[str] | bytes, board: str, *, sram: int | None = None, seed: int = 0,
            kernels: str = "auto", clock_mhz: float | None = None, chart: str | os.PathLike[str] | None = None,
            port: str | None = None, baudrate: int = 115200, force: bool = False,
            progress: Callable[[str], None] | None = None,
            stream_input: bool = False) -> ProfileReport | BoardProfileReport:
    """Exact instructions and estimated cycles per layer under QEMU on ``board`` (or from a board at serial
    ``port`` running the host-link firmware), and the ELF's sizes (`tinyml profile`)."""
    with _ModelFile(model, None) as path:
        return profile_model(path, board, chart=chart, seed=seed, families=kernels, progress=progress, port=port,
                             baudrate=baudrate, sram=sram, clock_mhz=clock_mhz, force=force,
                             stream_input=stream_input)
