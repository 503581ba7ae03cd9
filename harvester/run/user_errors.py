"""Which errors are the user's to fix (one line) and which are bugs (a traceback): the one rule
the command line and `ernte serve` share.

ernte's own error types (`harvester.errors.ErnteError` and the index's own), the lock conflicts,
the OS errors of an operator's environment (a full disk, a read-only data directory) and an
unreachable Redis are the user's; anything else is a bug.
"""

from __future__ import annotations

import errno

from harvester.errors import ErnteError
from harvester.store.locks import AlreadyRunning, IndexBusy

EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    ErnteError,  # bad input, settings, sources; servers that fail or break the protocol
    AlreadyRunning,
    IndexBusy,
)
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}
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
    from indexer.search_model import QuerySyntaxError

    return (
        *EXPECTED_ERRORS,
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


def redis_auth_error() -> type[Exception]:
    """The error of a Redis that answers but refuses the password (wrong, or none given)."""
    import redis

    return redis.AuthenticationError
