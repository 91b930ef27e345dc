"""Render the board-specific files of a firmware project.

The code generator writes the model (``model.h``, ``model.c``, kernels); this
module supplies everything around it: Makefile, main.c, linker script,
runtime sources and a copy of the board file, which later tells
``build_project`` and ``run_project`` which board the project is for.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from tinyml.codegen.render import Storage, environment
from tinyml.boards import Board
from tinyml.resources import resource_dir
from tinyml.targets.qemu import qemu_command
from tinyml.targets.renode import renode_files

BOARD_FILE = "board.toml"
# RAM the linker script reserves besides the board's stack_bytes (ARM only):
# a guard region below the stack and a stack for the fault handlers.  The
# guard must be a power of two >= 32 (it is an Armv7-M MPU region).
STACK_GUARD_BYTES = 0x400
HANDLER_STACK_BYTES = 0x400
_MODEL_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

# Runtime sources by board kind, relative to firmware/; copied to runtime/.
_RUNTIME_FILES = {
    "host": ("tml_runtime.h", "host/io_host.c"),
    "arm": ("tml_runtime.h", "arm/startup.c", "arm/semihost.c", "arm/profile.c"),
}


# Host-link firmware (boards with a [uart] table): firmware/ sources copied
# to hostlink/.  Clock drivers shared by several chip families.
_HOSTLINK_FILES = ("hostlink.c", "hostlink.h", "uart/tml_board.h", "cycles.c", "tml_cycles.h", "stack.c",
                   "tml_stack.h")
_CLOCK_SOURCES = {"stm32f7": "stm32f4", "nrf52": "nrf51"}
HOSTLINK_MAX_IO = 4


def hostlink_files(board: Board, model_name: str, env: jinja2.Environment, caller_arena: bool = False
                   ) -> dict[str, str]:
    """hostlink/*: the host-link main, protocol, board configuration and the
    board's clock and UART drivers; empty for boards without a UART."""
    if board.uart_driver is None or board.clock_driver is None:
        return {}
    firmware = resource_dir("firmware")
    sources = list(_HOSTLINK_FILES)
    sources.append(f"uart/clock_{_CLOCK_SOURCES.get(board.clock_driver, board.clock_driver)}.c")
    sources.append(f"uart/uart_{board.uart_driver}.c")
    if board.clock_driver.startswith("stm32"):
        sources.append("uart/tml_stm32_gpio.h")
    if board.kind == "hardware":
        sources.append("uart/baremetal_io.c")
    if board.boot2_origin is not None:
        sources.append("uart/rp2040_boot2.c")
    files = {f"hostlink/{Path(source).name}": (firmware / source).read_text(encoding="utf-8") for source in sources}
    files["hostlink/board_config.h"] = env.get_template("project/board_config.h.j2").render(
        board_name=board.name, clock_driver=board.clock_driver, clock=list(board.clock),
        uart_driver=board.uart_driver, uart=list(board.uart))
    files["hostlink/main.c"] = env.get_template("project/hostlink_main.c.j2").render(
        model_name=model_name, model_upper=model_name.upper(), board_name=board.name, max_io=HOSTLINK_MAX_IO,
        caller_arena=caller_arena)
    return files


@dataclass(frozen=True)
class Application:
    """What an application (the KWS firmware, say) brings to a model's firmware project, rendered with
    the project: its own main.c (and host-link main on boards with a UART), extra sources, each from a
    template given ``values``, and ``metadata`` for project.json."""

    name: str
    main: str  # template of main.c
    hostlink_main: str | None = None  # template of hostlink/main.c (None: the generic host-link main)
    sources: tuple[tuple[str, str], ...] = ()  # (file name, template)
    values: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def render_project_files(board: Board, model_name: str, app: Application | None = None,
                         storage: Storage = Storage()) -> dict[str, str]:
    """Relative path -> content of every project file that is not the model (``storage``: the model's,
    which its main and linker script follow)."""
    if not _MODEL_NAME_RE.match(model_name):
        raise ValueError(f"model name {model_name!r} is not a lowercase C identifier")
    env = environment()
    binary_name = "firmware.elf" if board.is_arm else "firmware"
    hostlink_only = board.host_io == "uart"
    if board.kind == "qemu" and hostlink_only:
        # Interactive: the UART on the terminal (type benchmark-runner
        # commands such as "name%"); tinyml run/verify use a socket instead.
        run_command = shlex.join(qemu_command(board, "$(BIN)", serial="mon:stdio"))
    elif board.kind == "qemu":
        run_command = shlex.join(qemu_command(board, "$(BIN)"))
    elif board.kind == "host":
        run_command = "./$(BIN)"
    else:
        run_command = f"@echo 'board {board.name} is real hardware: flash $(BIN) with tinyml flash' && false"
    values = {
        "model_name": model_name,
        "model_upper": model_name.upper(),
        "board_name": board.name,
        "board_description": board.description,
        "arm": board.is_arm,
        "cc": board.cc,
        "objcopy": board.binutil("objcopy"),
        "raw_image": board.vectors_origin is None,
        "cflags": list(board.cflags),
        "ldflags": list(board.ldflags),
        "binary_name": binary_name,
        "run_command": run_command,
        "has_hostlink": board.uart_driver is not None,
        "hostlink_only": hostlink_only,
        "caller_arena": storage.arena == "caller",
    }
    files = {"Makefile": env.get_template("project/Makefile.j2").render(values)}
    if not hostlink_only:
        files["main.c"] = env.get_template("project/main.c.j2").render(values)
    files.update(hostlink_files(board, model_name, env, values["caller_arena"]))
    if app is not None:
        app_values = dict(app.values, model_name=model_name)
        files["main.c"] = env.get_template(app.main).render(app_values)
        for name, template in app.sources:
            files[name] = env.get_template(template).render(app_values)
        if app.hostlink_main is not None and "hostlink/main.c" in files:
            files["hostlink/main.c"] = env.get_template(app.hostlink_main).render(app_values)
    files.update(renode_files(board, model_name, env))
    if board.is_arm:
        files["linker.ld"] = env.get_template("project/linker.ld.j2").render(
            board_name=board.name,
            flash_origin=board.flash_origin,
            flash_bytes=board.flash_bytes,
            ram_origin=board.ram_origin,
            ram_bytes=board.ram_bytes,
            vectors_origin=board.vectors_origin,
            vectors_bytes=board.vectors_bytes,
            boot2_origin=board.boot2_origin,
            boot2_bytes=board.boot2_bytes,
            stack_bytes=board.stack_bytes,
            stack_guard_bytes=STACK_GUARD_BYTES,
            handler_stack_bytes=HANDLER_STACK_BYTES,
            weights_section=storage.weights_section,
            arena_section=storage.arena_section,
        )
    firmware = resource_dir("firmware")
    for source in _RUNTIME_FILES["arm" if board.is_arm else "host"]:
        if board.kind == "hardware" and source == "arm/semihost.c":
            continue  # no debugger answers semihosting: hostlink/baremetal_io.c instead
        files[f"runtime/{Path(source).name}"] = (firmware / source).read_text(encoding="utf-8")
    files[BOARD_FILE] = board.path.read_text(encoding="utf-8")
    return files


# RAM of the host-link firmware besides the model (frame buffers, command
# line, per-operator cycles; not the runner's input buffer).
HOSTLINK_RAM_BYTES = 2 * (7 + 256 + 4) + 96 + 4 * 128 + 96


def reserved_ram_bytes(board: Board) -> int:
    """RAM the runtime needs besides .data and .bss (stacks and guard; the
    host-link buffers on boards that use it)."""
    if not board.is_arm:
        return 0
    assert board.stack_bytes is not None
    hostlink = HOSTLINK_RAM_BYTES if board.host_io == "uart" else 0
    return board.stack_bytes + STACK_GUARD_BYTES + HANDLER_STACK_BYTES + hostlink


# Estimates of the runtime's static data (.data and .bss besides the model's arena), before a build
# measures it: measured from ds_cnn and resnet8 builds in December 2026 (tinyml inspect --board, the fit
# report's "runtime statics"): 32 bytes on every semihosting board; on boards with the host-link runner,
# the runner's input buffer (the model's input bytes) plus 64 to 80 bytes (rp2040-pico 64, the others 74
# to 80).  The smallest is taken, so that the fit check never refuses a model that links; the linker's
# overflow error (LinkFitError) catches the few bytes more.
SEMIHOSTING_STATICS_BYTES = 32
HOSTLINK_STATICS_BYTES = 64


def runtime_statics_estimate(board: Board, input_bytes: int) -> int:
    """Estimated RAM of the runtime's static data on ``board`` for a model whose inputs take
    ``input_bytes`` (see HOSTLINK_STATICS_BYTES); a build measures it."""
    if not board.is_arm:
        return 0
    return HOSTLINK_STATICS_BYTES + input_bytes if board.host_io == "uart" else SEMIHOSTING_STATICS_BYTES


def write_project_files(project_dir: Path, files: dict[str, str]) -> None:
    """Write ``files`` (relative path -> content) below ``project_dir``.

    A file whose content is unchanged is not rewritten, so make does not
    rebuild it.
    """
    for relative, content in files.items():
        target = project_dir / relative
        if target.is_file() and target.read_text(encoding="utf-8") == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
