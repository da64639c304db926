"""Celery tasks of critical results."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils.dateparse import parse_datetime

from . import services


@shared_task(ignore_result=True)
def escalate_critical(now: datetime | str | None = None) -> int:
    """Periodic (beat): escalate overdue, unacknowledged critical results, each once. Safe to
    run twice or on two workers (conditional UPDATE); a missed run is done by the next one, so
    no retry. ``now`` (a datetime, or ISO 8601 through the broker) is for tests and replays."""
    when = parse_datetime(now) if isinstance(now, str) else now
    return services.escalate(now=when)
