"""Critical results at the edge: flagged with an ACR category, communicated, acknowledged
through a link that names no patient, escalated once after the hospital's limit (the task is
given ``now``), listed on the dashboard, and invisible to another hospital."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core import mail
from django.test import Client
from django.utils import timezone

from tests.reports.collab.test_consults import client_for

JSON = "application/json"


def _flag(client: Client, item: Any, category: int = 1, **extra: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/reports/critical/items/{item.pk}/",
        {"category": category, "finding": "Free air under the diaphragm.", **extra},
        content_type=JSON,
    )
    assert response.status_code == 201, response.content
    return response.json()


def _link(client: Client, critical: dict[str, Any], **extra: Any) -> str:
    response = client.post(
        f"/api/reports/critical/{critical['id']}/communications/",
        {"method": "secure_link", "recipient_name": "Dr Welby", "recipient_role": "referring",
         "recipient_contact": "welby@example.org", **extra},
        content_type=JSON,
    )  # fmt: skip
    assert response.status_code == 201, response.content
    url = response.json()["ack_url"]
    assert url and "/reports/critical/ack/" in url
    return "/" + url.split("/", 3)[3]


def test_the_referrer_acknowledges_through_the_link_once(reading):
    from reports.models import CriticalResult
    from tenants.models import AuditAction, AuditEvent

    item = reading.item(reading.people.demo, patient_name="DOE^JANE", accession="ACC-CRIT-1")
    bob = client_for(reading.bob)
    critical = _flag(bob, item, recipient="referring physician")
    flagged = CriticalResult.objects.get(pk=critical["id"])
    assert flagged.due_at - flagged.flagged_at == timedelta(minutes=60)
    path = _link(bob, critical)
    # The link was e-mailed; neither subject nor body names the patient or the finding.
    sent = mail.outbox[-1]
    assert sent.to == ["welby@example.org"] and path in sent.body
    assert "DOE" not in sent.subject + sent.body and "Free air" not in sent.body

    anonymous = Client()
    page = anonymous.get(path)
    assert page.status_code == 200
    text = page.content.decode()
    assert "ACC-CRIT-1" in text and "Category 1" in text
    assert "DOE" not in text and "Free air" not in text and item.patient_identifier not in text
    assert page["Cache-Control"] == "no-store" and page["Referrer-Policy"] == "no-referrer"
    assert CriticalResult.objects.get(pk=critical["id"]).acknowledged_at is None

    done = anonymous.post(path, {"name": "Marcus Welby"})
    assert done.status_code == 200 and "Thank you: acknowledged." in done.content.decode()
    first = CriticalResult.objects.get(pk=critical["id"])
    assert first.acknowledged_at is not None and first.acknowledged_name == "Marcus Welby"
    # Again, by the page and by the API: nothing changes.
    again = anonymous.post(path, {"name": "Someone else"})
    assert "Thank you" not in again.content.decode() and "Marcus Welby" in again.content.decode()
    token = path.rstrip("/").rsplit("/", 1)[1]
    api = anonymous.post(f"/api/reports/critical/ack/{token}/", {}, content_type=JSON)
    assert api.status_code == 200 and api.json()["first"] is False
    assert CriticalResult.objects.get(pk=critical["id"]).acknowledged_at == first.acknowledged_at
    acks = AuditEvent.objects.filter(action=AuditAction.CRITICAL_ACKNOWLEDGE).order_by("id")
    assert [e.detail["first"] for e in acks] == [True, False, False]
    assert AuditEvent.objects.filter(action=AuditAction.RESULT_VIEW).count() == 1
    assert (
        reading.bob.notifications.filter(kind="critical", text__startswith="Acknowledged").count()
        == 1
    )
    # Off the dashboard once acknowledged.
    assert bob.get("/api/reports/critical/open/").json() == []


def test_a_bad_link_is_not_found_and_says_what_to_do(people):
    page = Client().get("/reports/critical/ack/not-a-token/")
    assert page.status_code == 404 and "call the radiologist" in page.content.decode()
    api = Client().post("/api/reports/critical/ack/not-a-token/", {}, content_type=JSON)
    assert api.status_code == 404


def test_escalated_once_after_the_hospitals_limit(reading):
    from reports.critical import services
    from reports.critical.tasks import escalate_critical
    from reports.models import CriticalResult, CriticalSettings
    from tenants import audit
    from tenants.models import AuditAction, AuditEvent

    demo = reading.people.demo
    CriticalSettings.objects.create(
        tenant=demo, category2_minutes=120,
        escalation_contacts=[{"name": "Duty manager", "email": "duty@example.org"}],
    )  # fmt: skip
    flagged_at = timezone.now() - timedelta(days=1)
    item = reading.item(demo)
    critical = services.flag(
        item=item, user=reading.bob, actor=audit.Actor.for_user(reading.bob), category=2,
        finding="Pulmonary embolism.", now=flagged_at,
    )  # fmt: skip
    acknowledged = services.flag(
        item=reading.item(demo), user=reading.bob, actor=audit.Actor.for_user(reading.bob),
        category=1, finding="Pneumothorax.", now=flagged_at,
    )  # fmt: skip
    services.communicate(
        critical=acknowledged, user=reading.bob, actor=audit.Actor.for_user(reading.bob),
        method="phone", recipient_name="Dr Welby", confirmed=True, now=flagged_at,
    )  # fmt: skip
    mail.outbox.clear()

    assert escalate_critical(now=flagged_at + timedelta(minutes=119)) == 0
    assert CriticalResult.objects.get(pk=critical.pk).escalated_at is None
    escalated_at = flagged_at + timedelta(minutes=121)
    assert escalate_critical(now=escalated_at) == 1
    assert escalate_critical(now=escalated_at + timedelta(minutes=5)) == 0
    assert escalate_critical(now=(escalated_at + timedelta(hours=5)).isoformat()) == 0
    assert CriticalResult.objects.get(pk=critical.pk).escalated_at == escalated_at
    assert CriticalResult.objects.get(pk=acknowledged.pk).escalated_at is None
    assert AuditEvent.objects.filter(action=AuditAction.CRITICAL_ESCALATE).count() == 1
    # The hospital's admin and the radiologist are notified once; the contact e-mailed once.
    alice = reading.people.alice
    assert alice.notifications.filter(kind="critical_escalation").count() == 1
    assert reading.bob.notifications.filter(kind="critical_escalation").count() == 1
    assert [m.to for m in mail.outbox].count(["duty@example.org"]) == 1
    assert "2 hours" in alice.notifications.get(kind="critical_escalation").text

    # The dashboard: the escalated one first, with its age against its limit.
    fresh = _flag(client_for(reading.bob), reading.item(demo), category=3)
    page = client_for(alice).get("/reports/critical/").content.decode()
    assert page.index("Escalated") < page.index("Waiting")
    listed = client_for(alice).get("/api/reports/critical/open/").json()
    assert [c["id"] for c in listed] == [critical.pk, fresh["id"]]
    assert "of 2 h" in page


def test_the_hospital_sets_its_own_limits(reading):
    alice, bob = client_for(reading.people.alice), client_for(reading.bob)
    url = "/api/reports/critical/settings/demo-hospital/"
    assert alice.get(url).json()["category1_minutes"] == 60
    body = {"category1_minutes": 15, "category2_minutes": 240, "category3_minutes": 2880,
            "escalation_contacts": [{"name": "Duty", "email": "duty@example.org"}]}  # fmt: skip
    refused = bob.put(url, body, content_type=JSON)
    assert refused.status_code == 403 and "admins" in refused.json()["detail"]
    assert alice.put(url, body, content_type=JSON).status_code == 200
    critical = _flag(bob, reading.item(reading.people.demo), category=1)
    from reports.models import CriticalResult

    found = CriticalResult.objects.get(pk=critical["id"])
    assert found.due_at - found.flagged_at == timedelta(minutes=15)
    bad = alice.put(url, {**body, "category1_minutes": 0}, content_type=JSON)
    assert bad.status_code == 400 and "category1_minutes" in bad.json()["detail"]


def test_the_panel_flags_records_and_shows_the_link_once(reading):
    item = reading.item(reading.people.demo)
    bob = client_for(reading.bob)
    panel = f"/reports/critical/items/{item.pk}/panel/"
    assert "No critical result" in bob.get(panel).content.decode()
    flagged = bob.post(
        f"/reports/critical/items/{item.pk}/flag/",
        {"category": "2", "finding": "Aortic dissection."},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Flagged critical" in flagged and "Aortic dissection." in flagged
    from reports.models import CriticalResult

    critical = CriticalResult.objects.get(work_item=item)
    sent = bob.post(
        f"/reports/critical/{critical.pk}/communicate/",
        {"method": "secure_link", "recipient_name": "Dr Welby"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    link = re.search(r'value="(http[^"]+/reports/critical/ack/[^"]+)"', sent)
    assert link, sent
    assert link.group(1) not in bob.get(panel).content.decode()  # shown once
    missing = bob.post(
        f"/reports/critical/{critical.pk}/communicate/",
        {"method": "phone", "recipient_name": ""},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Name the person who was told." in missing
    wrong = bob.post(
        f"/reports/critical/items/{item.pk}/flag/",
        {"category": "4", "finding": "x"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "ACR category is 1 (minutes), 2 (hours) or 3 (days)" in wrong


def test_another_hospital_finds_no_critical_result(reading):
    item = reading.item(reading.people.demo)
    critical = _flag(client_for(reading.bob), item)
    charlie = client_for(reading.people.charlie)
    assert charlie.get(f"/api/reports/critical/items/{item.pk}/").status_code == 404
    assert charlie.post(
        f"/api/reports/critical/items/{item.pk}/", {"category": 1, "finding": "x"},
        content_type=JSON,
    ).status_code == 404  # fmt: skip
    assert (
        charlie.post(
            f"/api/reports/critical/{critical['id']}/communications/",
            {"method": "phone", "recipient_name": "x"},
            content_type=JSON,
        ).status_code
        == 404
    )
    assert charlie.get(f"/reports/critical/items/{item.pk}/panel/").status_code == 404
    assert charlie.post(f"/reports/critical/{critical['id']}/communicate/").status_code == 404
    assert charlie.get("/api/reports/critical/open/").json() == []
    assert "No open critical results" in charlie.get("/reports/critical/").content.decode()
    assert charlie.get("/api/reports/critical/settings/demo-hospital/").status_code == 404
    # A consultant sees the results but neither flags nor records.
    from reports.collab import services as collab
    from tenants import audit

    erin = client_for(reading.erin)
    assert erin.get(f"/api/reports/critical/items/{item.pk}/").status_code == 404
    collab.request_consult(
        item=item, user=reading.bob, actor=audit.Actor.for_user(reading.bob),
        question="Do you agree?", consultant=reading.erin,
    )  # fmt: skip
    assert [c["id"] for c in erin.get(f"/api/reports/critical/items/{item.pk}/").json()] == [
        critical["id"]
    ]
    flag = erin.post(
        f"/api/reports/critical/items/{item.pk}/", {"category": 1, "finding": "x"},
        content_type=JSON,
    )  # fmt: skip
    assert flag.status_code == 403
    record = erin.post(
        f"/api/reports/critical/{critical['id']}/communications/",
        {"method": "phone", "recipient_name": "x"},
        content_type=JSON,
    )
    assert record.status_code == 403
