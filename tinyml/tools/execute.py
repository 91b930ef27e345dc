"""`tinyml run`: feed .npy inputs to a compiled project and collect its outputs."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.errors import InputError
from tinyml.graph.ir import NUMPY_DTYPES
from tinyml.limits import MAX_INPUT_BYTES, MAX_SAMPLES, stat_regular_file
from tinyml.targets.run import run_project
from tinyml.tools.verify import split_outputs



@dataclass
class RunOutput:
    outputs: list[np.ndarray]  # one array per model output, with a leading sample axis
    samples: int
    seconds: float
    console: str
    board: str

    @property
    def memory(self) -> str | None:
        """The firmware's memory line ("memory: arena used N of M bytes, stack high-water ..."), if it printed one."""
        lines = [line.removeprefix("tinyml: ") for line in self.console.splitlines()
                 if line.startswith("tinyml: memory: ")]
        return lines[-1].strip() if lines else None


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
    """Arrays from a .npy (one model input) or .npz (one array per input, in order).

    Untrusted: the file must be a regular file of at most MAX_INPUT_BYTES,
    and every array's header (dtype, shape) is checked against the model's
    input before its data is read; nothing is unpickled."""
    p = Path(path)
    st = stat_regular_file(p, MAX_INPUT_BYTES, give="a .npy or .npz file with the input tensor",
                           too_big="tinyml run reads; split the inputs into several files")
    specs = info["inputs"]
    try:
        with open(p, "rb") as f:
            if zipfile.is_zipfile(f):
                f.seek(0)
                with zipfile.ZipFile(f) as z:
                    members = [m for m in z.infolist() if m.filename.endswith(".npy")]
                    if len(members) != len(specs):
                        raise InputError(f"{p}: holds {len(members)} arrays but the model has {len(specs)} "
                                         "inputs; use a .npz with one array per input")
                    if sum(m.file_size for m in members) > MAX_INPUT_BYTES:
                        raise InputError(f"{p}: its arrays unpack to more than {MAX_INPUT_BYTES // 2**20} MiB; "
                                         "split the inputs into several files")
                    arrays = []
                    for m, spec in zip(members, specs):
                        with z.open(m) as member:
                            arrays.append(_read_npy(member, m.file_size, spec, f"{p}: array {m.filename[:-4]!r}"))
                    return arrays
            f.seek(0)
            if len(specs) != 1:
                raise InputError(f"{p}: holds 1 array but the model has {len(specs)} inputs; use a .npz with one "
                                 "array per input")
            return [_read_npy(f, st.st_size, specs[0], str(p))]
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError) as e:
        what = " ".join(str(e).split())[:200]
        raise InputError(f"{p}: not a readable .npy/.npz file ({what}); save inputs with numpy.save") from None


def _read_npy(f: Any, size: int, spec: dict[str, Any], source: str) -> np.ndarray:
    """One .npy stream of ``size`` bytes: its header checked against the model input ``spec``, then its data."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(f)
    else:
        raise InputError(f"{source}: .npy format version {version[0]}.{version[1]} is not supported; save the "
                         "input with numpy.save")
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise InputError(f"{source}: holds {dtype} values (the model input '{spec['name']}' takes "
                         f"{spec['dtype']}); save a numeric array, not Python objects")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    per_sample = int(np.prod(spec["shape"], dtype=object)) if spec["shape"] else 1
    expected = f"{list(spec['shape'])} or (N, {', '.join(map(str, spec['shape']))}) with N up to {MAX_SAMPLES:,}"
    if count == 0 or per_sample <= 0 or count % per_sample or count // per_sample > MAX_SAMPLES:
        raise InputError(f"{source}: input '{spec['name']}' has shape {list(shape)}; expected {expected}")
    nbytes = count * dtype.itemsize
    if nbytes > size:
        raise InputError(f"{source}: its header promises {nbytes:,} bytes of data but the file is {size:,} bytes; "
                         "save the input again with numpy.save")
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise InputError(f"{source}: truncated ({len(data):,} of {nbytes:,} bytes of data); save the input again "
                         "with numpy.save")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


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


def output_file(path: str | os.PathLike[str], outputs: int) -> Path:
    """Where ``tinyml run --output`` writes: ``path``, with .npy (one model output) or .npz (several) added
    when missing, as numpy names it."""
    out = Path(path)
    suffix = ".npy" if outputs == 1 else ".npz"
    return out if out.suffix == suffix else out.with_name(out.name + suffix)


def check_output_file(path: Path, *, force: bool = False) -> Path:
    """Refuse (before the run) an output file that would lose a file: an existing one unless ``force``, a
    directory, or a path in no directory."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give an output file name with --output")
    if path.exists() and not force:
        raise InputError(f"{path}: exists; give another --output file, or --force to replace it")
    if not path.parent.is_dir():
        raise InputError(f"{path}: directory {path.parent} does not exist; create it first")
    return path


def run_files(project_dir: str | os.PathLike[str], input_path: str | os.PathLike[str],
              output_path: str | os.PathLike[str] | None = None, *, force: bool = False) -> RunOutput:
    """Run the inputs of ``input_path`` (.npy or .npz) through a project; with ``output_path``, write the
    outputs there (all or nothing; an existing file only with ``force``)."""
    info = project_info(project_dir)
    outp = None if output_path is None else check_output_file(output_file(output_path, len(info["outputs"])),
                                                              force=force)
    arrays = load_inputs(input_path, info)
    res = run_arrays(project_dir, arrays, source=str(input_path))
    if outp is not None:
        single = [o[0] for o in res.outputs] if res.samples == 1 else res.outputs
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{outp.name}.", suffix=".tmp", dir=outp.parent)
            with os.fdopen(fd, "wb") as f:
                if len(single) == 1:
                    np.save(f, single[0])
                else:
                    np.savez(f, *single)
            os.replace(tmp, outp)
        except OSError as e:
            raise InputError(f"{outp}: cannot write the output ({e.strerror})") from None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    return res
