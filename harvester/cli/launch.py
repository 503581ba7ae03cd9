"""The installed `ernte` command: a Ctrl-C while it is still starting stops it in one line.

The command line (`harvester.cli.main`) imports its libraries first, for most of a second;
a Ctrl-C then printed a KeyboardInterrupt traceback from deep inside them. This module
imports nothing heavy itself, so it can catch that.
"""

from __future__ import annotations

import signal
import sys


def run() -> None:
    """Import and run the command line. Once it has ended, a Ctrl-C is ignored: one that
    came while the interpreter shut down (joining threads) printed "Exception ignored ...
    KeyboardInterrupt" after the command's own last line."""
    # While importing, Ctrl-C only notes itself: a KeyboardInterrupt raised inside the import
    # machinery (a weakref callback of importlib) is printed as "Exception ignored", which no
    # `except` can catch (seen in CI).
    # Started with Ctrl-C ignored (`cmd &` in a script), it stays ignored.
    stopped: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    noting = previous not in (signal.SIG_IGN, None)  # None: a handler set outside Python
    if noting:
        signal.signal(signal.SIGINT, lambda signum, frame: stopped.append(signum))
    try:
        from harvester.cli.main import main
    finally:
        if noting:
            signal.signal(signal.SIGINT, previous)
    if stopped:
        sys.stderr.write("interrupted while starting; nothing was done\n")
        sys.exit(130)
    try:
        main()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
