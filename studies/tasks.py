"""Celery tasks of the ingest and derive queues. Each takes ids, calls one service, and is safe to run twice."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import derive, services

# Only failures that can pass are retried: the database or object storage being unreachable or
# overloaded for a moment. A bug or an unreadable object is not retried (unreadable objects are
# recorded by the service and never raise).
TRANSIENT = (
    OperationalError,
    InterfaceError,
    BotoCoreError,
    ClientError,
    ConnectionError,
    TimeoutError,
)


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=12,
    retry_jitter=True,
)
def index_receipts(tenant_id: int, receipt_ids: list[int]) -> dict[str, int]:
    result = services.index_receipts(tenant_id=tenant_id, receipt_ids=receipt_ids)
    return {
        "indexed": result.indexed,
        "duplicates": result.duplicates,
        "replaced": result.replaced,
        "superseded": result.superseded,
        "unreadable": result.unreadable,
    }


@shared_task(ignore_result=True)
def sweep_ready_studies() -> int:
    # Periodic (beat); a missed run is simply done by the next one, so no retry.
    return len(services.sweep_ready_studies())


@shared_task(ignore_result=True)
def reconcile_receipts() -> dict[str, int]:
    return services.reconcile_receipts()


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT,  # database or object storage briefly unavailable; nothing else
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=12,
    retry_jitter=True,
    ignore_result=True,
)
def derive_series(tenant_id: int, series_id: int) -> str:
    # Queue "derive" (given by derive.schedule). Idempotent: a current series is left alone.
    return derive.build_series(tenant_id=tenant_id, series_id=series_id)
