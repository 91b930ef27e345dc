"""`tinyml run`: feed .npy inputs to a compiled project and collect its outputs."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.errors import InputError
from tinyml.graph.ir import NUMPY_DTYPES
from tinyml.targets.run import run_project
from tinyml.tools.verify import split_outputs



@dataclass
class RunOutput:
    outputs: list[np.ndarray]  # one array per model output, with a leading sample axis
    samples: int
    seconds: float
    console: str
    board: str


def project_info(project_dir: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(project_dir)
    meta = p / "project.json"
    if not meta.is_file():
        raise InputError(f"{p}: not a tinyml project (no project.json); create one with 'tinyml compile'")
    try:
        return json.loads(meta.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{meta}: is not valid JSON; recreate the project with 'tinyml compile'") from None


def load_inputs(path: str | os.PathLike[str], info: dict[str, Any]) -> list[np.ndarray]:
    """Arrays from a .npy (one model input) or .npz (one array per input, in order)."""
    p = Path(path)
    try:
        loaded = np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file; give a .npy file with the input tensor") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{p}: not a readable .npy/.npz file ({e}); save inputs with numpy.save") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            arrays = [loaded[k] for k in loaded.files]
    else:
        arrays = [loaded]
    if len(arrays) != len(info["inputs"]):
        raise InputError(f"{p}: holds {len(arrays)} arrays but the model has {len(info['inputs'])} inputs; "
                         "use a .npz with one array per input")
    return arrays


def prepare(arrays: list[np.ndarray], info: dict[str, Any], source: str) -> tuple[list[np.ndarray], int]:
    """Check shapes and types; returns arrays shaped (samples, *shape) and the sample count."""
    out, counts = [], []
    for arr, spec in zip(arrays, info["inputs"]):
        shape = tuple(spec["shape"])
        size = int(np.prod(shape)) if shape else 1
        dtype = np.dtype(NUMPY_DTYPES[spec["dtype"]])
        a = np.asarray(arr)
        if a.dtype.kind == "f" and dtype.kind == "i":
            # Float data for a quantized input: quantize with the input's parameters.
            scale, zp = spec["scale"], spec["zero_point"]
            info_i = np.iinfo(dtype)
            a = np.clip(np.round(a.astype(np.float64) / scale) + zp, info_i.min, info_i.max).astype(dtype)
        elif a.dtype != dtype:
            if a.dtype.kind in "iu" and dtype.kind in "iu" and a.size and (
                    a.min() >= np.iinfo(dtype).min and a.max() <= np.iinfo(dtype).max):
                a = a.astype(dtype)
            elif dtype.kind == "f" and a.dtype.kind in "iuf":
                a = a.astype(dtype)
            else:
                raise InputError(f"{source}: input '{spec['name']}' must be {spec['dtype']}, got {a.dtype}")
        if a.size == 0 or a.size % size != 0:
            raise InputError(f"{source}: input '{spec['name']}' has shape {list(a.shape)}; expected {list(shape)} "
                             f"or (N, {', '.join(map(str, shape))})")
        n = a.size // size
        out.append(a.reshape((n,) + shape))
        counts.append(n)
    if len(set(counts)) != 1:
        raise InputError(f"{source}: the inputs hold different numbers of samples {counts}")
    return out, counts[0]


def run_arrays(project_dir: str | os.PathLike[str], arrays: list[np.ndarray], source: str = "input",
               timeout: float = 300.0) -> RunOutput:
    info = project_info(project_dir)
    xs, n = prepare(arrays, info, source)
    payload = b"".join(
        np.ascontiguousarray(xs[j][i]).astype(xs[j].dtype.newbyteorder("<")).tobytes()
        for i in range(n) for j in range(len(xs)))
    result = run_project(Path(project_dir), payload, timeout=timeout)
    samples = split_outputs(result.output, [(o["dtype"], tuple(o["shape"])) for o in info["outputs"]], n)
    outs = [np.stack([s[j] for s in samples]) for j in range(len(info["outputs"]))]
    return RunOutput(outputs=outs, samples=n, seconds=result.seconds, console=result.console, board=info["board"])


def run_files(project_dir: str | os.PathLike[str], input_path: str | os.PathLike[str],
              output_path: str | os.PathLike[str] | None = None) -> RunOutput:
    info = project_info(project_dir)
    arrays = load_inputs(input_path, info)
    res = run_arrays(project_dir, arrays, source=str(input_path))
    if output_path is not None:
        outp = Path(output_path)
        single = [o[0] for o in res.outputs] if res.samples == 1 else res.outputs
        try:
            if len(single) == 1:
                np.save(outp, single[0])
            else:
                np.savez(outp, *single)
        except OSError as e:
            raise InputError(f"{outp}: cannot write the output ({e.strerror})") from None
    return res
