"""Celery task of retention (beat: config/settings.py)."""

from __future__ import annotations

from celery import shared_task

from ..tasks import TRANSIENT
from . import services


# Transient database or storage errors are retried; a run purges only what is still there.
@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def apply_retention() -> dict[str, int]:
    return services.apply_retention()
