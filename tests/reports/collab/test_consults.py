"""Consults at the edge: a radiologist of another reading group, asked about one study of
demo-hospital, sees that study (reading room, DICOMweb QIDO and WADO, the viewer's sources) and
nothing else of the hospital, and nothing at all once the consult is revoked.

Bob (demo-readers) reads for demo-hospital; erin (night-readers) reads only CT for
second-hospital. Demo-hospital holds two real studies: a CT (the one asked about) and an MR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests.conftest import ingest_now
from tests.studies.test_cross_tenant_routes import CASES, INSTANCE, RETRIEVE, SEARCH, STORE

QIDO = {"HTTP_ACCEPT": "application/dicom+json"}


@dataclass
class Studies:
    consulted: Any  # work item of the CT
    other: Any  # work item of the MR
    ct: dict[str, str]
    mr: dict[str, str]


def _uids(path: str) -> dict[str, str]:
    ds = dcmread(path, stop_before_pixels=True)
    return {
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "instance": ds.SOPInstanceUID,
    }


@pytest.fixture
def studies(reading: Any) -> Studies:
    from studies.models import Study
    from studies.services import sweep_ready_studies
    from worklists.services import ensure_item

    demo = reading.people.demo
    ct, mr = get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")
    for path in (ct, mr):
        ingest_now(demo, [open(path, "rb").read()])
    sweep_ready_studies(now=timezone.now() + timedelta(hours=1))
    items = {}
    for name, path in (("ct", ct), ("mr", mr)):
        study = Study.objects.get(tenant=demo, study_instance_uid=_uids(path)["study"])
        ensured = ensure_item(study.pk)
        assert ensured is not None
        items[name] = ensured.item
    return Studies(items["ct"], items["mr"], _uids(ct), _uids(mr))


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ask(reading: Any, item: Any, **target: Any) -> Any:
    client = client_for(reading.bob)
    data = {"question": "Is this a subtle fracture?", **target}
    response = client.post(
        f"/reports/collab/items/{item.pk}/consults/", data, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200, response.content
    assert b"Consult asked of" in response.content, response.content
    from reports.models import Consult

    return Consult.objects.filter(work_item=item).latest("id")


def dicomweb(client: Client, path: str, **headers: Any) -> Any:
    return client.get(f"/t/demo-hospital/dicomweb/{path}", **headers)


def study_uids_found(client: Client, query: str = "studies") -> set[str]:
    response = dicomweb(client, query, **QIDO)
    assert response.status_code == 200, response.content
    return {row["0020000D"]["Value"][0] for row in response.json()}


def test_a_consultant_sees_the_one_study_and_nothing_else_until_revoked(reading, studies):
    from tenants.models import AuditAction, AuditEvent

    erin = client_for(reading.erin)
    ct, mr = studies.ct, studies.mr
    # Before: nothing of demo-hospital.
    assert erin.get(f"/worklist/items/{studies.consulted.pk}/").status_code == 404
    assert dicomweb(erin, "studies", **QIDO).status_code == 404

    consult = ask(reading, studies.consulted, consultant="erin")
    assert mail.outbox and mail.outbox[-1].to == ["erin@example.org"]
    assert "Consult requested" in mail.outbox[-1].subject
    assert "DOE" not in mail.outbox[-1].subject + mail.outbox[-1].body  # no patient data

    # The reading room, read-only: no claim button; the panel says why.
    page = erin.get(f"/worklist/items/{studies.consulted.pk}/")
    assert page.status_code == 200
    assert f"/worklist/items/{studies.consulted.pk}/claim".encode() not in page.content
    panel = erin.get(f"/reports/collab/items/{studies.consulted.pk}/panel/")
    assert panel.status_code == 200 and b"read-only" in panel.content
    assert b"Is this a subtle fracture?" in panel.content
    claim = erin.post(f"/worklist/items/{studies.consulted.pk}/claim")
    from worklists.models import WorkItem

    assert WorkItem.objects.get(pk=studies.consulted.pk).holder_id is None, claim
    # Nothing else of the hospital.
    assert erin.get(f"/worklist/items/{studies.other.pk}/").status_code == 404
    assert erin.get(f"/reports/collab/items/{studies.other.pk}/panel/").status_code == 404

    # DICOMweb: QIDO finds that study only, at every level; WADO retrieves it.
    assert study_uids_found(erin) == {ct["study"]}
    assert study_uids_found(erin, f"studies?StudyInstanceUID={mr['study']}") == set()
    assert study_uids_found(erin, f"studies?StudyInstanceUID={ct['study']},{mr['study']}") == {
        ct["study"]
    }
    series = dicomweb(erin, "series", **QIDO).json()
    assert {row["0020000E"]["Value"][0] for row in series} == {ct["series"]}
    instances = dicomweb(erin, "instances", **QIDO).json()
    assert {row["00080018"]["Value"][0] for row in instances} == {ct["instance"]}
    metadata = dicomweb(
        erin, f"studies/{ct['study']}/metadata", HTTP_ACCEPT="application/dicom+json"
    )
    assert metadata.status_code == 200
    assert ct["instance"] in b"".join(metadata.streaming_content).decode()
    frame = dicomweb(
        erin,
        f"studies/{ct['study']}/series/{ct['series']}/instances/{ct['instance']}/frames/1",
        HTTP_ACCEPT='multipart/related; type="application/octet-stream"; transfer-syntax=*',
    )
    assert frame.status_code == 200
    # Every route with the other study's UIDs: 404, or an empty search; never its UIDs.
    failures = []
    for name, methods in CASES.items():
        for method, (kind, template) in methods.items():
            if kind == STORE:
                continue
            path = template.replace("{i}", INSTANCE).format(**mr)
            response = erin.generic(method, f"/t/demo-hospital/dicomweb/{path}", **QIDO)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            leaked = any(uid.encode() in body for uid in mr.values())
            ok = response.status_code == 404 or (
                kind == SEARCH and response.status_code == 200 and response.json() == []
            )
            assert kind in (SEARCH, RETRIEVE)
            if leaked or not ok:
                failures.append(f"{method} {name}: {response.status_code} leaked={leaked}")
    assert not failures, failures
    # Read-only: no storing into the hospital.
    stow = erin.post(
        "/t/demo-hospital/dicomweb/studies",
        b"",
        content_type="multipart/related; boundary=x",
        HTTP_ACCEPT="application/dicom+json",
    )
    assert stow.status_code in (403, 404)
    # The viewer offers the hospital as a data source.
    config = erin.get("/viewer/app-config.js")
    assert b"/t/demo-hospital/dicomweb" in config.content
    # Every access is audited, and says it came through a consult.
    retrieved = AuditEvent.objects.filter(actor_user=reading.erin, action=AuditAction.WADO_RETRIEVE)
    assert retrieved.exists() and all(e.detail.get("via") == "consult" for e in retrieved)
    assert AuditEvent.objects.filter(
        action=AuditAction.CONSULT_REQUEST, detail__consult=consult.pk
    ).exists()

    # Revocation by the requester ends it all at once.
    bob = client_for(reading.bob)
    revoked = bob.post(f"/reports/collab/consults/{consult.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert revoked.status_code == 200 and b"revoked" in revoked.content
    assert erin.get(f"/worklist/items/{studies.consulted.pk}/").status_code == 404
    assert erin.get(f"/reports/collab/items/{studies.consulted.pk}/panel/").status_code == 404
    assert dicomweb(erin, "studies", **QIDO).status_code == 404
    assert dicomweb(erin, f"studies/{ct['study']}/metadata").status_code == 404
    assert b"/t/demo-hospital/" not in erin.get("/viewer/app-config.js").content
    assert AuditEvent.objects.filter(
        action=AuditAction.CONSULT_REVOKE, detail__consult=consult.pk
    ).exists()


def test_an_expired_consult_gives_no_access(reading, studies):
    from reports.models import Consult

    consult = ask(reading, studies.consulted, consultant="erin")
    Consult.objects.filter(pk=consult.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    erin = client_for(reading.erin)
    assert erin.get(f"/worklist/items/{studies.consulted.pk}/").status_code == 404
    assert dicomweb(erin, "studies", **QIDO).status_code == 404


def test_a_group_consult_goes_to_whoever_accepts_and_the_answer_reaches_the_requester(
    reading, studies
):
    from reports.models import Consult, Notification
    from tenants.models import AuditAction, AuditEvent, Role, User
    from tenants.services import add_membership

    hana = User.objects.create_user("hana", password=reading.password, email="hana@example.org")
    add_membership(user=hana, group=reading.night, role=Role.RADIOLOGIST)
    consult = ask(reading, studies.consulted, group="night-readers")
    for user in (reading.erin, hana):
        assert Notification.objects.filter(user=user, kind="consult_request").count() == 1
        assert client_for(user).get(f"/worklist/items/{studies.consulted.pk}/").status_code == 200

    erin = client_for(reading.erin)
    accepted = erin.post(f"/reports/collab/consults/{consult.pk}/accept/", HTTP_HX_REQUEST="true")
    assert b"You accepted the consult." in accepted.content
    # Hana loses the access with it; a second acceptance is refused.
    assert client_for(hana).get(f"/worklist/items/{studies.consulted.pk}/").status_code == 404
    again = erin.post(f"/reports/collab/consults/{consult.pk}/accept/", HTTP_HX_REQUEST="true")
    assert b"already taken" in again.content

    answer = erin.post(
        f"/reports/collab/items/{studies.consulted.pk}/comments/",
        {"body": "No fracture; a nutrient canal. @bob", "answers": consult.pk},
        HTTP_HX_REQUEST="true",
    )
    assert b"Answer sent." in answer.content
    consult.refresh_from_db()
    assert consult.status == "answered" and consult.consultant == reading.erin
    kinds = set(Notification.objects.filter(user=reading.bob).values_list("kind", flat=True))
    assert {"consult_accept", "consult_answer", "mention"} <= kinds
    assert AuditEvent.objects.filter(action=AuditAction.CONSULT_ACCEPT).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.CONSULT_ANSWER).count() == 1
    # Still open after the answer: the consultant keeps the study for follow-up questions.
    assert Consult.objects.get(pk=consult.pk).is_open()


def test_only_a_reader_may_ask_and_only_the_requester_or_an_admin_may_revoke(reading, studies):
    from reports.models import Consult

    # Erin cannot ask about a study she sees only through a consult.
    consult = ask(reading, studies.consulted, consultant="erin")
    erin = client_for(reading.erin)
    refused = erin.post(
        f"/reports/collab/items/{studies.consulted.pk}/consults/",
        {"question": "Third opinion?", "consultant": "fay"},
        HTTP_HX_REQUEST="true",
    )
    assert b"Only a radiologist who may read this study" in refused.content
    # The consultant cannot revoke; the hospital's admin can.
    not_hers = erin.post(f"/reports/collab/consults/{consult.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert b"Only the radiologist who asked" in not_hers.content
    assert Consult.objects.get(pk=consult.pk).status == "requested"
    alice = client_for(reading.people.alice)
    alice.post(f"/reports/collab/consults/{consult.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert Consult.objects.get(pk=consult.pk).status == "revoked"
    # Unknown consultants and empty questions get a message a person can act on.
    bob = client_for(reading.bob)
    unknown = bob.post(
        f"/reports/collab/items/{studies.consulted.pk}/consults/",
        {"question": "?", "consultant": "nobody"},
        HTTP_HX_REQUEST="true",
    )
    assert "No active radiologist is called “nobody”." in unknown.content.decode()
    empty = bob.post(
        f"/reports/collab/items/{studies.consulted.pk}/consults/",
        {"question": " ", "consultant": "erin"},
        HTTP_HX_REQUEST="true",
    )
    assert b"Write the question" in empty.content


def test_another_hospitals_admin_finds_no_consult_and_no_thread(reading, studies):
    consult = ask(reading, studies.consulted, consultant="erin")
    charlie = client_for(reading.people.charlie)
    item = studies.consulted.pk
    assert charlie.get(f"/reports/collab/items/{item}/panel/").status_code == 404
    assert (
        charlie.post(f"/reports/collab/items/{item}/comments/", {"body": "hi"}).status_code == 404
    )
    assert charlie.post(f"/reports/collab/consults/{consult.pk}/revoke/").status_code == 404
    assert charlie.post(f"/reports/collab/consults/{consult.pk}/accept/").status_code == 404
    assert charlie.get(f"/reports/collab/items/{item}/mentionable/?q=b").status_code == 404
