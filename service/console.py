"""The ``givfleet`` console script. It imports nothing heavy itself, so that Ctrl-C during the second or two the
command's modules take to import (or at any point a command does not handle it) exits quietly with 130, the
shell's code for an interrupted command, instead of printing a ``KeyboardInterrupt`` traceback."""

from __future__ import annotations

import os
import signal

INTERRUPTED = 130
"""The exit code of a command stopped by Ctrl-C (128 + SIGINT)."""


def main() -> None:
    """Run the ``givfleet`` command (:func:`service.cli.main`)."""
    # While the modules import, Ctrl-C ends the process at once: nothing has started that needs stopping, and a
    # KeyboardInterrupt raised inside the import machinery's own callbacks is printed and swallowed ("Exception
    # ignored in ... _get_module_lock"), after which the command would run on.
    # Unless Ctrl-C is ignored (``nohup``, ``cmd &`` in a script): then the import stays deaf to it (a long-running
    # command's own signal handling, e.g. ``up``'s, may still take it afterwards).
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda _signal, _frame: os._exit(INTERRUPTED))
    from service.cli import main as run_command

    signal.signal(signal.SIGINT, previous)
    try:
        run_command()
    except KeyboardInterrupt:
        raise SystemExit(INTERRUPTED) from None
