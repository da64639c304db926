"""Celery tasks of delivery (queue "ingest", the default). Each takes ids and is safe to run twice:
``services.deliver`` claims its row before sending and finds nothing to do once it is sent."""

from __future__ import annotations

from celery import shared_task

from studies.tasks import TRANSIENT

from . import services


@shared_task(
    acks_late=True,
    # Only what may pass: the endpoint, PACS or interface engine down or busy, the database or
    # object storage briefly unavailable. A refusal (HTTP 400, a C-STORE failure status) is final
    # until someone fixes the settings and presses "retry now".
    autoretry_for=(services.Transient, *TRANSIENT),
    retry_backoff=2,
    retry_backoff_max=600,
    max_retries=12,
    retry_jitter=True,
    ignore_result=True,
)
def deliver(tenant_id: int, delivery_id: int) -> str:
    return services.deliver(tenant_id=tenant_id, delivery_id=delivery_id)


@shared_task(ignore_result=True)
def sweep_deliveries() -> int:
    # Periodic (beat); a missed run is done by the next one, so no retry.
    return services.sweep()
