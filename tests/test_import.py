"""Importer: valid models, old-converter files, malformed files, and a fuzz test."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases, zoo_cases
from tests.tflite_edit import as_old_converter, edit_model, replace_operator
from tinyml.codegen.render import render_model
from tinyml.compiler import lower_graph
from tinyml.errors import ModelError, TinymlError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.schedule import plan_memory
from tinyml.tools.inspect import inspect_graph


def _conv_model() -> bytes:
    return build(op_cases("CONV_2D")[8])


def test_parse_conv_model() -> None:
    g = parse_tflite(_conv_model(), name="m")
    kinds = [op.kind for op in g.ops]
    assert "CONV_2D" in kinds
    conv = g.ops[kinds.index("CONV_2D")]
    w = g.tensors[conv.inputs[1]]
    assert w.is_const and w.dtype == "int8" and w.quant is not None and w.quant.per_channel
    assert w.data.shape == w.shape
    assert g.tensors[g.inputs[0]].dtype == "int8"
    assert conv.options["padding"] in ("SAME", "VALID")


def test_old_converter_file_is_bit_exact(tmp_path) -> None:
    model = build(zoo_cases("ds_cnn")[0])
    old = as_old_converter(model)
    g_new, g_old = parse_tflite(model), parse_tflite(old)
    assert [o.kind for o in g_new.ops] == [o.kind for o in g_old.ops]
    assert_bitexact(old, tmp_path, samples=3)


@pytest.mark.parametrize("data, needle", [
    (b"", "too short"),
    (b"\x00" * 4 + b"XXXX" + b"\x00" * 64, "not a TensorFlow Lite flatbuffer"),
])
def test_garbage_is_rejected(data: bytes, needle: str) -> None:
    with pytest.raises(ModelError, match=needle):
        parse_tflite(data, source="bad.tflite")


def test_truncated_file_is_rejected() -> None:
    model = _conv_model()
    for cut in (16, 64, len(model) // 2, len(model) - 8):
        with pytest.raises(ModelError):
            g = parse_tflite(model[:cut], source="cut.tflite")
            lower_graph(g)


def test_unsupported_operator_is_named() -> None:
    model = _conv_model()
    g = parse_tflite(model)
    idx = [o.kind for o in g.ops].index("CONV_2D")
    bad = replace_operator(model, idx, "DIV")
    with pytest.raises(UnsupportedError) as e:
        lower_graph(parse_tflite(bad))
    msg = str(e.value)
    assert f"operator {idx} is DIV" in msg and "CONV_2D" in msg and "supported operators" in msg


def test_float_model_is_rejected() -> None:
    model = _conv_model()

    def to_float(m, s) -> None:
        # Make every activation float32 (as in an unquantized model).
        sg = m.subgraphs[0]
        for t in sg.tensors:
            if m.buffers[t.buffer].data is None or len(m.buffers[t.buffer].data) == 0:
                t.type = s.TensorType.FLOAT32
                t.quantization = None

    g = parse_tflite(edit_model(model, to_float))
    with pytest.raises(ModelError, match="not an int8 or float32 model"):
        lower_graph(g)


def _mutations(model: bytes, rng: np.random.Generator, n: int):
    size = len(model)
    words = [0, 1, 0x7F, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000, size, size - 4, size + 4]
    for i in range(n):
        b = bytearray(model)
        kind = i % 4
        if kind == 0:  # truncation
            b = b[: int(rng.integers(0, size))]
        elif kind == 1:  # flipped bits
            for _ in range(int(rng.integers(1, 9))):
                pos = int(rng.integers(0, size))
                b[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:  # out-of-range offsets, indices and lengths
            for _ in range(int(rng.integers(1, 4))):
                pos = int(rng.integers(0, size - 4)) & ~3
                w = words[int(rng.integers(0, len(words)))]
                b[pos:pos + 4] = int(w).to_bytes(4, "little")
        else:  # random bytes over a stretch
            pos = int(rng.integers(0, size))
            ln = int(rng.integers(1, 32))
            b[pos:pos + ln] = rng.integers(0, 256, size=min(ln, size - pos), dtype=np.uint8).tobytes()
        yield bytes(b)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - only on a hang
    raise _Timeout()


@pytest.mark.slow
def test_fuzz_mutated_models_never_crash_or_hang() -> None:
    """4,000 byte-level mutations (10,000 in the long run, ``make fuzz``): every one is accepted or
    rejected with a TinymlError, and inspect reports on every 400th that imports without raising."""
    total = 10_000 if os.environ.get("TINYML_FUZZ_LONG") else 4_000
    seeds = [zoo_cases("ds_cnn")[0], op_cases("CONV_2D")[8], op_cases("FULLY_CONNECTED")[0]]
    models = [build(c) for c in seeds]
    rng = np.random.default_rng(1234)
    accepted = rejected = 0
    slowest = 0.0
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for k, model in enumerate(models):
            count = total // len(models) + (1 if k < total % len(models) else 0)
            for i, mutated in enumerate(_mutations(model, rng, count)):
                start = time.monotonic()
                signal.setitimer(signal.ITIMER_REAL, 10.0)
                try:
                    g = parse_tflite(mutated, source="fuzz.tflite")
                    if i % 400 == 0:  # inspect shows any model that imports, compilable or not
                        inspect_graph(g)
                    calls = lower_graph(g)
                    plan = plan_memory(g)
                    if i % 50 == 0:
                        render_model(g, calls, plan)
                    accepted += 1
                except TinymlError as e:
                    assert "\n" not in str(e)
                    rejected += 1
                except _Timeout:
                    pytest.fail(f"model {k} mutation {i} hung the importer")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                slowest = max(slowest, time.monotonic() - start)
    finally:
        signal.signal(signal.SIGALRM, old)
    assert accepted + rejected == total
    assert rejected > total // 10  # the mutations really break files
    assert slowest < 5.0
    print(f"fuzz: {accepted} accepted, {rejected} rejected, slowest {slowest * 1000:.0f} ms")



def test_names_from_the_model_do_not_reach_the_c(tmp_path) -> None:
    """A tensor's name ends up in a comment of model.c: one that would close the comment (and inject C) is
    defused, and the model compiles and runs bit-exact."""
    from tests.tflite_edit import craft_model

    rng = np.random.default_rng(0)
    q = dict(scale=[0.1], zero_point=[0])
    tensors = [dict(name="x", shape=[1, 8], type="INT8", **q),
               dict(name="w */ #error injected /*\n", shape=[4, 8], type="INT8",
                    data=rng.integers(-9, 9, (4, 8), np.int8), scale=[0.01], zero_point=[0]),
               dict(name="y", shape=[1, 4], type="INT8", **q)]
    model = craft_model(tensors, [("FULLY_CONNECTED", [0, 1, -1], [2], ("FullyConnectedOptions", {}))],
                        inputs=[0], outputs=[2])
    assert_bitexact(model, tmp_path, samples=2)
