"""A study becomes ready once, after its tenant's quiet period, and says so exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pydicom.data import get_testdata_file

from studies import services
from studies.models import Receipt, ReceiptSource, ReceiptStatus, Study, StudyState
from studies.signals import study_ready
from tenants import audit
from tenants.models import AuditAction, AuditEvent


@pytest.fixture
def ready_calls():
    calls = []

    def receiver(sender, **kwargs):  # noqa: ANN001, ANN003
        calls.append(kwargs)

    study_ready.connect(receiver)
    yield calls
    study_ready.disconnect(receiver)


def _ingest(tenant, name: str = "CT_small.dcm") -> Receipt:  # noqa: ANN001
    data = open(get_testdata_file(name), "rb").read()
    stored = services.store_bytes(tenant=tenant, data=data)
    [receipt] = services.record_receipts(
        tenant=tenant,
        context=services.ReceiptContext(source=ReceiptSource.INTERNAL, actor=audit.Actor.system()),
        objects=[stored],
        enqueue=lambda *_: None,
    )
    return receipt


@pytest.mark.smoke
def test_a_study_becomes_ready_after_the_quiet_period_and_fires_once(people, ready_calls):
    receipt = _ingest(people.demo)
    services.index_receipts(tenant_id=people.demo.id, receipt_ids=[receipt.id])
    study = Study.objects.get()
    assert study.state == StudyState.RECEIVING
    assert services.sweep_ready_studies(now=study.last_instance_at + timedelta(seconds=59)) == []
    later = study.last_instance_at + timedelta(seconds=61)
    assert services.sweep_ready_studies(now=later) == [study.id]
    assert services.sweep_ready_studies(now=later + timedelta(seconds=5)) == []
    study.refresh_from_db()
    assert (
        study.state == StudyState.READY
        and study.state_changed_at == later
        and study.first_ready_at == later
    )
    assert (
        len(ready_calls) == 1
        and ready_calls[0]["study_id"] == study.id
        and ready_calls[0]["first_time"]
    )
    assert AuditEvent.objects.filter(action=AuditAction.STUDY_READY).count() == 1


def test_late_instances_reopen_a_ready_study_which_becomes_ready_again(people, ready_calls):
    first = _ingest(people.demo, "CT_small.dcm")
    services.index_receipts(tenant_id=people.demo.id, receipt_ids=[first.id])
    study = Study.objects.get()
    services.sweep_ready_studies(now=study.last_instance_at + timedelta(seconds=61))
    # A second instance of the same study arrives after the study was ready.
    import io

    import pydicom

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".2"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    stored = services.store_bytes(tenant=people.demo, data=buffer.getvalue())
    [second] = services.record_receipts(
        tenant=people.demo,
        context=services.ReceiptContext(source=ReceiptSource.INTERNAL, actor=audit.Actor.system()),
        objects=[stored],
        enqueue=lambda *_: None,
    )
    services.index_receipts(tenant_id=people.demo.id, receipt_ids=[second.id])
    study.refresh_from_db()
    assert study.state == StudyState.RECEIVING and study.first_ready_at is not None
    services.sweep_ready_studies(now=study.last_instance_at + timedelta(seconds=61))
    assert [c["first_time"] for c in ready_calls] == [True, False]


def test_a_backlog_of_unindexed_objects_holds_readiness(people):
    indexed = _ingest(people.demo)
    services.index_receipts(tenant_id=people.demo.id, receipt_ids=[indexed.id])
    backlog = _ingest(people.demo, "MR_small.dcm")
    Receipt.objects.filter(pk=backlog.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    study = Study.objects.get()
    assert services.sweep_ready_studies(now=study.last_instance_at + timedelta(seconds=120)) == []
    services.index_receipts(tenant_id=people.demo.id, receipt_ids=[backlog.id])
    assert Receipt.objects.get(pk=backlog.pk).status == ReceiptStatus.INDEXED


def test_the_quiet_period_is_the_tenants_own(people):
    people.second.quiet_period_seconds = 5
    people.second.save()
    for tenant in (people.demo, people.second):
        receipt = _ingest(tenant)
        services.index_receipts(tenant_id=tenant.id, receipt_ids=[receipt.id])
    now = timezone.now() + timedelta(seconds=10)
    ready = services.sweep_ready_studies(now=now)
    assert ready == [Study.objects.get(tenant=people.second).id]
