"""Demo studies: synthetic CT and MR made by the generator, ingested through the real services."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, Tenant

from .dicom import synthetic
from .models import ReceiptSource, Study
from .services import (
    ReceiptContext,
    index_receipts,
    record_receipts,
    store_bytes,
    sweep_ready_studies,
)


def seed_studies(tenant: Tenant, specs: list[synthetic.StudySpec]) -> int:
    """Ingest the given studies into ``tenant`` unless they are there already. Returns how many."""
    added = 0
    for spec in specs:
        uid = synthetic.study_uid(spec)
        if Study.objects.filter(tenant=tenant, study_instance_uid=uid).exists():
            continue
        stored = []
        for ds in synthetic.iter_study(spec):
            data = synthetic.encode_part10(ds)
            obj = store_bytes(tenant=tenant, data=data)
            obj.sop_class_uid = str(ds.SOPClassUID)
            obj.sop_instance_uid = str(ds.SOPInstanceUID)
            obj.study_instance_uid = uid
            obj.transfer_syntax_uid = str(ds.file_meta.TransferSyntaxUID)
            stored.append(obj)
        collected: list[tuple[int, list[int]]] = []
        record_receipts(
            tenant=tenant,
            context=ReceiptContext(
                source=ReceiptSource.INTERNAL,
                actor=audit.Actor.system(),
                audit_action=AuditAction.DIMSE_STORE,
            ),
            objects=stored,
            enqueue=lambda tenant_id, ids: collected.append((tenant_id, ids)),  # noqa: B023 - called at once
        )
        for tenant_id, ids in collected:
            index_receipts(tenant_id=tenant_id, receipt_ids=ids)
        added += 1
    # Demo studies arrived "a while ago": let the ready sweep see them as quiet right away.
    past = timezone.now() - timedelta(seconds=tenant.quiet_period_seconds + 1)
    Study.objects.filter(tenant=tenant, state="receiving").update(last_instance_at=past)
    sweep_ready_studies()
    return added
