"""Build and run generated firmware projects: host (gcc + sanitizers), QEMU, Renode and boards over a
serial port (the host-link transport), and flashing them."""

from tinyml.targets.build import build_project
from tinyml.targets.project import render_project_files, write_project_files
from tinyml.targets.run import RunResult, run_project

__all__ = ["RunResult", "build_project", "render_project_files", "run_project", "write_project_files"]
