"""The time limits of cluster tasks, derived from the HTTP settings so that they fit together.

One page task may spend, in the worst case, every HTTP attempt up to its connect + read timeout
and, between attempts, the longest wait (exponential backoff or a server's Retry-After, each
capped). Its soft time limit must be longer than that, or one slow but healthy page is cut
short; the hard limit comes a margin later; and Redis must not redeliver a message before the
hard limit (or before the longest retry countdown) has passed, or a running task is delivered
twice:

    page    = (max_retries + 1) x (connect_timeout + read_timeout)
              + max_retries x max(backoff_max, retry_after_cap)
    soft    = page + margin            hard = soft + margin
    visibility > max(hard, retry_backoff_max, page_delay, backpressure_delay) + margin

Unset limits are derived this way; limits set by the operator (ERNTE_TASK_SOFT_TIME_LIMIT,
ERNTE_TASK_TIME_LIMIT, ERNTE_VISIBILITY_TIMEOUT) are checked and refused at start with the
numbers that do not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harvester.settings import Settings


class TimeLimitError(ValueError):
    """Configured time limits that cannot hold one page task; says which and why."""


@dataclass(frozen=True, slots=True)
class TimeLimits:
    page: float
    """The longest a page's HTTP requests may take, retries and waits included."""
    soft: int
    hard: int
    visibility: int
    problems: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise TimeLimitError when the configured limits do not fit together."""
        if self.problems:
            raise TimeLimitError(
                "incoherent time limits: "
                + "; ".join(self.problems)
                + " (unset them to have them derived, or lower the HTTP timeouts and retries)"
            )


def worst_page_seconds(settings: Settings) -> float:
    """The longest one page's HTTP requests may take (see the module docstring)."""
    attempts = settings.max_retries + 1
    wait = max(settings.backoff_max, settings.retry_after_cap)
    return (
        attempts * (settings.connect_timeout + settings.read_timeout) + settings.max_retries * wait
    )


def time_limits(settings: Settings) -> TimeLimits:
    """Derived or checked soft/hard task limits and the broker's visibility timeout."""
    page = worst_page_seconds(settings)
    margin = settings.task_margin
    problems = []
    soft = settings.task_soft_time_limit or math.ceil(page + margin)
    if settings.task_soft_time_limit is not None and soft <= page:
        problems.append(
            f"ERNTE_TASK_SOFT_TIME_LIMIT={soft} s is not above one page's worst case of "
            f"{page:g} s ({settings.max_retries + 1} attempts x (connect {settings.connect_timeout:g}"
            f" + read {settings.read_timeout:g} s) + {settings.max_retries} waits of up to "
            f"{max(settings.backoff_max, settings.retry_after_cap):g} s)"
        )
    hard = settings.task_time_limit or math.ceil(soft + margin)
    if settings.task_time_limit is not None and hard <= soft:
        problems.append(
            f"ERNTE_TASK_TIME_LIMIT={hard} s is not above the soft time limit of {soft} s"
        )
    longest_wait = max(
        hard, settings.retry_backoff_max, settings.page_delay, settings.backpressure_delay
    )
    visibility = settings.visibility_timeout or math.ceil(longest_wait + margin)
    if settings.visibility_timeout is not None and visibility <= longest_wait:
        problems.append(
            f"ERNTE_VISIBILITY_TIMEOUT={visibility} s is not above the longest a message may stay "
            f"unacknowledged ({longest_wait:g} s: the hard time limit or a retry countdown); "
            "Redis would deliver running tasks twice"
        )
    return TimeLimits(page, soft, hard, visibility, tuple(problems))
