"""Renode: a ``.resc`` script and a Robot Framework test per project.

For a board with a [renode] table, ``tinyml compile`` writes
``renode/<board>.resc`` (loads the board's Renode platform and the built
firmware, shows the UART) and ``renode/<board>.robot`` (boots it, waits for
the banner and talks to the MLPerf Tiny runner interface).  ``tinyml run
PROJECT --renode`` runs the test with ``renode-test`` when Renode is
installed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2

from tinyml.boards import Board
from tinyml.errors import RunError
from tinyml.resources import resource_dir

RENODE_HELP = ("install Renode from https://renode.io (Linux: the renode_*.deb or the portable "
               "renode-*.linux-portable.tar.gz from https://github.com/renode/renode/releases, which "
               "include renode-test; then put renode and renode-test on PATH)")


def renode_files(board: Board, model_name: str, env: jinja2.Environment | None = None) -> dict[str, str]:
    """``renode/<board>.resc`` and ``.robot`` for boards Renode has a platform for."""
    if board.renode_platform is None or board.renode_uart is None or board.uart_driver is None:
        return {}
    env = env or jinja2.Environment(loader=jinja2.FileSystemLoader(resource_dir("templates") / "project"),
                                    undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                    autoescape=False)
    values = dict(model_name=model_name, board_name=board.name, platform=board.renode_platform,
                  uart=board.renode_uart)
    return {
        f"renode/{board.name}.resc": env.get_template("renode.resc.j2").render(values),
        f"renode/{board.name}.robot": env.get_template("renode.robot.j2").render(values),
    }


@dataclass
class RenodeResult:
    passed: bool
    output: str
    robot: Path


def run_renode(project_dir: str | Path, *, timeout: float = 600) -> RenodeResult:
    """Builds the project and runs its Robot Framework test in Renode."""
    from tinyml.targets.build import build_project, project_board

    project = Path(project_dir).resolve()
    board = project_board(project)
    robot = project / "renode" / f"{board.name}.robot"
    if not robot.is_file():
        raise RunError(f"{project} has no Renode test: Renode has no platform for board {board.name} "
                       "(no [renode] table in its board file); run it with tinyml run instead")
    runner = shutil.which("renode-test")
    if runner is None:
        raise RunError(f"Renode is not installed (renode-test not found on PATH); {RENODE_HELP}")
    build_project(project)
    try:
        proc = subprocess.run([runner, str(robot)], cwd=robot.parent, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError(f"the Renode test {robot} did not finish within {timeout:g}s") from None
    return RenodeResult(passed=proc.returncode == 0, output=proc.stdout + proc.stderr, robot=robot)
