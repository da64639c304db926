"""A hospital admin reads and exports their own audit log (page, API, CSV / DICOM XML / FHIR)
and asks which patients a user or a token accessed. Another hospital's rows never appear."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from django.utils import timezone

from tenants import audit
from tenants.auditlog import queries
from tenants.models import AuditAction, AuditEvent

SHARED_UID = "1.2.826.0.1.3680043.8.498.1"  # both hospitals sent a study with this UID


@pytest.fixture
def log(people, token_for):  # noqa: ANN001, ANN201
    from studies.models import Patient, Study

    now = timezone.now()
    demo, second = people.demo, people.second
    p1 = Patient.objects.create(tenant=demo, patient_id="PID1", patient_name="ONE^PATIENT")
    p2 = Patient.objects.create(tenant=demo, patient_id="PID2", patient_name="TWO^PATIENT")
    p3 = Patient.objects.create(tenant=demo, patient_id="PID3", patient_name="THREE^PATIENT")
    other = Patient.objects.create(tenant=second, patient_id="PID1", patient_name="OTHER^ONE")
    Study.objects.create(tenant=demo, patient=p1, study_instance_uid=SHARED_UID)
    Study.objects.create(tenant=second, patient=other, study_instance_uid=SHARED_UID)
    token_text = token_for(people.bob)
    from tenants.models import ApiToken

    token = ApiToken.objects.get(prefix=token_text.split("_")[1])
    bob = audit.Actor.for_user(people.bob, address="192.0.2.7")
    by_token = audit.Actor.for_user(people.bob, token=token)
    rows = [
        # bob, in the window: P1 through the study UID only, P2 directly
        audit.build(action=AuditAction.STUDY_VIEW, actor=bob, tenant=demo,
                    study_instance_uid=SHARED_UID),
        audit.build(action=AuditAction.WADO_RETRIEVE, actor=by_token, tenant=demo,
                    patient_ref=p2.pk),
        # bob, long ago: P3
        audit.build(action=AuditAction.STUDY_VIEW, actor=bob, tenant=demo, patient_ref=p3.pk),
        # the same UID at the other hospital: its own patient, never demo's
        audit.build(action=AuditAction.STUDY_VIEW, actor=bob, tenant=second,
                    study_instance_uid=SHARED_UID, patient_ref=other.pk),
        audit.build(action=AuditAction.ECHO, actor=audit.Actor.for_ae("SECONDONLY"),
                    tenant=second),
    ]  # fmt: skip
    rows[2].occurred_at = now - timedelta(days=30)
    audit.record_many(rows)
    return {"now": now, "token": token, "people": people, "since": now - timedelta(days=1)}


def test_which_patients_a_user_or_token_accessed_is_one_statement(log, django_assert_num_queries):
    people, since = log["people"], log["since"]
    with django_assert_num_queries(1):
        patients = list(
            queries.patients_accessed(people.demo, user=people.bob, since=since)
            .values_list("patient_id", flat=True)
        )  # fmt: skip
    assert patients == ["PID1", "PID2"]  # distinct, this hospital's, within the window
    everything = queries.patients_accessed(people.demo, user=people.bob)
    assert sorted(everything.values_list("patient_id", flat=True)) == ["PID1", "PID2", "PID3"]
    by_token = queries.patients_accessed(people.demo, token_prefix=log["token"].prefix)
    assert list(by_token.values_list("patient_id", flat=True)) == ["PID2"]
    # The other hospital sees its own patient for the same UID.
    theirs = queries.patients_accessed(people.second, user=people.bob)
    assert list(theirs.values_list("patient_name", flat=True)) == ["OTHER^ONE"]


def test_admin_reads_filters_and_pages_only_their_own_log(log, client):
    people = log["people"]
    client.force_login(people.alice)
    page = client.get("/audit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Audit log — Demo Hospital" in html
    assert "SECONDONLY" not in html  # the other hospital's row
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_VIEW, tenant=people.demo).exists()

    filtered = client.post("/audit/", {"patient_id": "PID1"}).content.decode()
    assert SHARED_UID in filtered and "PID1" in filtered
    assert "PID2" not in filtered and "PID3" not in filtered
    viewed = AuditEvent.objects.filter(action=AuditAction.AUDIT_VIEW).order_by("-id").first()
    assert viewed.detail["filters"] == ["patient_id"]  # which filters, never their values

    accessed = client.post("/audit/", {"user": "bob", "since": log["since"].date().isoformat()})
    section = accessed.content.decode().split('id="patients-accessed"')[1].split("</section>")[0]
    assert "PID1" in section and "PID2" in section and "PID3" not in section

    bad = client.post("/audit/", {"since": "yesterday"})
    assert bad.status_code == 400
    assert "enter a date such as 2026-11-29" in bad.content.decode()

    # Another hospital's log is not found; a non-admin is told who may read it.
    assert client.get("/audit/", {"tenant": "second-hospital"}).status_code == 404
    client.force_login(people.charlie)
    theirs = client.get("/audit/").content.decode()
    assert "SECONDONLY" in theirs and "Second Hospital" in theirs
    client.force_login(people.bob)
    refused = client.get("/audit/")
    assert refused.status_code == 403
    assert "Only a hospital&#x27;s admins" in refused.content.decode()


def test_exports_speak_csv_dicom_and_fhir_and_are_audited(log, client):
    people = log["people"]
    client.force_login(people.alice)
    filters = {"user": "bob", "since": log["since"].date().isoformat()}

    response = client.post("/audit/export/csv/", filters)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="audit-demo-hospital.csv"'
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(r["patient_id"] for r in table) == ["PID1", "PID2"]
    assert {r["action"] for r in table} == {"study.view", "dicomweb.retrieve"}

    xml = client.post("/audit/export/dicom/", filters)
    assert xml.status_code == 200
    root = ET.fromstring(xml.content)
    messages = root.findall("AuditMessage")
    assert len(messages) == 2
    view = next(
        m for m in messages if m.find("EventIdentification/EventID").get("csd-code") == "110103"
    )
    assert view.find("EventIdentification").get("EventActionCode") == "R"
    assert view.find("EventIdentification").get("EventOutcomeIndicator") == "0"
    assert view.find("ActiveParticipant").get("UserID") == "bob"
    assert view.find("ActiveParticipant").get("NetworkAccessPointID") == "192.0.2.7"
    objects = {
        o.get("ParticipantObjectTypeCodeRole"): o.get("ParticipantObjectID")
        for o in view.findall("ParticipantObjectIdentification")
    }
    assert objects == {"1": "PID1", "3": SHARED_UID}
    retrieve = next(m for m in messages if m is not view)
    assert retrieve.find("EventIdentification/EventID").get("csd-code") == "110104"
    assert retrieve.find("ActiveParticipant").get("AlternativeUserID").startswith("token:")

    bundle = json.loads(client.post("/audit/export/fhir/", filters).content)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    events = [e["resource"] for e in bundle["entry"]]
    assert {e["resourceType"] for e in events} == {"AuditEvent"}
    assert {e["type"]["code"] for e in events} == {"110103", "110104"}
    assert all(e["source"]["site"] == "demo-hospital" for e in events)
    patients = {
        ent["what"]["identifier"]["value"]
        for e in events
        for ent in e.get("entity", [])
        if ent["role"]["code"] == "1"
    }
    assert patients == {"PID1", "PID2"}

    exported = AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORT, tenant=people.demo)
    assert sorted(e.detail["format"] for e in exported) == ["csv", "dicom", "fhir"]
    assert all(e.actor_user_id == people.alice.pk for e in exported)
    # The other hospital's admin exports their rows only.
    client.force_login(people.charlie)
    theirs = client.post("/audit/export/csv/").content.decode()
    assert "SECONDONLY" in theirs and "PID2" not in theirs


def test_api_for_events_exports_and_patients_accessed(log, client, token_for):
    people = log["people"]
    alice = {"HTTP_AUTHORIZATION": f"Bearer {token_for(people.alice)}"}
    since = log["since"].isoformat()

    events = client.get("/api/audit/events/", {"user": "bob"}, **alice)
    assert events.status_code == 200
    body = events.json()
    assert body["count"] == 3
    assert all(r["user"] == "bob" for r in body["results"])
    assert "PID1" in {r["patient_id"] for r in body["results"]}

    patients = client.get("/api/audit/patients/", {"user": "bob", "since": since}, **alice)
    assert [p["patient_id"] for p in patients.json()] == ["PID1", "PID2"]
    missing = client.get("/api/audit/patients/", **alice)
    assert missing.status_code == 400 and "Name a user" in missing.json()["detail"]

    fhir = client.get("/api/audit/export/fhir/", {"user": "bob", "since": since}, **alice)
    assert fhir.status_code == 200 and fhir["Content-Type"].startswith("application/fhir+json")
    assert len(json.loads(fhir.content)["entry"]) == 2

    bad = client.get("/api/audit/events/", {"until": "soon"}, **alice)
    assert bad.status_code == 400 and "until" in bad.json()["detail"]
    assert (
        client.get("/api/audit/events/", {"tenant": "second-hospital"}, **alice).status_code == 404
    )
    bob = {"HTTP_AUTHORIZATION": f"Bearer {token_for(people.bob)}"}
    assert client.get("/api/audit/events/", **bob).status_code == 403
    token_rows = AuditEvent.objects.filter(action=AuditAction.AUDIT_VIEW, actor_token__isnull=False)
    assert token_rows.exists()
