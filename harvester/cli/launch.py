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
    try:
        from harvester.cli.main import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted while starting; nothing was done\n")
        sys.exit(130)
    try:
        main()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
