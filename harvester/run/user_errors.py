"""Which errors are the user's to fix (one line) and which are bugs (a traceback): the one rule
the command line and `ernte serve` share.

ernte's own error types (`harvester.errors.ErnteError` and the index's own), the lock conflicts,
the OS errors of an operator's environment (a full disk, a read-only data directory) and an
unreachable Redis are the user's; anything else is a bug.
"""

from __future__ import annotations

import errno
from urllib.parse import parse_qs, urlsplit

from harvester.errors import ErnteError
from harvester.redact import redact, redact_url
from harvester.store.locks import AlreadyRunning, IndexBusy

EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    ErnteError,  # bad input, settings, sources; servers that fail or break the protocol
    AlreadyRunning,
    IndexBusy,
)
ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOTDIR,
        errno.EEXIST,  # a file where the data directory needs a directory
    }
)
"""OS errors an operator meets and fixes (a full disk, a read-only or foreign data directory):
one line naming the path. Any other OSError (a missing file ernte itself should have made) is a
bug and keeps its traceback."""


def expected_errors() -> tuple[type[Exception], ...]:
    """ernte's own error types a user can meet, printed as one line.

    Evaluated only when an exception propagates, so the imports cost nothing on success.
    """
    from indexer.elastic.connection import ElasticConnectionError
    from indexer.elastic.indices import RebuildError
    from indexer.elastic.kibana import KibanaImportError
    from indexer.elastic.queries import DeepPagingError
    from indexer.embedded.backend import DamagedIndex, SchemaMismatch
    from indexer.search_model import QuerySyntaxError

    return (
        *EXPECTED_ERRORS,
        SchemaMismatch,
        DamagedIndex,
        ElasticConnectionError,
        KibanaImportError,
        RebuildError,
        DeepPagingError,
        QuerySyntaxError,
    )


def is_user_error(exc: BaseException) -> bool:
    """True for an error a user can meet and act on; False for a bug (which keeps its traceback)."""
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return True
    return isinstance(exc, expected_errors()) or unreachable_redis(exc)


def unreachable_redis(exc: BaseException) -> bool:
    """Redis down or not answering (cluster mode): the operator's to fix, one line."""
    import redis

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError)


def redis_problem(url: str, exc: BaseException) -> str:
    """One line for an error talking to the Redis at `url` (passwords masked): unreachable, or
    answering but refusing the password (wrong, or none given)."""
    import redis

    shown, message = redact_url(url), redact(str(exc))
    if not isinstance(exc, redis.AuthenticationError):
        return f"Redis at {shown} is unreachable: {message}"
    parts = urlsplit(url)
    if parts.password or "password" in {k.lower() for k in parse_qs(parts.query)}:
        return f"Redis at {shown} refused the password in REDIS_URL: {message}"
    return (
        f"Redis at {shown} needs a password: put it in REDIS_URL "
        f"({parts.scheme or 'redis'}://:PASSWORD@HOST:PORT/0): {message}"
    )
