"""User-facing errors.

Every error a user can cause (bad model, bad board file, budget that cannot
be met, build failure, ...) is a subclass of :class:`TinymlError`.  Its
message is one line that says what went wrong, where, and what to do.  The
CLI prints it on stderr and exits with code 2; nothing else is a user error.
"""

from __future__ import annotations


class TinymlError(Exception):
    """Base class of every error caused by user input."""

    exit_code = 2

    def __str__(self) -> str:  # always one line
        return " ".join(super().__str__().split())


class ModelError(TinymlError):
    """The model file is malformed, truncated or not a valid int8 model."""


class UnsupportedError(TinymlError):
    """The model uses an operator or a parameter we do not support."""


class BoardError(TinymlError):
    """A board file is missing or broken."""


class FitError(TinymlError):
    """The model does not fit the board or the memory budget."""


class BuildError(TinymlError):
    """The generated project failed to build."""


class RunError(TinymlError):
    """The firmware failed, hung or returned a wrong exit code."""


class InputError(TinymlError):
    """An input file given on the command line is wrong."""
