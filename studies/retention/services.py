"""Purging studies past their hospital's retention policy.

Rows first, objects after, with a ledger between them: one transaction deletes the study's rows
(study, series, instances, receipts, closed work items, the patient when nothing else is left)
and writes a ``PurgedStudy`` row listing the study's object keys and a RETENTION_PURGE audit row;
after it commits the objects are deleted and the ledger row marked done. A crash in between
leaves a ledger row that the next run finishes, the way ``delete_superfluous_objects`` finishes
receipts marked ``object_deleted=False``: nothing visible points at a missing object, and no
object outlives its study. Studies held by an open work item or a report are never purged;
reports are records with their own retention, and a signed report version cannot be deleted
(reports/migrations/0002).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, Tenant

from ..models import Instance, Patient, Receipt, Series, Study
from ..storage import derived_key, object_store
from . import policy as policies
from .models import PurgedStudy, RetentionPolicy

log = logging.getLogger(__name__)

OPEN_ITEM_STATES = ("scheduled", "in_progress")


def blocked(study: Study) -> str:
    """Why a study may not be purged now ("" when it may)."""
    work_item: Any = apps.get_model("worklists", "WorkItem")
    report: Any = apps.get_model("reports", "Report")
    items = work_item.objects.filter(tenant_id=study.tenant_id, study_links__study=study)
    if (
        items.filter(state__in=OPEN_ITEM_STATES).exists()
        or work_item.objects.filter(
            tenant_id=study.tenant_id, study=study, state__in=OPEN_ITEM_STATES
        ).exists()
    ):
        return "open work item"
    if report.objects.filter(tenant_id=study.tenant_id, study=study).exists():
        return "report"
    return ""


def _keys(study: Study) -> list[str]:
    """Every stored object of the study: originals, viewer-ready frames, derived series data
    (all generations, listed from storage; read before the rows go)."""
    keys: set[str] = set()
    for key, ready in Instance.objects.filter(tenant_id=study.tenant_id, study=study).values_list(
        "storage_key", "ready_key"
    ):
        keys.add(key)
        if ready:
            keys.add(ready)
    uids = Instance.objects.filter(tenant_id=study.tenant_id, study=study).values(
        "sop_instance_uid"
    )
    keys.update(
        Receipt.objects.filter(
            tenant_id=study.tenant_id, sop_instance_uid__in=uids, object_deleted=False
        ).values_list("storage_key", flat=True)
    )
    store: Any = object_store()
    for series_id, meta, thumb in Series.objects.filter(
        tenant_id=study.tenant_id, study=study
    ).values_list("id", "derived__metadata_key", "derived__thumbnail_key"):
        keys.update(k for k in (meta, thumb) if k)
        folder = derived_key(study.tenant_id, "series", str(series_id))
        try:
            _, files = store.listdir(folder)
        except (FileNotFoundError, NotImplementedError):
            continue
        keys.update(f"{folder}/{name}" for name in files)
    return sorted(keys)


def _delete_rows(study: Study) -> int:
    """Delete the study's rows; raises ProtectedError/IntegrityError when something still holds
    them (a consult, a critical result, a work item shared with another study)."""
    work_item: Any = apps.get_model("worklists", "WorkItem")
    study_link: Any = apps.get_model("worklists", "StudyLink")
    tenant_id = study.tenant_id
    items = list(
        work_item.objects.filter(tenant_id=tenant_id, study_links__study=study).distinct()
    ) + list(work_item.objects.filter(tenant_id=tenant_id, study=study))
    for item in {i.pk: i for i in items}.values():
        if study_link.objects.filter(item=item).exclude(study=study).exists():
            raise IntegrityError("the work item also covers another study")
        study_link.objects.filter(item=item).delete()
        item.delete()
    instances = Instance.objects.filter(tenant_id=tenant_id, study=study)
    uids = list(instances.values_list("sop_instance_uid", flat=True))
    receipt_ids = list(instances.values_list("receipt_id", flat=True))
    count = len(uids)
    study.delete()  # series, instances, derived rows, share-link entries go with it
    Receipt.objects.filter(tenant_id=tenant_id, id__in=receipt_ids).delete()
    Receipt.objects.filter(tenant_id=tenant_id, sop_instance_uid__in=uids).delete()
    return count


def _drop_patient_if_alone(tenant_id: int, patient_id: int) -> None:
    if Study.objects.filter(tenant_id=tenant_id, patient_id=patient_id).exists():
        return
    try:
        with transaction.atomic():
            Patient.objects.filter(tenant_id=tenant_id, pk=patient_id).delete()
    except (ProtectedError, RestrictedError, IntegrityError):
        pass  # still named by a row kept on purpose (an item of another study, say)


def purge_study(study: Study, *, days: int, now: datetime) -> bool:
    """Purge one due study; False when it is held, changed meanwhile or already gone."""
    if blocked(study):
        return False
    keys = _keys(study)  # storage I/O, outside the transaction
    with transaction.atomic():
        current = (
            Study.objects.select_for_update()
            .filter(pk=study.pk, tenant_id=study.tenant_id, last_instance_at=study.last_instance_at)
            .first()
        )
        if current is None or blocked(current):
            return False
        try:
            with transaction.atomic():
                instances = _delete_rows(current)
        except (ProtectedError, RestrictedError, IntegrityError):
            log.info("retention: study %s is still referenced; kept", current.pk)
            return False
        _drop_patient_if_alone(current.tenant_id, current.patient_id)
        ledger = PurgedStudy.objects.create(
            tenant_id=current.tenant_id,
            study_instance_uid=current.study_instance_uid,
            keys=keys,
            purged_at=now,
        )
        audit.record(
            action=AuditAction.RETENTION_PURGE,
            actor=audit.Actor.system(),
            tenant=current.tenant,
            study_instance_uid=current.study_instance_uid,
            patient_ref=current.patient_id,
            detail={
                "study": current.pk,
                "purge": ledger.pk,
                "instances": instances,
                "objects": len(keys),
                "keep_days": days,
            },
        )
    delete_objects(ledger)
    return True


def delete_objects(ledger: PurgedStudy) -> bool:
    """Delete a purged study's objects; idempotent (deleting a missing object is no error)."""
    store = object_store()
    for key in ledger.keys:
        try:
            store.delete(key)
        except Exception:  # noqa: BLE001 - storage away: the next run finishes the ledger
            log.warning("retention: could not delete the objects of purge %s yet", ledger.pk)
            return False
    PurgedStudy.objects.filter(pk=ledger.pk, objects_deleted_at__isnull=True).update(
        objects_deleted_at=timezone.now()
    )
    return True


def apply_retention(*, now: datetime | None = None) -> dict[str, int]:
    """Finish interrupted purges, then purge every hospital's due studies. Safe to run twice:
    a purged study is no longer there to be found."""
    now = now or timezone.now()
    finished = 0
    for tenant_id in Tenant.objects.values_list("id", flat=True):
        for ledger in PurgedStudy.objects.filter(
            tenant_id=tenant_id, objects_deleted_at__isnull=True
        ).order_by("id"):
            finished += delete_objects(ledger)
    purged = kept = 0
    for policy in RetentionPolicy.objects.filter(tenant__is_active=True).select_related("tenant"):
        for study, days in policies.due(policy, now):
            if purge_study(study, days=days, now=now):
                purged += 1
            else:
                kept += 1
    return {"purged": purged, "kept": kept, "finished": finished}


def preview(tenant_id: int, now: datetime) -> dict[str, int]:
    """How many studies a run now would purge, and how many due ones it would keep (counts
    only: the settings page shows no patient data)."""
    policy = RetentionPolicy.objects.filter(tenant_id=tenant_id).first()
    if policy is None:
        return {"purge": 0, "held": 0}
    due = policies.due(policy, now, limit=10000)
    held = sum(1 for study, _ in due if blocked(study))
    return {"purge": len(due) - held, "held": held}
