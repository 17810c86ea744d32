"""The error of the command-line tools: one line, exit code 2."""
from __future__ import annotations


class CliError(Exception):
    """A bad path or argument: printed as one line, exit code 2."""
