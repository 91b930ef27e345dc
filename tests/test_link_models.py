"""Two models in one user firmware (issue 18): linkable output and every export format.

A DS-CNN keyword spotter ("kws", caller-owned arena) and ResNet-8 ("ic", its static arena) are
compiled separately, then linked with a user's main.c (fixtures/two_models/main.c) into ONE
firmware, with the board's start-up code and linker script taken from a generated project, and
run on mps2-an386 under QEMU: both outputs bit-exact against TFLM.  That is done once per
``--format``: the two project directories, the two ``library`` exports, the two ``static-lib``
archives (built by tinyml with arm-none-eabi-gcc/ar), and the two ``cmake`` targets added with
add_subdirectory to a user's CMake project (Debian's cmake, the export's toolchain file).  On the
host (gcc with ASan and UBSan) the same main.c runs both models with caller-owned arenas sharing
one buffer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.modelgen import build, cache_path, zoo_cases
from tinyml.boards import Board, load_board
from tinyml.cli import main as cli_main
from tinyml.codegen.render import Storage
from tinyml.compiler import Compiled, build_model, compile_model
from tinyml.targets.build import build_project
from tinyml.targets.qemu import qemu_command

MAIN = Path(__file__).parent / "fixtures" / "two_models" / "main.c"
BOARD = "mps2-an386"
SAMPLES = 2
CALLER = Storage(arena="caller")
MODELS = {"kws": "ds_cnn", "ic": "resnet8"}


def zoo(name: str) -> Path:
    c = zoo_cases(name)[0]
    build(c)
    return cache_path(c)


def compile_two(root: Path, board: str, fmt: str, ic_storage: Storage = Storage()) -> dict[str, Compiled]:
    """kws (caller-owned arena) and ic, each compiled into its own directory below ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    storages = {"kws": CALLER, "ic": ic_storage}
    return {name: compile_model(zoo(model), board, root / name, name=name, storage=storages[name], fmt=fmt)
            for name, model in MODELS.items()}


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple[list, list]]:
    """Per model: random input samples and TFLM's outputs for them (computed once)."""
    from tinyml.graph import load_tflite
    from tinyml.tools.reference import run_tflm_batch
    from tinyml.tools.verify import random_inputs

    out = {}
    for seed, (name, model) in enumerate(MODELS.items()):
        xs = random_inputs(load_tflite(zoo(model), name=name), SAMPLES, seed)
        out[name] = (xs, run_tflm_batch(zoo(model).read_bytes(), xs))
    return out


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Compiled]:
    """The two models as firmware projects for the board (their runtime and linker.ld serve every format)."""
    root = tmp_path_factory.mktemp("projects")
    compiled = compile_two(root, BOARD, "project")
    compiled["root"] = root  # type: ignore[assignment]
    return compiled


def firmware_flags(board: Board, runtime: Path, linker: Path | None) -> tuple[list[str], list[str]]:
    """The compile and link flags of a user's build (the generated Makefile's, spelt out)."""
    cflags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{runtime}", *board.cflags]
    if not board.is_arm:
        return cflags, [*board.ldflags, "-lm"]
    cflags += ["-ffunction-sections", "-fdata-sections"]
    return cflags, ["-T", str(linker), "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
                    "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", *board.ldflags, "-lm"]


def link_firmware(board: Board, root: Path, runtime: Path, sources: list[Path], includes: list[Path],
                  archives: tuple[Path, ...] = (), linker: Path | None = None) -> Path:
    """Compile main.c, ``sources`` and the runtime (numbered objects: two model.c do not collide) and
    link them with ``archives`` into root/firmware[.elf]."""
    shutil.copy(MAIN, root / "main.c")
    cflags, ldflags = firmware_flags(board, runtime, linker)
    cflags += [f"-I{d}" for d in includes]
    objects = []
    for i, source in enumerate([root / "main.c", *sources, *sorted(runtime.glob("*.c"))]):
        obj = root / "obj" / f"{i}_{source.stem}.o"
        obj.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([board.cc, *cflags, "-c", str(source), "-o", str(obj)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        objects.append(obj)
    elf = root / ("firmware.elf" if board.is_arm else "firmware")
    proc = subprocess.run([board.cc, *cflags, *map(str, objects), *map(str, archives), *ldflags, "-o", str(elf)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return elf


def run_and_compare(board: Board, elf: Path, reference: dict[str, tuple[list, list]],
                    models: dict[str, Compiled]) -> None:
    """Run the firmware on both models' samples; every output must equal TFLM's."""
    from tinyml.tools.verify import pack_samples, unpack_outputs

    work = elf.parent / "run"
    work.mkdir()
    for name, (xs, _) in reference.items():
        (work / f"{name}_in.bin").write_bytes(pack_samples(models[name].graph, xs))
    command = qemu_command(board, elf) if board.kind == "qemu" else [str(elf)]
    proc = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, (_, ref) in reference.items():
        ours = unpack_outputs(models[name].graph, (work / f"{name}_out.bin").read_bytes(), SAMPLES)
        for a, b in zip(ours, ref):
            assert [x.tobytes() for x in a] == [np.asarray(y).tobytes() for y in b], name


# ---------------------------------------------------------------- part 1: linkable output


@pytest.mark.qemu
def test_two_projects_in_one_firmware_on_qemu(projects: dict, reference: dict, tmp_path: Path) -> None:
    """DS-CNN with a caller-owned arena and ResNet-8 with its static arena, in one mps2-an386 firmware."""
    board, root = load_board(BOARD), projects["root"]
    runtime = root / "kws" / "runtime"
    elf = link_firmware(board, tmp_path, runtime, [root / "kws" / "model.c", root / "ic" / "model.c"], [root],
                        linker=root / "kws" / "linker.ld")
    symbols = subprocess.run([board.binutil("nm"), str(elf)], capture_output=True, text=True, check=True).stdout
    assert " b ic_memory" in symbols and "kws_memory" not in symbols  # only ic has a static arena
    run_and_compare(board, elf, reference, projects)


@pytest.mark.qemu
def test_generated_mains_give_a_caller_arena(projects: dict, reference: dict) -> None:
    """The project's own main.c (semihosting) and host-link main build with --arena caller; the
    semihosting firmware runs bit-exact (projects["kws"] is compiled with a caller-owned arena)."""
    from tinyml.targets import run_project
    from tinyml.targets.build import build_hostlink
    from tinyml.tools.verify import pack_samples, unpack_outputs

    kws, root = projects["kws"], projects["root"] / "kws"
    assert "kws_init(arena, sizeof arena)" in (root / "main.c").read_text()
    assert build_hostlink(root).is_file()
    xs, ref = reference["kws"]
    result = run_project(root, pack_samples(kws.graph, xs))
    assert "arena used" in result.console
    for a, b in zip(unpack_outputs(kws.graph, result.output, SAMPLES), ref):
        assert [x.tobytes() for x in a] == [np.asarray(y).tobytes() for y in b]


@pytest.mark.slow
def test_two_models_share_one_arena_on_host(tmp_path: Path, reference: dict) -> None:
    """Both models with caller-owned arenas on the host, one buffer for both, under ASan and UBSan."""
    board = load_board("host")
    models = compile_two(tmp_path / "models", board.name, "project", CALLER)
    root = tmp_path / "models"
    elf = link_firmware(board, tmp_path, root / "kws" / "runtime", [root / "kws" / "model.c", root / "ic" / "model.c"],
                        [root])
    run_and_compare(board, elf, reference, models)


def test_a_model_defines_only_its_api(tmp_path: Path) -> None:
    """Every external symbol of a generated model.c is NAME_*: the kernels are static."""
    for name, model in MODELS.items():
        files = build_model(zoo(model), "host", name=name).files
        (tmp_path / name).mkdir()
        for f in ("model.c", "model.h", "tml_kernels.h", "tml_qmath.h", "tml_fixedpoint.h"):
            (tmp_path / name / f).write_text(str(files[f]))
        obj = tmp_path / f"{name}.o"
        subprocess.run(["cc", "-std=c99", "-O2", "-c", str(tmp_path / name / "model.c"), "-o", str(obj)], check=True)
        defined = subprocess.run(["nm", "-g", "--defined-only", str(obj)], capture_output=True, text=True,
                                 check=True).stdout.split()[2::3]
        assert defined and all(s.startswith(f"{name}_") for s in defined), defined


def test_sections_reach_the_object_and_the_linker_script(tmp_path: Path) -> None:
    storage = Storage(weights_section=".ext_flash", arena_section=".dtcm_bss")
    compile_model(zoo("ds_cnn"), BOARD, tmp_path / "p", name="kws", storage=storage)
    linker = (tmp_path / "p" / "linker.ld").read_text()
    assert "*(.ext_flash)" in linker and "*(.dtcm_bss)" in linker
    elf = build_project(tmp_path / "p")
    board = load_board(BOARD)
    headers = subprocess.run([board.binutil("objdump"), "-h", str(tmp_path / "p" / "build" / "obj" / "model.o")],
                             capture_output=True, text=True, check=True).stdout
    sizes = {line.split()[1]: int(line.split()[2], 16) for line in headers.splitlines()
             if line.strip()[:1].isdigit()}
    assert sizes[".ext_flash"] > 30_000 and sizes[".dtcm_bss"] > 8_448  # the weights; the arena and canaries
    symbols = dict(reversed(line.split()[::2]) for line in subprocess.run(
        [board.binutil("nm"), str(elf)], capture_output=True, text=True, check=True).stdout.splitlines())
    assert int(symbols["kws_memory"], 16) >= board.ram_origin  # linker.ld put the arena section in RAM
    # the project's .bin and .hex hold the same image, which starts with the vector table
    build = elf.parent
    image = (build / "firmware.bin").read_bytes()
    subprocess.run([board.binutil("objcopy"), "-I", "ihex", "-O", "binary", str(build / "firmware.hex"),
                    str(build / "from-hex.bin")], check=True)
    subprocess.run([board.binutil("objcopy"), "-O", "binary", "--only-section=.vectors", str(elf),
                    str(build / "vectors.bin")], check=True)
    assert image == (build / "from-hex.bin").read_bytes() and len(image) > sizes[".ext_flash"]
    assert image.startswith((build / "vectors.bin").read_bytes())


@pytest.mark.parametrize("args, message", [
    (["--weights-section", "1bad"], "is not a section name"),
    (["--arena-section", ".dtcm bss"], "is not a section name"),
    (["--weights-section", ".rodata.w"], "toolchain's own sections"),
    (["--arena", "caller", "--arena-section", ".dtcm"], "firmware owns the arena"),
    (["--kws", "--arena", "caller"], "leave out --format, --arena"),
    (["--arena", "heap"], "invalid choice"),
    (["--kws", "--format", "library"], "leave out --format"),
    (["--format", "zip"], "invalid choice"),
])
def test_bad_storage_options_are_one_line(args: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["compile", str(zoo("ds_cnn")), "-b", BOARD, "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def cli(args: list[str]) -> int:
    """tinyml's exit code, also when argparse ends the program."""
    try:
        return cli_main(args)
    except SystemExit as e:
        return int(e.code or 0)


# ---------------------------------------------------------------- part 2: export formats


@pytest.mark.qemu
def test_library_exports_in_one_firmware(projects: dict, reference: dict, tmp_path: Path) -> None:
    """--format library: sources and headers, built by the user's own commands with the README's flags."""
    models = compile_two(tmp_path / "libs", BOARD, "library")
    libs = tmp_path / "libs"
    readme = (libs / "kws" / "README.md").read_text()
    assert "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16" in readme and "src/model.c" in readme
    assert "runs DSP kernels" in readme and "--arena caller" in readme
    assert sorted(p.relative_to(libs / "ic").as_posix() for p in (libs / "ic").rglob("*") if p.is_file()) == [
        "README.md", "include/ic/model.h", "project.json", "src/model.c", "src/tml_fixedpoint.h",
        "src/tml_kernels.h", "src/tml_qmath.h"]
    root, board = projects["root"], load_board(BOARD)
    elf = link_firmware(board, tmp_path, root / "kws" / "runtime", [libs / "kws" / "src" / "model.c",
                        libs / "ic" / "src" / "model.c"], [libs / "kws" / "include", libs / "ic" / "include"],
                        linker=root / "kws" / "linker.ld")
    run_and_compare(board, elf, reference, models)


@pytest.mark.qemu
def test_static_lib_exports_in_one_firmware(projects: dict, reference: dict, tmp_path: Path) -> None:
    """--format static-lib: libkws.a and libic.a, built by tinyml for the Cortex-M4, linked by the user."""
    models = compile_two(tmp_path / "libs", BOARD, "static-lib")
    libs = tmp_path / "libs"
    assert not (libs / "kws" / "src").exists() and (libs / "ic" / "include" / "ic" / "model.h").is_file()
    board, root = load_board(BOARD), projects["root"]
    members = subprocess.run([board.binutil("objdump"), "-f", str(libs / "kws" / "libkws.a")], capture_output=True,
                             text=True, check=True).stdout
    assert "armv7e-m" in members
    elf = link_firmware(board, tmp_path, root / "kws" / "runtime", [],
                        [libs / "kws" / "include", libs / "ic" / "include"],
                        archives=(libs / "kws" / "libkws.a", libs / "ic" / "libic.a"), linker=root / "kws" / "linker.ld")
    run_and_compare(board, elf, reference, models)


USER_CMAKE = """cmake_minimum_required(VERSION 3.13)
project(two_models C)
add_subdirectory(models/kws)
add_subdirectory(models/ic)
add_executable(firmware.elf main.c {runtime})
target_include_directories(firmware.elf PRIVATE {runtime_dir})
target_compile_options(firmware.elf PRIVATE -Wall -Wextra -Werror)
target_link_libraries(firmware.elf PRIVATE kws ic m)
target_link_options(firmware.elf PRIVATE -T {linker} -nostartfiles -Wl,--gc-sections -Wl,--no-warn-rwx-segments)
"""


@pytest.mark.qemu
@pytest.mark.slow
def test_cmake_exports_in_one_firmware(projects: dict, reference: dict, tmp_path: Path) -> None:
    """--format cmake: two targets added with add_subdirectory to a user's CMake project, built with the
    export's toolchain file (arm-none-eabi-gcc); and the export's own example builds."""
    if shutil.which("cmake") is None:
        pytest.fail("cmake is missing: apt-get install cmake (make system-deps)")
    models = compile_two(tmp_path / "models", BOARD, "cmake")
    root, board = projects["root"], load_board(BOARD)
    runtime = root / "kws" / "runtime"
    shutil.copy(MAIN, tmp_path / "main.c")
    (tmp_path / "CMakeLists.txt").write_text(USER_CMAKE.format(
        runtime=" ".join(p.as_posix() for p in sorted(runtime.glob("*.c"))), runtime_dir=runtime.as_posix(),
        linker=(root / "kws" / "linker.ld").as_posix()))
    toolchain = tmp_path / "models" / "kws" / "example" / "arm-none-eabi.cmake"
    example = tmp_path / "models" / "ic" / "example"
    for source, build_dir, extra in ((tmp_path, tmp_path / "build", [f"-DCMAKE_TOOLCHAIN_FILE={toolchain}"]),
                                     (example, tmp_path / "example-build", [])):
        for step in (["cmake", "-S", str(source), "-B", str(build_dir), *extra], ["cmake", "--build", str(build_dir)]):
            proc = subprocess.run(step, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "example-build" / "ic" / "libic.a").is_file()
    run_and_compare(board, tmp_path / "build" / "firmware.elf", reference, models)


def test_exports_keep_the_output_directory_safe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every format refuses a non-empty directory that tinyml did not make, and replaces its own."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for fmt in ("library", "cmake", "static-lib"):
        assert cli_main(["compile", str(zoo("ds_cnn")), "-b", BOARD, "-o", str(out), "--format", fmt]) == 2
        assert "is not a tinyml project" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"
    other = tmp_path / "lib"
    for fmt in ("library", "static-lib", "cmake"):  # each replaces the previous export whole
        assert cli_main(["compile", str(zoo("ds_cnn")), "-b", BOARD, "-o", str(other), "--format", fmt,
                         "--name", "kws"]) == 0
    assert (other / "CMakeLists.txt").is_file() and not (other / "libkws.a").exists()


def test_exports_quote_no_source_path_raw(tmp_path: Path) -> None:
    """A model path with a newline, quotes, a backtick, '${', ')' and '*/' reaches CMakeLists.txt's and
    README.md's text (a CMake line comment, a Markdown code span) as one printable line without them: the
    files are those of a plain path but for that line."""
    from tests.modelgen import op_cases

    model = build(op_cases("CONV_2D")[0])
    hostile = tmp_path / 'a\n)"\'`b ${X}*' / 'c\rd'  # "*/" across the two names
    hostile.mkdir(parents=True)
    (hostile / "m.tflite").write_bytes(model)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "m.tflite").write_bytes(model)
    files = {p: build_model(str(p / "m.tflite"), BOARD, fmt="cmake").files for p in (hostile, tmp_path / "plain")}
    for name in ("CMakeLists.txt", "README.md"):
        text, plain = files[hostile][name], files[tmp_path / "plain"][name]
        assert len(text.splitlines()) == len(plain.splitlines())
        changed = [(a, b) for a, b in zip(text.splitlines(), plain.splitlines()) if a != b]
        assert len(changed) == 1, changed
        line = changed[0][0]
        assert line.isprintable() and line.isascii() and "${" not in line and "*/" not in line
        assert line.count("`") == changed[0][1].count("`")
