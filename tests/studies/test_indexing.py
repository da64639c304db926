"""Indexing through the service and the real worker: replace policy, unreadable objects,
malformed-but-readable files, and order independence."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from studies import services
from studies.models import Instance, Receipt, ReceiptSource, ReceiptStatus, Study
from studies.storage import object_store
from tenants import audit
from tenants.models import AuditAction, AuditEvent


def _receive(tenant, data: bytes, sop_uid: str = "") -> Receipt:  # noqa: ANN001
    stored = services.store_bytes(tenant=tenant, data=data)
    stored.sop_instance_uid = sop_uid
    collected: list[list[int]] = []
    [receipt] = services.record_receipts(
        tenant=tenant,
        context=services.ReceiptContext(source=ReceiptSource.INTERNAL, actor=audit.Actor.system()),
        objects=[stored],
        enqueue=lambda tenant_id, ids: collected.append(ids),
    )
    return receipt


def _index(tenant, *receipts: Receipt) -> services.IndexResult:  # noqa: ANN001
    return services.index_receipts(tenant_id=tenant.id, receipt_ids=[r.id for r in receipts])


def _bytes_with(path: str, **changes: object) -> bytes:
    import io

    ds = pydicom.dcmread(get_testdata_file(path))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.smoke
def test_a_changed_resend_replaces_the_older_copy_and_both_facts_are_audited(people):
    first = _receive(people.demo, _bytes_with("CT_small.dcm", StudyDescription="FIRST"))
    _index(people.demo, first)
    second = _receive(
        people.demo,
        _bytes_with("CT_small.dcm", StudyDescription="FIRST", SeriesDescription="SECOND"),
    )
    result = _index(people.demo, second)
    assert result.replaced == 1
    instance = Instance.objects.get(tenant=people.demo)
    assert instance.receipt_id == second.id
    assert instance.sha256 == second.sha256
    first.refresh_from_db()
    assert first.status == ReceiptStatus.SUPERSEDED and first.object_deleted
    assert not object_store().exists(first.storage_key)
    actions = set(AuditEvent.objects.filter(tenant=people.demo).values_list("action", flat=True))
    assert {AuditAction.INDEX, AuditAction.REPLACE} <= actions


def test_an_older_copy_indexed_after_a_newer_one_does_not_win(people):
    older = _receive(people.demo, _bytes_with("CT_small.dcm", SeriesDescription="OLD"))
    newer = _receive(people.demo, _bytes_with("CT_small.dcm", SeriesDescription="NEW"))
    _index(people.demo, newer)
    result = _index(people.demo, older)
    assert result.superseded == 1
    assert Instance.objects.get(tenant=people.demo).receipt_id == newer.id
    older.refresh_from_db()
    assert older.status == ReceiptStatus.SUPERSEDED


def test_both_copies_in_one_batch_keep_the_newer(people):
    older = _receive(people.demo, _bytes_with("CT_small.dcm", SeriesDescription="OLD"))
    newer = _receive(people.demo, _bytes_with("CT_small.dcm", SeriesDescription="NEW"))
    _index(people.demo, older, newer)
    assert Instance.objects.get(tenant=people.demo).receipt_id == newer.id
    statuses = dict(Receipt.objects.values_list("id", "status"))
    assert statuses == {older.id: ReceiptStatus.SUPERSEDED, newer.id: ReceiptStatus.INDEXED}


@pytest.mark.smoke
def test_running_the_same_index_task_twice_changes_nothing(people):
    receipt = _receive(people.demo, Path(get_testdata_file("MR_small.dcm")).read_bytes())
    _index(people.demo, receipt)
    again = _index(people.demo, receipt)
    assert (again.indexed, again.duplicates, again.replaced) == (0, 0, 0)
    assert Instance.objects.count() == 1
    assert Study.objects.get().number_of_study_related_instances == 1


@pytest.mark.smoke
def test_an_unreadable_object_is_kept_marked_and_reported(people):
    receipt = _receive(people.demo, b"\x00" * 128 + b"DICM" + b"\xff" * 50, sop_uid="1.2.3.4")
    result = _index(people.demo, receipt)
    assert result.unreadable == 1
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.UNREADABLE
    assert receipt.problem  # a code, e.g. "missing-uid:study_instance_uid"
    assert object_store().exists(receipt.storage_key)  # kept, never silently dropped
    event = AuditEvent.objects.get(action=AuditAction.UNREADABLE)
    assert event.tenant_id == people.demo.id and event.outcome == "failure"


def test_a_truncated_but_readable_file_is_indexed_with_what_can_be_read(people):
    data = Path(get_testdata_file("rtplan_truncated.dcm")).read_bytes()
    receipt = _receive(people.demo, data)
    _index(people.demo, receipt)
    instance = Instance.objects.get(tenant=people.demo)
    assert instance.sop_instance_uid == str(
        pydicom.dcmread(get_testdata_file("rtplan.dcm")).SOPInstanceUID
    )
    assert instance.sha256 == hashlib.sha256(data).hexdigest()


def test_bad_dates_are_warnings_not_failures(people):
    data = _bytes_with("CT_small.dcm", StudyDate="20261399", PatientBirthDate="notadate")
    _index(people.demo, _receive(people.demo, data))
    instance = Instance.objects.get(tenant=people.demo)
    study = Study.objects.get(tenant=people.demo)
    assert study.study_date is None and study.patient.patient_birth_date is None
    assert (
        "bad-date:StudyDate" in instance.warnings
        and "bad-date:PatientBirthDate" in instance.warnings
    )
    # Warnings name the attribute, never its value.
    assert not any("20261399" in w or "notadate" in w for w in instance.warnings)


def test_study_attributes_searchable_forms_are_accent_and_case_free(people):
    data = _bytes_with(
        "CT_small.dcm",
        PatientName="Müller^Zoë",
        ReferringPhysicianName="Ångström^Åsa",
        SpecificCharacterSet="ISO_IR 100",
    )
    _index(people.demo, _receive(people.demo, data))
    study = Study.objects.select_related("patient").get(tenant=people.demo)
    assert study.patient.patient_name_search == "MULLER^ZOE"
    assert study.referring_physician_name_search == "ANGSTROM^ASA"


def test_the_reconciler_requeues_a_forgotten_receipt_once_per_period(people):
    from datetime import timedelta

    from django.utils import timezone

    receipt = _receive(people.demo, Path(get_testdata_file("CT_small.dcm")).read_bytes())
    Receipt.objects.filter(pk=receipt.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    first = services.reconcile_receipts(older_than_seconds=60)
    second = services.reconcile_receipts(older_than_seconds=60)
    assert first["requeued"] == 1 and second["requeued"] == 0
    assert Receipt.objects.get(pk=receipt.pk).requeued_at is not None
