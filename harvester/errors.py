"""The root of ernte's own errors: what a user can meet and fix, printed by the CLI as one line.

Every error a user can cause or meet (a misspelt source, a bad date, an unreachable or misbehaving
server, a harvest already running) derives from `ErnteError`; the command line prints those as
one line and exits 1. Anything else (a `KeyError`, a `ValueError` from deep inside a library) is
a bug and keeps its traceback.
"""

from __future__ import annotations


class ErnteError(Exception):
    """An error a user can meet and act on; its message names the record, request or setting."""


class UsageError(ErnteError, ValueError):
    """Arguments or settings that cannot work together (e.g. `--from` after `--until`)."""


class DamagedData(ErnteError, ValueError):
    """Stored data ernte cannot read (a damaged state entry or file); the message names it."""
