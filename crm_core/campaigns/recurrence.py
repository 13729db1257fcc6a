"""Recurring campaign runs: five-field cron expressions, evaluated in UTC.

A recurring campaign is sent once per run. When a run finishes, the same
transaction schedules the next one at the first time the expression matches
after that moment. So a dispatcher that was down through several matching
times starts one catch-up run when it is back, not one per missed time.
"""

from __future__ import annotations

import datetime as dt

from croniter import croniter

from crm_core.campaigns.instants import MAX_CRON_GAP
from crm_core.errors import FieldError, InvalidInput

MAX_CRON_CHARS = 80


def check_cron(expression: object, *, now: dt.datetime) -> str:
    """``expression`` trimmed, if it is a valid five-field cron expression; InvalidInput if not.

    It must also match within ``MAX_CRON_GAP`` of ``now``: ``0 0 30 2 *`` is
    well formed but never matches, and the dispatcher could never schedule it.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput([FieldError(("cron",), "must be a five-field cron expression")])
    text = " ".join(expression.split())
    if len(text) > MAX_CRON_CHARS or len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidInput(
            [FieldError(("cron",), "must be a five-field cron expression, e.g. '0 9 * * mon'")]
        )
    try:
        following = next_run(text, after=now)
    except ValueError:  # croniter's own errors are ValueErrors
        following = None
    if following is None or following - now > MAX_CRON_GAP:
        years = MAX_CRON_GAP.days // 366
        raise InvalidInput([FieldError(("cron",), f"never matches within {years} years")])
    return text


def next_run(expression: str, *, after: dt.datetime) -> dt.datetime:
    """The first time after ``after`` (UTC) that ``expression`` matches."""
    start = after.astimezone(dt.UTC)
    following = croniter(expression, start).get_next(dt.datetime)
    assert isinstance(following, dt.datetime)
    return following.astimezone(dt.UTC)
