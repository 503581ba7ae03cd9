"""The base of every ernte task: retries with backoff, delivery counting, dead-lettering.

A transient error (network, server overload, Redis or index unavailable, a soft time limit) is
retried with capped exponential backoff and full jitter; anything else, the last retry, or a
task whose worker keeps dying under it goes to the dead-letter list, and the run it belongs to
is given up cleanly (`runs.give_up`). An error whose message holds a password leaves the task
only as a redacted stand-in.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import redis
import requests
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval

from harvester.cluster import runs
from harvester.cluster.payloads import payload_of
from harvester.logs import log_context
from harvester.oai.client import NotOAIResponse
from harvester.oai.http import HTTPFailure
from harvester.redact import redact
from harvester.store import dead_letters
from harvester.store.cluster_store import cluster, cluster_settings
from harvester.store.files import StorageFull, full_message
from harvester.store.redis_state import StaleRun

log = logging.getLogger(__name__)

STALE = "stale"


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying later: network, server overload, Redis or index unavailable."""
    if isinstance(
        exc,
        HTTPFailure
        | NotOAIResponse
        | requests.RequestException
        | OSError  # includes ConnectionError, TimeoutError; disk and lock trouble pass too
        | redis.ConnectionError
        | redis.TimeoutError,
    ):
        return True
    try:
        import elasticsearch
    except ImportError:  # pragma: no cover - a dependency, but keep the worker alive without it
        return False
    if isinstance(exc, elasticsearch.ConnectionError | elasticsearch.ConnectionTimeout):
        return True
    return isinstance(exc, elasticsearch.ApiError) and exc.status_code in (429, 502, 503, 504)


class RedactedError(Exception):
    """Stands in for an error whose message held a password (an OAI URL with credentials):
    Celery puts a task's exception into its events and logs, so the original never leaves
    the task. The message names the original type."""


def _shown(exc: Exception) -> Exception:
    """`exc` itself, or a RedactedError with its message when that message holds a password."""
    text = str(exc)
    cleaned = redact(text)
    return exc if cleaned == text else RedactedError(f"{type(exc).__name__}: {cleaned}")


def dead_letter_reason(exc: BaseException) -> str:
    """What a dead letter says of the error that ended its task: its type and message (a
    redacted stand-in's message as it is). A full disk's way out is `ernte dlq replay` once
    space is freed: the command line's "run the command again" would start another run."""
    if isinstance(exc, RedactedError):
        return str(exc)
    if isinstance(exc, StorageFull):
        return f"StorageFull: {full_message(exc.path, then='replay it with `ernte dlq replay`')}"
    return f"{type(exc).__name__}: {exc}"


class ErnteTask(Task):
    """Retry transient errors with capped exponential backoff and full jitter; dead-letter the
    rest, and tasks whose worker keeps dying under them.

    Retries are done here rather than with `autoretry_for`, because Celery binds autoretry's
    backoff cap when the task is created, and ours comes from settings read at configure time.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Every line of the task (its retries and dead letter too) says which run, source,
        # set and page it concerns.
        with log_context(task=self.name, **runs.task_log_fields(payload_of(kwargs))):
            return self._call(*args, **kwargs)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        settings = cluster_settings()
        if self._delivered_too_often(settings.max_deliveries):
            reason = (
                f"delivered more than {settings.max_deliveries} times without finishing "
                "(the worker process died under it each time)"
            )
            self._dead_letter(kwargs, reason, "")
            return "dead-lettered"
        try:
            return self.run(*args, **kwargs)
        except StaleRun as exc:
            log.info("stale task, nothing to do: %s", exc)
            return STALE
        except Exception as exc:
            shown = _shown(exc)
            if shown is not exc:  # the full traceback, redacted, for the operator's log
                log.warning("task error: %s", shown, exc_info=exc)
            # A soft time limit is longer than a page's HTTP worst case (time_limits.py), so a
            # task that reaches it hung: try it again later, like any transient error.
            transient = is_transient(exc) or isinstance(exc, SoftTimeLimitExceeded)
            if shown is exc and not transient:
                raise
        # Outside the handler, so that Celery (events, results, logs) never sees the original
        # exception chained to the one shown.
        if not transient:
            raise shown
        countdown = get_exponential_backoff_interval(
            factor=1,
            retries=self.request.retries,
            maximum=settings.retry_backoff_max,
            full_jitter=True,
        )
        log.warning(
            "transient error, retrying in %ss: %s",
            countdown,
            shown,
            extra={"attempt": self.request.retries + 1},
        )
        raise self.retry(exc=shown, countdown=countdown, max_retries=settings.task_max_retries)

    def _delivered_too_often(self, limit: int) -> bool:
        """Count deliveries of this task id; after_return clears the count, so only deliveries
        that never returned (worker lost: SIGKILL, OOM) add up."""
        if not self.request.id:
            return False
        key = f"ernte:deliveries:{self.request.id}"
        client = cluster().client
        deliveries = cast(int, client.incr(key))
        client.expire(key, 86400)
        return deliveries > limit

    def after_return(self, *args: Any, **kwargs: Any) -> None:
        if self.request.id:
            cluster().client.delete(f"ernte:deliveries:{self.request.id}")

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        reason = dead_letter_reason(exc)
        with log_context(task=self.name, **runs.task_log_fields(payload_of(kwargs))):
            self._dead_letter(kwargs, reason, str(einfo))

    def _dead_letter(self, kwargs: dict[str, Any], reason: str, trace: str) -> None:
        payload = payload_of(kwargs)
        harvest = runs.run_request(self.name, payload)
        dead_letters.record(
            self.name, kwargs, reason, trace, self.request.retries + 1, harvest=harvest
        )
        runs.give_up(self.name, payload, reason)
