"""Train a keyword spotter on a Speech Commands style directory and quantize it to int8.

``train_kws`` loads the splits (``speech_commands.load_speech_commands``),
computes MLPerf Tiny MFCCs (``features.mfcc_batch``), trains a zoo model
with on-the-fly augmentation (time shift and background noise, recomputed
every epoch, as MLPerf Tiny's KWS training does), early stopping on the
validation accuracy and a checkpoint of the best weights, then quantizes it
with full-integer post-training quantization and measures float and int8
(TFLM) accuracy on the held-out test split.  Running the int8 model on a
device is ``tinyml.apps.kws``'s business.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinyml.errors import TinymlError
from tinyml.graph import load_tflite
from tinyml.tools.reference import run_tflm_batch
from tinyml.train import zoo
from tinyml.train.features import MLPERF_KWS, mfcc_batch, quantize_features
from tinyml.train.qat import qat_int8, require_tfmot
from tinyml.train.quantize import quantize_int8
from tinyml.train.speech_commands import LABELS, Split, load_background, load_speech_commands
from tinyml.train.synth import _resample

__all__ = ["TrainConfig", "TrainResult", "MODELS", "build_model", "train_kws", "augment",
           "confusion_matrix", "plot_confusion"]

# The seed of the data split (silence crops, unknown-word subsampling): fixed, so that models trained with
# different TrainConfig.seed values are measured on the same held-out clips.
SPLIT_SEED = 0
MODELS = ("ds_cnn_s", "ds_cnn_m", "ds_cnn_l", "mobilenet_v1", "mobilenet_v2", "resnet8")


@dataclass
class TrainConfig:
    model: str = "ds_cnn_s"
    width: float = 0.25  # MobileNet width multiplier
    dropout: float = 0.1  # DS-CNN: after the first convolution, and twice this before the pooling (MLPerf: 0.2)
    epochs: int = 30
    batch_size: int = 100
    learning_rate: float = 2e-3
    patience: int = 30  # epochs without a better validation accuracy before stopping (30: the whole schedule)
    augment_variants: int = 4  # augmented copies of the training set, computed once and cycled
    time_shift_ms: float = 100.0
    background_probability: float = 0.8
    background_volume: float = 0.1
    # SpecAugment-style masking of the training features, drawn afresh every epoch: up to this many
    # blocks of frames and of MFCC coefficients, each up to the given width, set to the clip's mean.
    # Off by default: 2 time masks and 1 coefficient mask left the demo's DS-CNN-S underfitting
    # (train accuracy 0.80 after 30 epochs) and did not raise held-out accuracy.
    time_masks: int = 0
    time_mask_frames: int = 6
    coefficient_masks: int = 0
    coefficient_mask_width: int = 2
    # Speed perturbation of the training audio (played faster or slower like a tape, so formants and pitch
    # move together, as between speakers of different sizes), drawn per clip and variant: range of factors.
    speed: tuple[float, float] = (1.0, 1.0)
    speed_probability: float = 0.0
    label_smoothing: float = 0.0
    # Weight averaging (SWA-style) over the last ``average_epochs`` epochs of the cosine schedule: the model
    # kept (averaged.keras) is the mean of those epochs' weights, batch-norm statistics included, rather
    # than the best validation checkpoint (best.keras), which is kept when training stops before them.
    # Short runs average over their second half at most.
    average_epochs: int = 10
    mixup: float = 0.0  # alpha of the Beta distribution of mixup (0: off), drawn per clip every epoch
    per_channel: bool = True
    dense_per_channel: bool | None = None  # None: like per_channel
    representative: int = 1000  # training clips (features of the unaugmented audio) for int8 calibration
    max_per_class: int | None = None
    # share of _unknown_ clips in the training split (validation and test keep the standard 10%): the
    # unknown words are the class held-out voices miss most, and synthetic data has unknown clips to spare
    unknown_fraction: float = 0.2
    seed: int = 0  # weights, augmentation and calibration clips (the data split uses SPLIT_SEED)
    # Quantization-aware training (tinyml.train.qat, needs tf-keras and tensorflow-model-optimization): epochs
    # of fine-tuning the kept float model with fake quantization; its int8 model becomes model.tflite and the
    # post-training quantized one model_ptq.tflite.  0: off (post-training quantization only).  The fine-tuning
    # cycles the augmented training features with hard labels (no masks, mixup or label smoothing).
    qat_epochs: int = 0

    def key(self) -> str:
        import hashlib

        d = asdict(self)
        if not d["qat_epochs"]:  # fields added later stay out of the key at their defaults (cached models)
            del d["qat_epochs"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class TrainResult:
    tflite: Path
    keras: Path
    labels: tuple[str, ...]
    input_scale: float
    input_zero_point: int
    float_accuracy: float  # test split, float Keras model
    int8_accuracy: float  # test split, int8 model in TFLM on Python int8 features
    val_accuracy: float
    epochs_run: int
    train_seconds: float
    counts: dict[str, int]
    confusion: list[list[int]] = field(default_factory=list)  # int8 (TFLM), rows: truth
    test_predictions: list[int] = field(default_factory=list)  # int8 (TFLM) argmax per test clip
    # with QAT (TrainConfig.qat_epochs): the accuracy of the post-training quantized model_ptq.tflite; the
    # fields above are model.tflite's, the QAT model's.  None without QAT (and in older result.json files).
    ptq_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tflite"], d["keras"] = str(self.tflite), str(self.keras)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainResult":
        d = dict(d)
        d["tflite"], d["keras"] = Path(d["tflite"]), Path(d["keras"])
        d["labels"] = tuple(d["labels"])
        return cls(**d)


def build_model(cfg: TrainConfig, num_classes: int) -> Any:
    shape = MLPERF_KWS.shape
    if cfg.model.startswith("ds_cnn_"):
        return zoo.ds_cnn_size(cfg.model[-1].upper(), shape, num_classes, seed=cfg.seed, dropout=cfg.dropout)
    if cfg.model == "mobilenet_v1":
        return zoo.mobilenet_v1(shape, cfg.width, num_classes, seed=cfg.seed)
    if cfg.model == "mobilenet_v2":
        return zoo.mobilenet_v2(shape, cfg.width, num_classes, seed=cfg.seed)
    if cfg.model == "resnet8":
        return zoo.resnet8(shape, num_classes, seed=cfg.seed)
    raise TinymlError(f"unknown keyword-spotting model {cfg.model!r}; choose one of {', '.join(MODELS)}")


def augment(audio: np.ndarray, noises: list[np.ndarray], rng: np.random.Generator,
            cfg: TrainConfig) -> np.ndarray:
    """MLPerf Tiny's training augmentation: time shift, then background noise at a random volume (and, when
    ``cfg.speed_probability`` is set, a speed perturbation first)."""
    n, length = audio.shape
    x = audio.astype(np.float32) / 32768.0
    if cfg.speed_probability > 0:
        for i in np.nonzero(rng.random(n) < cfg.speed_probability)[0]:
            x[i] = change_speed(x[i], float(rng.uniform(*cfg.speed)))
    shift = int(cfg.time_shift_ms * 16)
    if shift:
        out = np.zeros_like(x)
        offsets = rng.integers(-shift, shift + 1, n)
        for i, o in enumerate(offsets):
            if o >= 0:
                out[i, o:] = x[i, : length - o]
            else:
                out[i, :o] = x[i, -o:]
        x = out
    if noises:
        use = rng.random(n) < cfg.background_probability
        for i in np.nonzero(use)[0]:
            noise = noises[int(rng.integers(len(noises)))]
            start = int(rng.integers(0, len(noise) - length + 1))
            x[i] += noise[start:start + length].astype(np.float32) / 32768.0 * rng.uniform(0, cfg.background_volume)
        x = np.clip(x, -1.0, 1.0)
    return x


def change_speed(clip: np.ndarray, factor: float) -> np.ndarray:
    """``clip`` played ``factor`` times faster (band-limited FFT resampling, as the synthesizer's speed
    change), cut or zero-padded back to its length around its centre."""
    n = len(clip)
    y = _resample(clip, int(round(16000 * factor)))
    m = len(y)
    if m >= n:
        start = (m - n) // 2
        return y[start:start + n].astype(clip.dtype)
    pad = (n - m) // 2
    return np.concatenate([np.zeros(pad), y, np.zeros(n - m - pad)]).astype(clip.dtype)


def mixup(x: np.ndarray, y: np.ndarray, num_classes: int, alpha: float, rng: np.random.Generator,
          smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018) of a training set: every example is blended with a random other one, with
    a Beta(alpha, alpha) weight for the features and for the (optionally smoothed) one-hot labels."""
    onehot = np.eye(num_classes, dtype=np.float32)[y] * (1 - smoothing) + smoothing / num_classes
    if alpha <= 0:
        return x, onehot
    lam = rng.beta(alpha, alpha, len(x)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)  # the clip keeps its own label dominant
    other = rng.permutation(len(x))
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (lam.reshape(shape) * x + (1 - lam.reshape(shape)) * x[other]).astype(x.dtype), \
        lam[:, None] * onehot + (1 - lam[:, None]) * onehot[other]


def spec_mask(x: np.ndarray, rng: np.random.Generator, cfg: TrainConfig) -> np.ndarray:
    """SpecAugment-style masks on MFCC features (N, frames, coefficients[, 1]): blocks of frames and of
    coefficients replaced by the clip's mean of each coefficient."""
    out = x.copy()
    n, frames, coefs = x.shape[:3]
    mean = x.mean(axis=1, keepdims=True)
    for axis, count, width, size in ((1, cfg.time_masks, cfg.time_mask_frames, frames),
                                     (2, cfg.coefficient_masks, cfg.coefficient_mask_width, coefs)):
        for _ in range(count):
            w = rng.integers(0, width + 1, n)
            start = rng.integers(0, size, n)
            idx = np.arange(size)
            mask = (idx[None, :] >= start[:, None]) & (idx[None, :] < (start + w)[:, None])  # (n, size)
            if axis == 1:
                m = mask[:, :, None].reshape((n, frames, 1) + (1,) * (x.ndim - 3))
            else:
                m = mask[:, None, :].reshape((n, 1, coefs) + (1,) * (x.ndim - 3))
            out = np.where(m, np.broadcast_to(mean, out.shape), out)
    return out.astype(x.dtype)


class WeightAverage:
    """Running mean of a model's weight lists (``model.get_weights()``), in float64."""

    def __init__(self) -> None:
        self.count = 0
        self._sum: list[np.ndarray] = []
        self._dtypes: list[np.dtype] = []

    def add(self, weights: list[np.ndarray]) -> None:
        if not self.count:
            self._sum = [np.asarray(w, dtype=np.float64).copy() for w in weights]
            self._dtypes = [np.asarray(w).dtype for w in weights]
        else:
            if len(weights) != len(self._sum):
                raise ValueError(f"{len(weights)} weight arrays where the average has {len(self._sum)}")
            for acc, w in zip(self._sum, weights):
                acc += w
        self.count += 1

    def mean(self) -> list[np.ndarray]:
        return [(acc / self.count).astype(dt) for acc, dt in zip(self._sum, self._dtypes)]


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(truth), np.asarray(pred)), 1)
    return m


def plot_confusion(matrix: np.ndarray, labels: tuple[str, ...], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = matrix.max() or 1
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                        color="white" if matrix[i, j] > top / 2 else "black", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _progress_callback(keras: Any, total_batches: int, epoch: int, epochs: int, enabled: bool) -> Any:
    from tqdm import tqdm

    class Bar(keras.callbacks.Callback):
        def on_epoch_begin(self, e: int, logs: Any = None) -> None:
            self.bar = tqdm(total=total_batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                            leave=False, disable=None if enabled else True, dynamic_ncols=True)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.bar.update(1)
            if logs and "accuracy" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}", acc=f"{float(logs['accuracy']):.3f}")

        def on_epoch_end(self, e: int, logs: Any = None) -> None:
            self.bar.close()

    return Bar()


def train_kws(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    cfg: TrainConfig | None = None,
    *,
    say: Callable[[str], None] = print,
    progress_bar: bool = True,
    splits: dict[str, Split] | None = None,
) -> TrainResult:
    """Train, checkpoint, quantize and evaluate; artifacts go to ``out_dir``.

    ``out_dir`` receives ``best.keras`` (checkpoint of the best validation
    accuracy), ``model.tflite`` (int8 in and out), ``history.json``,
    ``result.json`` and ``confusion_int8.png``; with ``cfg.qat_epochs``,
    ``model.tflite`` is the quantization-aware trained model and
    ``model_ptq.tflite`` the post-training quantized one.
    """
    cfg = cfg or TrainConfig()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as e:
        raise TinymlError(f"training needs TensorFlow ({e}); install it with: pip install "
                          "'tinyml-toolchain[train]'") from None
    if cfg.qat_epochs < 0:
        raise TinymlError(f"qat_epochs must be 0 (off) or a number of epochs, not {cfg.qat_epochs}")
    if cfg.qat_epochs:
        require_tfmot()  # before training: a missing install is reported at once, not after the float training
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    if splits is None:
        splits = load_speech_commands(data_dir, max_per_class=cfg.max_per_class, seed=SPLIT_SEED,
                                      train_unknown_fraction=cfg.unknown_fraction)
    for name in ("train", "validation", "test"):
        if len(splits[name]) == 0:
            raise TinymlError(f"{data_dir}: the {name} split is empty; list clips in "
                              f"{'validation_list.txt' if name == 'validation' else 'testing_list.txt'} "
                              "or add clips" if name != "train" else f"{data_dir}: no training clips")
    counts = {k: len(v) for k, v in splits.items()}
    say(f"data: {counts['train']} train, {counts['validation']} validation, {counts['test']} test clips "
        f"({len(LABELS)} classes)")
    noises = load_background(data_dir)
    rng = np.random.default_rng(cfg.seed)
    x_val = mfcc_batch(splits["validation"].audio)
    x_test = mfcc_batch(splits["test"].audio)
    y_train, y_val, y_test = (splits[k].labels for k in ("train", "validation", "test"))

    model = build_model(cfg, len(LABELS))
    steps = int(np.ceil(counts["train"] / cfg.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps * cfg.epochs,
                                                      alpha=0.05)
    soft = cfg.mixup > 0 or cfg.label_smoothing > 0  # one-hot (soft) targets
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="categorical_crossentropy" if soft else "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    best_path = out / "best.keras"
    best_acc, best_epoch, history = -1.0, -1, []
    variants: list[np.ndarray] = []
    averaged = WeightAverage()
    window = max(0, min(cfg.average_epochs, cfg.epochs // 2))  # at most the second half of the schedule
    for epoch in range(cfg.epochs):
        t0 = time.monotonic()
        if len(variants) < max(1, cfg.augment_variants):
            variants.append(mfcc_batch(augment(splits["train"].audio, noises, rng, cfg), dtype=np.float32))
        x_train = variants[epoch % len(variants)]
        if cfg.time_masks or cfg.coefficient_masks:
            x_train = spec_mask(x_train, rng, cfg)
        targets = y_train
        if soft:
            x_train, targets = mixup(x_train, y_train, len(LABELS), cfg.mixup, rng, cfg.label_smoothing)
        h = model.fit(x_train, targets, batch_size=cfg.batch_size, epochs=1, verbose=0, shuffle=True,
                      callbacks=[_progress_callback(keras, steps, epoch, cfg.epochs, progress_bar)])
        val_acc = float(np.mean(np.argmax(model.predict(x_val, verbose=0, batch_size=256), 1) == y_val))
        loss, acc = float(h.history["loss"][-1]), float(h.history["accuracy"][-1])
        history.append(dict(epoch=epoch + 1, loss=loss, accuracy=acc, val_accuracy=val_acc,
                            seconds=time.monotonic() - t0))
        mark = ""
        if val_acc > best_acc:
            best_acc, best_epoch, mark = val_acc, epoch, "  (best, checkpointed)"
            model.save(best_path)
        if window and epoch >= cfg.epochs - window:
            averaged.add(model.get_weights())
            mark += f"  (averaged, {averaged.count}/{window})"
        say(f"epoch {epoch + 1:2d}/{cfg.epochs}: loss {loss:.3f}, train accuracy {acc:.3f}, "
            f"validation accuracy {val_acc:.3f}, {time.monotonic() - t0:.1f}s{mark}")
        if epoch - best_epoch >= cfg.patience or (best_acc >= 1.0 and epoch - best_epoch >= 2):
            say(f"early stop: no better validation accuracy for {epoch - best_epoch} epochs")
            break
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    kept = best_path  # the best checkpoint, unless the run reached the averaging epochs
    if averaged.count:
        model.set_weights(averaged.mean())
        best_acc = float(np.mean(np.argmax(model.predict(x_val, verbose=0, batch_size=256), 1) == y_val))
        say(f"weights averaged over the last {averaged.count} epochs: validation accuracy {best_acc:.3f}")
        kept = out / "averaged.keras"
        model.save(kept)
    model = keras.models.load_model(kept)
    float_pred = np.argmax(model.predict(x_test, verbose=0, batch_size=256), 1)
    float_acc = float(np.mean(float_pred == y_test))

    rep_idx = rng.permutation(counts["train"])[: cfg.representative]
    rep = mfcc_batch(splits["train"].audio[rep_idx])
    say(f"quantizing to int8 with {len(rep)} representative clips "
        f"({'per-channel' if cfg.per_channel else 'per-tensor'} weights) ...")
    tflite = quantize_int8(model, rep, per_channel=cfg.per_channel, dense_per_channel=cfg.dense_per_channel)

    def tflm_predictions(flatbuffer: bytes) -> np.ndarray:
        q_test = quantize_features(x_test, *tflite_input_quant(flatbuffer))
        return np.array([int(np.argmax(o[0])) for o in run_tflm_batch(flatbuffer, [[q] for q in q_test])])

    ptq_acc = None
    if cfg.qat_epochs:  # fine-tune the kept model with fake quantization; its int8 model replaces PTQ's
        (out / "model_ptq.tflite").write_bytes(tflite)
        ptq_acc = float(np.mean(tflm_predictions(tflite) == y_test))
        say(f"post-training int8 accuracy (TFLM) {100 * ptq_acc:.1f}% (model_ptq.tflite); quantization-aware "
            f"training for {cfg.qat_epochs} epoch(s) ...")
        tflite = qat_int8(model, variants, y_train, rep, epochs=cfg.qat_epochs, batch_size=cfg.batch_size,
                          learning_rate=cfg.learning_rate * 0.05,  # where the cosine schedule ended
                          x_val=x_val, y_val=y_val, per_channel=cfg.per_channel, seed=cfg.seed, say=say)
    else:
        (out / "model_ptq.tflite").unlink(missing_ok=True)  # from an earlier QAT run into the same folder
    tfl_path = out / "model.tflite"
    tfl_path.write_bytes(tflite)
    scale, zp = tflite_input_quant(tflite)
    int8_pred = tflm_predictions(tflite)
    int8_acc = float(np.mean(int8_pred == y_test))
    if ptq_acc is not None:
        say(f"quantization-aware int8 accuracy (TFLM) {100 * int8_acc:.1f}%, post-training "
            f"{100 * ptq_acc:.1f}% (float {100 * float_acc:.1f}%)")
    cm = confusion_matrix(y_test, int8_pred, len(LABELS))
    plot_confusion(cm, LABELS, out / "confusion_int8.png",
                   f"{cfg.model} int8{' QAT' if cfg.qat_epochs else ''} (TFLM), test accuracy {100 * int8_acc:.1f}%")
    result = TrainResult(
        tflite=tfl_path, keras=kept, labels=LABELS, input_scale=scale, input_zero_point=zp,
        float_accuracy=float_acc, int8_accuracy=int8_acc, val_accuracy=best_acc,
        epochs_run=len(history), train_seconds=time.monotonic() - start, counts=counts,
        confusion=cm.tolist(), test_predictions=int8_pred.tolist(), ptq_accuracy=ptq_acc,
    )
    (out / "result.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return result


def tflite_input_quant(tflite: bytes) -> tuple[float, int]:
    """Scale and zero point of input 0 of an int8 ``.tflite`` (via tinyml's own importer)."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(tflite)
        f.flush()
        g = load_tflite(f.name)
    q = g.tensors[g.inputs[0]].quant
    if q is None or g.tensors[g.inputs[0]].dtype != "int8":
        raise TinymlError("the quantized model's input is not int8; quantize with io_dtype='int8'")
    return float(q.s), int(q.zp)
