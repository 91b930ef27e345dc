"""Renode: a ``.resc`` script and a Robot Framework test per project.

For a board with a [renode] table, ``tinyml compile`` writes
``renode/<board>.resc`` (loads the board's Renode platform and the built
firmware, shows the UART) and ``renode/<board>.robot`` (boots it, waits for
the banner and talks to the MLPerf Tiny runner interface).  ``tinyml run
PROJECT --renode`` runs the test with ``renode-test`` when Renode is
installed (:func:`tinyml.targets.run.run_renode`).
"""

from __future__ import annotations

import jinja2

from tinyml.boards import Board

RENODE_HELP = ("install Renode from https://renode.io (Linux: the renode_*.deb or the portable "
               "renode-*.linux-portable.tar.gz from https://github.com/renode/renode/releases, which "
               "include renode-test; then put renode and renode-test on PATH)")


def renode_files(board: Board, model_name: str, env: jinja2.Environment) -> dict[str, str]:
    """``renode/<board>.resc`` and ``.robot`` for boards Renode has a platform for."""
    if board.renode_platform is None or board.renode_uart is None or board.uart_driver is None:
        return {}
    values = dict(model_name=model_name, board_name=board.name, platform=board.renode_platform,
                  uart=board.renode_uart)
    return {
        f"renode/{board.name}.resc": env.get_template("project/renode.resc.j2").render(values),
        f"renode/{board.name}.robot": env.get_template("project/renode.robot.j2").render(values),
    }
