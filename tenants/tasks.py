"""Celery tasks of the tenancy."""

from __future__ import annotations

from celery import shared_task

from . import audit


@shared_task(ignore_result=True)
def seal_audit_log() -> int:
    """Periodic (beat): link new audit rows into their tenant's hash chain. Sealing is idempotent
    and a missed run is done by the next one, so no retry."""
    return audit.seal()
