"""Server-rendered pages: login, and a home page that shows each readable hospital's studies."""

from __future__ import annotations

import pytest
from django.test import Client
from pydicom.data import get_testdata_file

from studies import services
from studies.models import ReceiptSource
from tenants import audit
from tenants.models import AuditAction, AuditEvent


def _ingest(tenant) -> None:  # noqa: ANN001
    stored = services.store_bytes(
        tenant=tenant, data=open(get_testdata_file("CT_small.dcm"), "rb").read()
    )
    [receipt] = services.record_receipts(
        tenant=tenant,
        context=services.ReceiptContext(source=ReceiptSource.INTERNAL, actor=audit.Actor.system()),
        objects=[stored],
        enqueue=lambda *_: None,
    )
    services.index_receipts(tenant_id=tenant.id, receipt_ids=[receipt.id])


@pytest.mark.smoke
def test_home_requires_login_and_login_is_audited(people):
    client = Client()
    assert client.get("/").status_code == 302
    bad = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert bad.status_code == 200 and b"didn't match" in bad.content
    assert AuditEvent.objects.filter(
        action=AuditAction.LOGIN_FAILED, detail__username="alice"
    ).exists()
    good = client.post("/login/", {"username": "alice", "password": people.password})
    assert good.status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor_user=people.alice).exists()


@pytest.mark.smoke
def test_home_lists_only_readable_hospitals_and_audits_what_it_showed(people):
    _ingest(people.demo)
    alice, charlie = Client(), Client()
    alice.force_login(people.alice)
    charlie.force_login(people.charlie)
    page = alice.get("/").content.decode()
    assert "Demo Hospital" in page and "Second Hospital" not in page
    assert "CompressedSamples^CT1" in page  # the patient name in pydicom's CT_small.dcm
    assert "CompressedSamples^CT1" not in charlie.get("/").content.decode()
    shown = AuditEvent.objects.get(action=AuditAction.STUDY_LIST, actor_user=people.alice)
    assert shown.tenant == people.demo and len(shown.detail["studies"]) == 1
