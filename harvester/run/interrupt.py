"""Ctrl-C (SIGINT) and SIGTERM (systemd, `docker stop`) during a harvest: stop cleanly.

`stop_on_signals()` turns the first SIGINT or SIGTERM into `Interrupted`, raised in the main
thread where it is waiting (a fetch is abandoned; the checkpoint of the last stored page holds).
Inside a `critical()` block (storing and checkpointing one page) the signal is held back and
raised when the block ends, so a page is either finished and checkpointed or never begun.
Further signals while stopping are ignored; the process exits 128 + signal number (130, 143).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""What operators stop a command with: Ctrl-C, and SIGTERM (systemd, `docker stop`)."""


class Interrupted(BaseException):
    """A harvest stopped by SIGINT or SIGTERM (a BaseException, like KeyboardInterrupt, so
    that no `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.page: int | None = None  # the page the harvest was at, set by the harvester
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class _Guard:
    def __init__(self) -> None:
        self.active = False
        self.received: int | None = None
        self.raised = False
        self.depth = 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            log.warning("already stopping; saving the checkpoint")
            return
        self.received = signum
        if self.depth == 0:
            self.raised = True
            raise Interrupted(signum)
        log.warning(
            "stopping once the step under way is done (a page being stored, an index being switched in)"
        )


_guard = _Guard()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal the command was started with ignored (SIGINT for `cmd &` in a script) stays
    # ignored: it is meant for others.
    previous = {
        s: signal.signal(s, _guard.handle)
        for s in STOP_SIGNALS
        if signal.getsignal(s) is not signal.SIG_IGN
    }
    _guard.active, _guard.received, _guard.raised, _guard.depth = True, None, False, 0
    try:
        yield
    finally:
        _guard.active = False
        stopping = _guard.received is not None
        for s, handler in previous.items():
            # Once stopping, the process is on its way out (its workers are being shut down):
            # a second Ctrl-C there printed a traceback from the interpreter's exit.
            signal.signal(s, signal.SIG_IGN if stopping else handler)


@contextmanager
def critical() -> Iterator[None]:
    """A block a signal must not cut in two: the signal takes effect when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _guard.depth += 1
    try:
        yield
    finally:
        _guard.depth -= 1
    if _guard.active and _guard.depth == 0 and _guard.received is not None and not _guard.raised:
        _guard.raised = True
        raise Interrupted(_guard.received)


@contextmanager
def stops_ignored() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM while the block runs (in the main thread; elsewhere a no-op,
    as Python sets handlers only there), so that processes started in it inherit them ignored
    (`harvester.run.pipeline.worker_pool`). A stop signal sent during these few milliseconds
    is lost, one the operator then sends again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
