"""`ernte worker` and `ernte beat` outlive a Redis restart (celery 5.7.0, kombu 5.7.0, redbeat 2.4.2).

Worker: on a lost broker connection Celery's consumer calls `connection.collect()` and then (new in
5.7) `connection.close()`. With the Redis transport, collect() fails half-way through closing the
default channel (the pending BRPOP read raises ConnectionError before the channel is marked
closed) and drops the transport; close() then closes that channel again, its restore of unacked
messages needs the dropped transport, and `AttributeError: 'NoneType' object has no attribute
'hostname'` ends the worker ("Unrecoverable error"). `Consumer` forgets the channel once collect()
has run: Redis is gone, so nothing could be restored anyway; the unacked messages stay in Redis
and come back after the visibility timeout.

Beat: RedBeat lets every Redis error in `tick()` end the beat (extending its lock is the first
Redis call of each tick); its `retry_period` option does not cover the lock. `RedBeatScheduler`
waits for Redis instead, takes the lock again when Redis lost it (restart without persistence,
or the lock expired meanwhile; a beat that finds it held by another waits as standby) and puts the
static schedule back (RedBeat keeps it in Redis).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from types import SimpleNamespace
from typing import Any

from celery.beat import Scheduler
from celery.utils.threads import bound_open_broker_sockets
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.consumer import COLLECT_SOCKET_TIMEOUT
from redbeat.schedulers import RedBeatScheduler as _RedBeatScheduler
from redbeat.schedulers import acquire_distributed_beat_lock
from redis.exceptions import AuthenticationError, LockError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


class Consumer(CeleryConsumer):
    """Celery's worker consumer; a lost broker connection is collected only once (see above)."""

    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        connection = self.connection
        if connection is not None:
            bound_open_broker_sockets(connection, COLLECT_SOCKET_TIMEOUT)
            with suppress(Exception):  # as Celery does: the connection is gone either way
                connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT)
            # collect() dropped the transport; never close this channel again without it
            connection._default_channel = None
        super().on_connection_error_after_connected(exc)


class RedBeatScheduler(_RedBeatScheduler):
    """RedBeat that waits out a Redis restart instead of ending `ernte beat` (see above)."""

    def _retry_after(self) -> float:
        return float(min(self.max_interval, 5))

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock_key and self.lock is None:
            # A standby whose wait for the lock at start met a Redis outage (Celery swallows
            # that error and leaves no lock): take the lock before scheduling anything.
            self._take_lock_again()
            return 0.0
        try:
            return float(super().tick(*args, **kwargs))
        except AuthenticationError:
            raise  # a refused password is no restart to wait out: beat ends and says so
        except LockError:
            log.warning(
                "beat: lost the schedule lock (Redis restarted or it expired); taking it again"
            )
            self._take_lock_again()
            return 0.0
        except REDIS_DOWN as exc:
            log.warning(
                "beat: Redis is unreachable (%s); trying again in %.0f s", exc, self._retry_after()
            )
            return self._retry_after()

    def _take_lock_again(self) -> None:
        """Wait for Redis and the lock (as at start: a standby waits while another beat holds it),
        then store the static schedule again (it is gone if Redis persisted nothing)."""
        self.lock = None
        while self.lock is None:
            self._until_redis_answers(
                lambda: acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=self))
            )
        self._until_redis_answers(self.setup_schedule)  # keeps the lock it holds

    def _until_redis_answers(self, call: Callable[[], object]) -> None:
        """`call()`, again every few seconds while Redis is unreachable."""
        while True:
            try:
                call()
                return
            except AuthenticationError:
                raise
            except REDIS_DOWN as exc:
                log.warning("beat: Redis is unreachable (%s); trying again", exc)
                time.sleep(self._retry_after())

    def close(self) -> None:
        try:
            super().close()
        except (LockError, *REDIS_DOWN) as exc:  # the lock expires by itself
            log.warning("beat: could not release the schedule lock: %s", exc)
            self.lock = None
            Scheduler.close(self)
