"""The ``givfleet`` console script. It imports nothing heavy itself, so that Ctrl-C during the second or two the
command's modules take to import (or at any point a command does not handle it) exits quietly with 130, the
shell's code for an interrupted command, instead of printing a ``KeyboardInterrupt`` traceback."""

from __future__ import annotations

INTERRUPTED = 130
"""The exit code of a command stopped by Ctrl-C (128 + SIGINT)."""


def main() -> None:
    """Run the ``givfleet`` command (:func:`service.cli.main`)."""
    try:
        from service.cli import main as run_command

        run_command()
    except KeyboardInterrupt:
        raise SystemExit(INTERRUPTED) from None
