"""Celery tasks of the worklist. Each takes ids, calls one service, and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from studies.tasks import TRANSIENT

from . import priors, services

_RETRY = {
    "acks_late": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "max_retries": 12,
    "retry_jitter": True,
    "ignore_result": True,
}


@shared_task(**_RETRY)
def prefetch_priors(item_id: int) -> int:
    """Queue "prefetch": find the item's relevant priors and warm their derived data."""
    return priors.prefetch(item_id)


@shared_task(**_RETRY)
def auto_assign(tenant_id: int) -> int:
    return services.auto_assign(tenant_id)


@shared_task(ignore_result=True)
def housekeeping() -> dict[str, int]:
    """Periodic (beat): expire leases, escalate overdue items, catch missed items. A missed run
    is done by the next one, so no retry."""
    return services.housekeeping()
