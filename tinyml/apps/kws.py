"""Keyword spotting end to end: data -> training -> int8 -> firmware -> detections on the device.

``tinyml train kws`` (:func:`train_and_report`) and ``tinyml demo kws``
(:func:`run_kws_demo`) are built from the pieces here:

* :func:`synthetic_data` generates (once, cached) the offline synthetic set
  (``tinyml.train.synth``) in the Speech Commands layout;
* :func:`trained_model` trains and quantizes (``tinyml.train.train``),
  cached by data and configuration;
* :func:`compile_kws` compiles the int8 model with the streaming firmware:
  the MFCC front end (``templates/kws/mfcc.c.j2``, rendered with the model's
  input quantization) and ``templates/project/kws_main.c.j2`` instead of the
  generic main;
* :func:`run_stream` sends audio through the firmware (semihosting files
  under QEMU, stdio on the host) and returns the features, scores and
  detections of every window;
* :func:`evaluate_on_device` runs every held-out clip as one window and
  compares with the Python features and with TFLM.

Artifacts are cached under ``~/.cache/tinyml/kws`` (``TINYML_CACHE``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinyml.boards import load_board
from tinyml.compiler import PROJECT_MARKER, build_model, check_output_dir, write_project
from tinyml.errors import InputError, RunError, TinymlError
from tinyml.graph import load_tflite
from tinyml.limits import check_seed
from tinyml.resources import cache_build, cache_root
from tinyml.targets.build import build_project
from tinyml.targets.project import Application, reserved_ram_bytes
from tinyml.targets.run import run_project
from tinyml.tools.profile import build_variant, count_instructions, elf_section_sizes, elf_sizes, invoke_marks
from tinyml.tools.reference import run_tflm_batch
from tinyml.train.features import MLPERF_KWS, mfcc_batch, mfcc_tables, quantize_features
from tinyml.train.qat import require_tfmot
from tinyml.train.speech_commands import KEYWORDS, LABELS, load_speech_commands
from tinyml.train.synth import SynthConfig, Voice, available_engines, generate_dataset
from tinyml.train.train import MODELS, SPLIT_SEED, TrainConfig, TrainResult, confusion_matrix, plot_confusion, train_kws

__all__ = [
    "KWS_MAGIC",
    "StreamResult",
    "DeviceEval",
    "cache_dir",
    "synthetic_data",
    "trained_model",
    "kws_application",
    "compile_kws",
    "pack_stream",
    "run_stream",
    "evaluate_on_device",
    "train_and_report",
    "run_kws_demo",
]

KWS_MAGIC = b"TKWS"
MAX_SMOOTH = 8
# The KWS streaming command set over the host link (templates/kws/link_main.c.j2).
LINK_VERSION = 1
LINK_SUFFIX = ":kws-stream-1"
LINK_CHUNK = 4000  # samples per LOAD of audio (the longest hop)
LINK_CONTROL_WORDS = 6
LINK_RECORD_WORDS = 8
# The demo's model: DS-CNN-M for 20 epochs (weights averaged over the last 10).  On the demo's data it
# held out about 1.5 points more than DS-CNN-S in 30 epochs, for about 1.5 min more training (README).
DEMO_MODEL, DEMO_EPOCHS = "ds_cnn_m", 20
_DETECTION_RE = re.compile(r"^kws: (\d+\.\d+) s (\S+) confidence (\d+\.\d+) window (\d+)$")


def cache_dir() -> Path:
    return cache_root() / "kws"


Say = Callable[[str], None]


# --------------------------------------------------------------------------
# data and model (cached)


def synthetic_data(say: Say = print, cfg: Any = None, root: Path | None = None) -> Path:
    """The synthetic dataset directory, generated on first use."""
    from tqdm import tqdm

    cfg = cfg or SynthConfig()
    base = root or cache_dir()
    out = base / f"synth-{cfg.key()}"
    if (out / "synth.json").is_file():
        say(f"using cached synthetic data {out}")
        return out
    engines = available_engines()
    say(f"synthesizing keyword data with {', '.join(engines) or 'no engine'} (once; cached in {out}) ...")
    if out.exists() and not (out / "synth.json").is_file():  # an older tinyml's unfinished dataset
        shutil.rmtree(out, ignore_errors=True)
    start = time.monotonic()
    bar = tqdm(total=1, desc="synthesizing", unit="clip", leave=False, dynamic_ncols=True, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:  # another process synthesizing the same key at once: the first one's dataset is used
        cache_build(out, lambda tmp: generate_dataset(tmp, cfg, progress=progress))
    finally:
        bar.close()
    info = json.loads((out / "synth.json").read_text())
    say(f"synthesized {sum(info['clips'].values())} clips in {time.monotonic() - start:.0f}s: "
        f"{len(info['voices']['train'])} training speakers, {len(info['voices']['validation'])} validation, "
        f"{len(info['voices']['test'])} held-out test speakers "
        f"({', '.join(info['voices']['test'][:4])}, ...)")
    return out


def _data_key(data_dir: Path) -> str:
    """Identifies a dataset directory by its lists and file names (not by reading every clip)."""
    import hashlib

    h = hashlib.sha256(str(data_dir.resolve()).encode())
    for name in ("synth.json", "validation_list.txt", "testing_list.txt"):
        p = data_dir / name
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def trained_model(data_dir: Path, cfg: Any = None, *, say: Say = print, force: bool = False,
                  out_dir: Path | None = None, progress_bar: bool = True) -> Any:
    """Train (or reuse the cached result of training) on ``data_dir``; returns a TrainResult."""
    cfg = cfg or TrainConfig()
    out = out_dir or cache_dir() / f"model-{_data_key(Path(data_dir))}-{cfg.key()}"
    result_file = out / "result.json"
    if result_file.is_file() and not force:
        say(f"using cached model {out / 'model.tflite'}")
        return TrainResult.from_json(json.loads(result_file.read_text()))
    if cfg.qat_epochs:
        require_tfmot()
    say(f"training {cfg.model} (up to {cfg.epochs} epochs, early stopping; checkpoints in {out}) ...")
    return train_kws(data_dir, out, cfg, say=say, progress_bar=progress_bar)


# --------------------------------------------------------------------------
# firmware


def kws_application(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int,
                    labels: tuple[str, ...] = LABELS) -> Application:
    """The KWS firmware as an application of the model's project: the streaming main.c (and the UART
    streaming hostlink/main.c on boards with a UART), kws_mfcc.{h,c} and kws_stream.{h,c}, and the labels
    for project.json."""
    keywords = [label for label in labels if label in KEYWORDS]
    if list(labels[: len(keywords)]) != keywords:
        raise TinymlError("the keyword labels must come first in the label list")
    values = dict(mfcc_tables(MLPERF_KWS), input_scale=input_scale, input_zero_point=input_zero_point,
                  labels=list(labels), num_labels=len(labels), num_keywords=len(keywords), max_smooth=MAX_SMOOTH,
                  feature_bytes=MLPERF_KWS.frames * MLPERF_KWS.coefficients, output_scale=output_scale,
                  output_zero_point=output_zero_point, link_version=LINK_VERSION, link_suffix=LINK_SUFFIX,
                  chunk_samples=LINK_CHUNK, control_words=LINK_CONTROL_WORDS, record_words=LINK_RECORD_WORDS)
    return Application(
        name="kws", main="project/kws_main.c.j2", hostlink_main="kws/link_main.c.j2",
        sources=(("kws_mfcc.h", "kws/mfcc.h.j2"), ("kws_mfcc.c", "kws/mfcc.c.j2"),
                 ("kws_stream.h", "kws/stream.h.j2"), ("kws_stream.c", "kws/stream.c.j2")),
        values=values, metadata=dict(labels=list(labels), keywords=keywords))


def compile_kws(tflite: str | os.PathLike[str], board: str, out_dir: str | os.PathLike[str], *,
                name: str = "kws", labels: tuple[str, ...] = LABELS, sram: int | None = None,
                force: bool = False) -> Any:
    """Compile an int8 KWS model (49x10x1 in, one score per label out) into a streaming firmware project
    (``force``: replace ``out_dir`` whatever it is, see tinyml.compiler.write_project)."""
    check_output_dir(out_dir, force=force)
    g = load_tflite(tflite, name=name)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise InputError(f"{tflite}: a KWS model has one input and one output, not {len(g.inputs)} and "
                         f"{len(g.outputs)}")
    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    want = MLPERF_KWS.frames * MLPERF_KWS.coefficients
    if tin.dtype != "int8" or tin.size != want or tin.quant is None:
        raise InputError(f"{tflite}: input must be int8 with {want} values (49x10x1 MFCC), not {tin.dtype} "
                         f"{list(tin.shape)}; train it with 'tinyml train kws'")
    if tout.dtype != "int8" or tout.size != len(labels) or tout.quant is None:
        raise InputError(f"{tflite}: output must be int8 with {len(labels)} scores, not {tout.dtype} "
                         f"{list(tout.shape)}")
    app = kws_application(tin.quant.s, tin.quant.zp, tout.quant.s, tout.quant.zp, labels)
    compiled = build_model(g, board, sram=sram, app=app)
    write_project(compiled.files, out_dir, force=force)
    return compiled


def pack_stream(audio: np.ndarray, *, hop: int = 16000, smoothing: int = 1, threshold: float = 0.6,
                features: bool = False) -> bytes:
    """input.bin of the KWS firmware: the TKWS header and the int16 audio."""
    if not 1 <= smoothing <= MAX_SMOOTH or not 0 < hop <= MLPERF_KWS.clip_samples:
        raise InputError(f"hop must be 1..{MLPERF_KWS.clip_samples} samples and smoothing 1..{MAX_SMOOTH} windows")
    head = KWS_MAGIC + struct.pack("<5I", 1, hop, smoothing, int(round(threshold * 1000)), 1 if features else 0)
    return head + np.asarray(audio, dtype="<i2").reshape(-1).tobytes()


@dataclass
class Detection:
    time: float  # end of the window in the stream, seconds
    label: str
    confidence: float
    window: int


@dataclass
class StreamResult:
    scores: np.ndarray  # (windows, labels) int8
    features: np.ndarray | None  # (windows, 49, 10, 1) int8
    detections: list[Detection]
    console: str
    seconds: float


def run_stream(project: str | os.PathLike[str], audio: np.ndarray, *, hop: int = 16000, smoothing: int = 1,
               threshold: float = 0.6, features: bool = False, timeout: float = 600) -> StreamResult:
    """Stream ``audio`` (int16, 16 kHz) through the KWS firmware of ``project``."""
    res = run_project(Path(project), pack_stream(audio, hop=hop, smoothing=smoothing, threshold=threshold,
                                                 features=features), timeout=timeout)
    nlab = len(_project_labels(Path(project)))
    fbytes = MLPERF_KWS.frames * MLPERF_KWS.coefficients if features else 0
    per = fbytes + nlab
    if len(res.output) % per:
        raise RunError(f"the KWS firmware wrote {len(res.output)} bytes, not a multiple of {per}")
    raw = np.frombuffer(res.output, dtype=np.int8).reshape(-1, per)
    dets = []
    for line in res.console.splitlines():
        m = _DETECTION_RE.match(line.strip())
        if m:
            dets.append(Detection(float(m[1]), m[2], float(m[3]), int(m[4])))
    return StreamResult(scores=raw[:, fbytes:].copy(),
                        features=raw[:, :fbytes].reshape(-1, *MLPERF_KWS.shape).copy() if features else None,
                        detections=dets, console=res.console, seconds=res.seconds)


def _project_labels(project: Path) -> list[str]:
    """The labels the KWS application wrote into the project's project.json."""
    try:
        meta = json.loads((project / PROJECT_MARKER).read_text())
        labels = meta["application"]["labels"] if meta["application"]["name"] == "kws" else None
    except (OSError, ValueError, KeyError, TypeError):
        labels = None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise InputError(f"{project}: not a KWS firmware project; make it with tinyml.apps.kws.compile_kws")
    return labels


@dataclass
class DeviceEval:
    clips: int
    device_accuracy: float  # device predictions (its own MFCC + model) vs truth
    tflm_accuracy: float  # TFLM on the Python int8 features vs truth
    same_predictions: int  # clips where device and TFLM agree on the class
    features_equal: float  # share of feature values equal to Python's
    features_max_diff: int  # largest difference in int8 steps
    scores_bitexact: int  # clips where device scores == TFLM run on the device's own features
    seconds: float
    device_predictions: list[int] = field(default_factory=list)


def evaluate_on_device(project: Path, tflite: bytes, audio: np.ndarray, labels: np.ndarray,
                       input_scale: float, input_zero_point: int) -> DeviceEval:
    """Every clip as one window on the device, against the Python front end and TFLM."""
    res = run_stream(project, audio, hop=MLPERF_KWS.clip_samples, smoothing=1, features=True)
    n = len(audio)
    if len(res.scores) != n:
        raise RunError(f"the KWS firmware processed {len(res.scores)} windows for {n} clips")
    py = quantize_features(mfcc_batch(audio), input_scale, input_zero_point)
    dev = res.features
    assert dev is not None
    diff = np.abs(dev.astype(np.int16) - py.astype(np.int16))
    tflm_py = np.array([o[0].reshape(-1) for o in run_tflm_batch(tflite, [[f] for f in py])])
    tflm_dev = np.array([o[0].reshape(-1) for o in run_tflm_batch(tflite, [[f] for f in dev])])
    dev_pred = np.argmax(res.scores, 1)
    tflm_pred = np.argmax(tflm_py, 1)
    return DeviceEval(
        clips=n,
        device_accuracy=float(np.mean(dev_pred == labels)),
        tflm_accuracy=float(np.mean(tflm_pred == labels)),
        same_predictions=int(np.sum(dev_pred == tflm_pred)),
        features_equal=float(np.mean(diff == 0)),
        features_max_diff=int(diff.max()) if diff.size else 0,
        scores_bitexact=int(np.sum(np.all(tflm_dev == res.scores, axis=1))),
        seconds=res.seconds,
        device_predictions=dev_pred.tolist(),
    )


def device_costs(project: Path, compiled: Any, clip: np.ndarray) -> dict[str, int]:
    """Flash, static RAM and instructions (MFCC, model) for one window, from the ELF and QEMU's plugin."""
    board = compiled.board
    if not board.is_arm:
        return {}
    elf = build_project(project)
    sizes = elf_sizes(board, elf, compiled.graph.name)
    ram = _section_bytes(elf, (".data", ".bss"))
    out = dict(flash_bytes=sizes.flash_bytes, weight_bytes=sizes.weight_bytes, static_ram_bytes=ram,
               stack_reserved_bytes=reserved_ram_bytes(board), arena_bytes=compiled.plan.arena_bytes)
    if board.kind == "qemu":
        pelf = build_variant(project, board, profile=True)
        hits = count_instructions(project, board, pelf, pack_stream(clip, hop=MLPERF_KWS.clip_samples))
        n = invoke_marks(compiled)  # two at invoke start, one per operator (per window in a patch stage)
        if len(hits) == n + 1:  # and one before the MFCC
            cost = hits[2] - hits[1]
            out["mfcc_instructions"] = hits[1] - hits[0] - cost
            out["model_instructions"] = hits[-1] - hits[2] - (n - 2) * cost
    return out


def _section_bytes(elf: Path, names: tuple[str, ...]) -> int:
    sizes = elf_section_sizes(elf)
    return sum(sizes.get(n, 0) for n in names)


# --------------------------------------------------------------------------
# accuracy by engine and speaker


@dataclass
class GroupAccuracy:
    name: str  # "festival", "espeak-ng:m3", "_silence_ (noise)", ...
    clips: int
    int8_correct: int  # TFLM on the Python features
    device_correct: int | None  # the device (its MFCC + model); None without a device run

    def text(self) -> str:
        dev = "" if self.device_correct is None else f", device {100 * self.device_correct / self.clips:.1f}%"
        return f"{self.name} {100 * self.int8_correct / self.clips:.1f}%{dev} ({self.clips})"


def accuracy_by_group(data_dir: Path, files: list[str], truth: np.ndarray, int8_pred: np.ndarray,
                      device_pred: np.ndarray | None = None) -> tuple[list[GroupAccuracy], list[GroupAccuracy]]:
    """Accuracy per engine and per speaker of a split (speakers named through synth.json when there is one)."""
    info_file = Path(data_dir) / "synth.json"
    names: dict[str, str] = {}
    trained: set[str] | None = None  # the engines of the training voices
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        names = {Voice(*v.split(":", 1)).speaker: v for vs in info["voices"].values() for v in vs}
        trained = {v.split(":", 1)[0] for v in info["voices"].get("train", [])}
    engines: dict[str, list[int]] = {}
    speakers: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        if f:
            sid = f.split("/")[-1].split("_nohash_")[0]
            speaker = names.get(sid, sid)
            engine = speaker.split(":")[0] if ":" in speaker else "speech"
            if trained is not None and ":" in speaker and engine not in trained:
                engine += " (engine unseen in training)"
        else:
            speaker = engine = "_silence_ (noise)"
        for table, key in ((engines, engine), (speakers, speaker)):
            table.setdefault(key, []).append(i)

    def group(name: str, idx: list[int]) -> GroupAccuracy:
        ix = np.array(idx)
        return GroupAccuracy(name, len(ix), int(np.sum(int8_pred[ix] == truth[ix])),
                             None if device_pred is None else int(np.sum(device_pred[ix] == truth[ix])))

    return ([group(k, v) for k, v in sorted(engines.items())], [group(k, v) for k, v in sorted(speakers.items())])


# --------------------------------------------------------------------------
# the commands


@dataclass
class KwsReport:
    train: Any
    device: DeviceEval | None
    costs: dict[str, int]
    project: Path | None
    seconds: float
    detections: list[Detection] = field(default_factory=list)
    stream_hits: int = 0
    stream_words: int = 0
    engines: list[GroupAccuracy] = field(default_factory=list)
    speakers: list[GroupAccuracy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Device and TFLM agree on every clip and the device features are within one step."""
        d = self.device
        return d is None or (d.same_predictions == d.clips and d.scores_bitexact == d.clips
                             and d.features_max_diff <= 1 and d.features_equal >= 0.99)

    def summary(self) -> list[str]:
        t = self.train
        lines = [f"float accuracy {100 * t.float_accuracy:.1f}%, int8 accuracy (TFLM) "
                 f"{100 * t.int8_accuracy:.1f}%{_ptq_note(t)} on {t.counts['test']} held-out clips"]
        d = self.device
        if d is not None:
            lines.append(f"on-device accuracy (QEMU) {100 * d.device_accuracy:.1f}%; device == TFLM prediction on "
                         f"{d.same_predictions}/{d.clips} clips; device scores bit-exact with TFLM on the device's "
                         f"features for {d.scores_bitexact}/{d.clips}")
            lines.append(f"device MFCC == Python int8 features on {100 * d.features_equal:.2f}% of values, "
                         f"max difference {d.features_max_diff} step(s)")
        c = self.costs
        if c:
            ins = (f"; instructions per window: MFCC {c['mfcc_instructions']:,} + model "
                   f"{c['model_instructions']:,}" if "model_instructions" in c else "")
            lines.append(f"flash {c['flash_bytes']:,} bytes (compiled weights {c['weight_bytes']:,}); peak SRAM "
                         f"{c['static_ram_bytes'] + c['stack_reserved_bytes']:,} bytes (static "
                         f"{c['static_ram_bytes']:,} incl. arena {c['arena_bytes']:,}, stack "
                         f"{c['stack_reserved_bytes']:,} reserved){ins}")
        if self.engines:
            lines.append("held-out accuracy by engine (int8 TFLM, device): "
                         + "; ".join(g.text() for g in self.engines))
            lines.append("held-out accuracy by speaker: " + "; ".join(g.text() for g in self.speakers))
        if self.stream_words:
            lines.append(f"streaming: {self.stream_hits}/{self.stream_words} spoken keywords detected")
        return lines


def _ptq_note(result: Any) -> str:
    """`` (quantization-aware; post-training N%)`` for a QAT result, else nothing."""
    ptq = getattr(result, "ptq_accuracy", None)
    return "" if ptq is None else f" (quantization-aware; post-training {100 * ptq:.1f}%)"


def _device_report(result: Any, data_dir: Path, board: str, project: Path, say: Say,
                   splits: dict[str, Any] | None = None) -> tuple[DeviceEval | None, dict[str, int], Any]:
    if splits is None:
        splits = load_speech_commands(data_dir, seed=SPLIT_SEED)
    test = splits["test"]
    start = time.monotonic()
    compiled = compile_kws(result.tflite, board, project)
    say(f"compiled for {compiled.board.name} ({compiled.board.cpu}) in {time.monotonic() - start:.1f}s -> "
        f"{project}: {len(compiled.graph.ops)} operators, {compiled.macs:,} MACs, arena "
        f"{compiled.plan.arena_bytes:,} bytes")
    say(f"running {len(test)} held-out clips through the firmware (MFCC + model on the device) ...")
    dev = evaluate_on_device(project, Path(result.tflite).read_bytes(), test.audio, test.labels,
                             result.input_scale, result.input_zero_point)
    costs = device_costs(project, compiled, test.audio[0])
    return dev, costs, splits


def _groups(result: Any, data_dir: Path, test: Any, dev: DeviceEval | None) -> tuple[list[GroupAccuracy],
                                                                                   list[GroupAccuracy]]:
    pred = np.array(result.test_predictions)
    if len(pred) != len(test):
        return [], []
    return accuracy_by_group(data_dir, test.files, test.labels, pred,
                             None if dev is None else np.array(dev.device_predictions))


def _device_confusion(result: Any, dev: DeviceEval, test_labels: np.ndarray, out_dir: Path) -> Path:
    cm = confusion_matrix(test_labels, np.array(dev.device_predictions), len(result.labels))
    return plot_confusion(cm, tuple(result.labels), out_dir / "confusion_device.png",
                          f"on device (QEMU), accuracy {100 * dev.device_accuracy:.1f}%")


def train_and_report(*, data: str | None = None, synthetic: bool = False, out_dir: str | None = None,
                     board: str = "mps2-an386", model: str = "ds_cnn_s", epochs: int | None = None,
                     per_tensor: bool = False, dense_per_tensor: bool = False, force: bool = False,
                     seed: int = 0, qat_epochs: int = 0, say: Say = print) -> KwsReport:
    """``tinyml train kws``: train on ``data`` (or synthetic data), quantize, evaluate in TFLM and on ``board``.

    ``qat_epochs`` > 0 adds quantization-aware training (``TrainConfig.qat_epochs``)."""
    if (data is None) == (not synthetic):
        raise InputError("give exactly one of --data DIR (Speech Commands layout) or --synthetic")
    check_seed(seed)
    if model not in MODELS:
        raise InputError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if qat_epochs < 0:
        raise InputError(f"--qat takes a number of epochs (0: off), not {qat_epochs}")
    start = time.monotonic()
    data_dir = Path(data) if data else synthetic_data(say)
    if data and not data_dir.is_dir():
        raise InputError(f"{data}: no such directory; give a folder in the Speech Commands layout "
                         "(download it with tinyml.train.speech_commands.download)")
    cfg = TrainConfig(model=model, per_channel=not per_tensor,
                      dense_per_channel=False if dense_per_tensor else None, seed=seed, qat_epochs=qat_epochs)
    if epochs:
        cfg.epochs = epochs
    out = Path(out_dir) if out_dir else None
    result = trained_model(data_dir, cfg, say=say, force=force, out_dir=out)
    folder = Path(result.tflite).parent
    say(f"float accuracy {100 * result.float_accuracy:.1f}%, int8 accuracy (TFLM) "
        f"{100 * result.int8_accuracy:.1f}%{_ptq_note(result)}; confusion matrix {folder / 'confusion_int8.png'}")
    dev, costs, project = None, {}, None
    if board:
        project = folder / f"firmware-{load_board(board).name}"  # a board file's name, not its path
        dev, costs, splits = _device_report(result, data_dir, board, project, say)
        _device_confusion(result, dev, splits["test"].labels, folder)
    report = KwsReport(train=result, device=dev, costs=costs, project=project,
                       seconds=time.monotonic() - start)
    if board:
        report.engines, report.speakers = _groups(result, data_dir, splits["test"], dev)
    for line in report.summary():
        say(line)
    return report


def _stream_audio(test: Any, per_word: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Held-out keyword clips, 1.25 s apart, with the spans where each word is spoken."""
    pieces, spans, pos = [], [], 0
    gap = 4000
    for k, word in enumerate(LABELS):
        idx = np.nonzero(test.labels == k)[0]
        if word not in KEYWORDS or len(idx) == 0:
            continue
        for i in rng.choice(idx, size=min(per_word, len(idx)), replace=False):
            pieces.append((int(i), word))
    order = rng.permutation(len(pieces))
    audio = []
    for j in order:
        i, word = pieces[j]
        clip = test.audio[i]
        audio.append(clip)
        audio.append(np.zeros(gap, dtype=np.int16))
        spans.append((pos / 16000, (pos + len(clip) + gap) / 16000, word))
        pos += len(clip) + gap
    return np.concatenate(audio), spans


def run_kws_demo(*, board: str = "mps2-an386", words_per_keyword: int = 2, hop_ms: int = 250,
                 smoothing: int = 3, threshold: float = 0.6, retrain: bool = False,
                 say: Say = print) -> KwsReport:
    """``tinyml demo kws``: synthesize, train (cached), compile, stream held-out speech through QEMU."""
    start = time.monotonic()
    brd = load_board(board)  # before the work
    data_dir = synthetic_data(say)
    cfg = TrainConfig(model=DEMO_MODEL, epochs=DEMO_EPOCHS)
    result = trained_model(data_dir, cfg, say=say, force=retrain)
    folder = Path(result.tflite).parent
    project = cache_dir() / f"firmware-{brd.name}"  # a board file's name, not its path
    splits = load_speech_commands(data_dir, seed=SPLIT_SEED)
    dev, costs, _ = _device_report(result, data_dir, board, project, say, splits)
    _device_confusion(result, dev, splits["test"].labels, folder)

    audio, spans = _stream_audio(splits["test"], words_per_keyword, np.random.default_rng(1))
    hop = int(16 * hop_ms)
    say(f"streaming {len(spans)} held-out utterances ({len(audio) / 16000:.1f} s of audio, window 1 s, hop "
        f"{hop_ms} ms, smoothing over {smoothing} windows) through QEMU {board} ...")
    stream = run_stream(project, audio, hop=hop, smoothing=smoothing, threshold=threshold)
    hits = 0
    for d in stream.detections:  # the words spoken in the detection's 1 s window
        heard = [w for a, b, w in spans if a < d.time and b > d.time - 1.0]
        verdict = "correct" if d.label in heard else f"wrong (spoken: {', '.join(heard) or 'nothing'})"
        say(f"  {d.time:6.2f} s  detected '{d.label}' (confidence {d.confidence:.2f})  {verdict}")
    for a, b, w in spans:
        if any(d.label == w and a < d.time < b + 1.0 for d in stream.detections):
            hits += 1
    say(f"QEMU streamed {len(stream.scores)} windows in {stream.seconds:.1f}s")
    report = KwsReport(train=result, device=dev, costs=costs, project=project, seconds=time.monotonic() - start,
                       detections=stream.detections, stream_hits=hits, stream_words=len(spans))
    report.engines, report.speakers = _groups(result, data_dir, splits["test"], dev)
    for line in report.summary():
        say(line)
    say(f"confusion matrices: {folder / 'confusion_int8.png'}, {folder / 'confusion_device.png'}")
    say(f"demo took {report.seconds:.0f}s")
    return report
