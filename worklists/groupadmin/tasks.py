"""Celery tasks of group administration (beat: config/settings.py)."""

from __future__ import annotations

from celery import shared_task

from studies.tasks import TRANSIENT

from . import reminders


# Transient errors (the database or the mail server away) are retried; each run sends only
# what is still due, so a retry never sends twice.
@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def remind_expiring_credentials() -> int:
    return reminders.remind_expiring_credentials()
