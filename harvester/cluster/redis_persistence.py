"""Does the Redis of cluster mode keep its data across a restart?

Run state, leases and queued tasks live in Redis. A Redis without persistence (neither RDB
snapshots nor the AOF) forgets them all on a restart. Workers and beat call
`warn_if_redis_not_persistent()` at start and say so loudly; the last checkpoint of every
harvest is also kept in the data directory (`harvester.store.redis_state`), so a vanished run is
reported by `ernte status` and resumed by the next harvest rather than forgotten.
"""

from __future__ import annotations

import logging
import sys

import redis

from harvester.run.user_errors import redis_problem

log = logging.getLogger(__name__)


def persistence_problem(client: redis.Redis) -> str | None:
    """Why this Redis would lose its data on a restart, or None when it persists (RDB or AOF,
    or when CONFIG is not allowed, as on managed Redis services that persist themselves)."""
    try:
        save = client.config_get("save").get("save", "")
        appendonly = client.config_get("appendonly").get("appendonly", "no")
    except redis.ResponseError:
        return None
    if str(appendonly).lower() == "yes" or str(save).strip():
        return None
    return (
        'Redis persists nothing (save "" and appendonly no): a Redis restart loses every '
        "queued task and run state; enable the AOF (`appendonly yes`) or RDB snapshots"
    )


def warn_if_redis_not_persistent(url: str) -> str | None:
    """Log and print a warning when the Redis at `url` does not persist; returns it. An
    unreachable Redis ends the process with one line (workers and beat need it)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        problem = persistence_problem(client)
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # refused, silent, or a password
        raise SystemExit(f"error: {redis_problem(url, exc)}") from None
    finally:
        client.close()
    if problem:
        log.warning(problem)
        print(f"WARNING: {problem}", file=sys.stderr, flush=True)
    return problem
