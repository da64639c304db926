"""Share links over HTTP: creation, the second factor and its lock, the link's DICOMweb, expiry,
revocation, the rate limit, the download, and tenant isolation."""

from __future__ import annotations

import datetime
import html
import io
import json
import re
import zipfile
from typing import Any

import pydicom
import pytest
from django.test import Client
from django.utils import timezone
from pydicom.data import get_testdata_file

from studies.models import Study
from studies.sharing import services
from studies.sharing.models import ShareLink, SharePolicy
from tenants import audit
from tenants.models import AuditAction, AuditEvent, Outcome, Role
from tenants.services import add_membership
from tests.conftest import ingest_now

CT_SMALL_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
MR_SMALL_STUDY = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
PIN = "482913"
DICOM_JSON = "application/dicom+json"


def part10(name: str, **changes: str) -> bytes:
    ds = pydicom.dcmread(get_testdata_file(name))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def studies(people: Any) -> None:
    ingest_now(people.demo, [part10("CT_small.dcm", PatientBirthDate="19600214")])
    ingest_now(people.demo, [part10("MR_small.dcm")])
    # The second hospital sent the same CT under the same UIDs, for another patient.
    ingest_now(people.second, [part10("CT_small.dcm", PatientName="OTHER^HOSPITAL")])


def staff(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def create(client: Client, slug: str = "demo-hospital", **fields: Any) -> tuple[Any, str]:
    data = {"studies": CT_SMALL_STUDY, "days": "7", "second_factor": "pin", "pin": PIN}
    data.update(fields)
    response = client.post(f"/s/t/{slug}/new/", data)
    if response.status_code != 201:
        return response, ""
    match = re.search(r'id="share-address" readonly size="90" value="([^"]+)"', response.text)
    assert match, response.text[:500]
    address = html.unescape(match.group(1))
    return response, address.split("/s/", 1)[1].strip("/")


def unlock(client: Client, token: str, answer: str = PIN) -> Any:
    return client.post(f"/s/{token}/", {"answer": answer})


def dicomweb(client: Client, token: str, path: str) -> Any:
    return client.get(f"/s/{token}/dicomweb/{path}", HTTP_ACCEPT=DICOM_JSON)


def test_a_reader_creates_a_link_whose_token_is_shown_once_and_stored_hashed(people, studies):
    for user in (people.alice, people.bob):  # the hospital's admin, a contracted radiologist
        response, token = create(staff(user), note="Dr Grey, second opinion")
        assert response.status_code == 201 and len(token) >= 40
        link = ShareLink.objects.get(token_sha256=services.token_hash(token))
        assert token not in json.dumps(
            [f.value_from_object(link) for f in link._meta.fields], default=str
        )
        assert link.expires_at - link.created_at == datetime.timedelta(days=7)
        issued = AuditEvent.objects.filter(action=AuditAction.SHARE_CREATE, detail__share=link.pk)
        assert issued.get().study_instance_uid == CT_SMALL_STUDY
        assert issued.get().actor_user == user


def test_bad_requests_to_create_say_what_to_change(people, studies):
    alice = staff(people.alice)
    SharePolicy.objects.create(tenant=people.demo, max_days=14)
    cases = [
        ({"days": "15"}, "from 1 to 14 days"),
        ({"pin": "12"}, "6 to 12 digits"),
        ({"studies": "1.2.3.4"}, "not in this hospital"),
        ({"studies": MR_SMALL_STUDY, "second_factor": "birth_date"}, "date of birth is not recorded"),
    ]  # fmt: skip
    for fields, message in cases:
        response, token = create(alice, **fields)
        assert response.status_code == 400 and not token
        assert message in response.text
    assert not ShareLink.objects.exists()


def test_a_wrong_pin_counts_and_the_limit_locks_the_link_for_good(people, studies):
    _, token = create(staff(people.alice))
    holder = Client()
    page = holder.get(f"/s/{token}/")
    assert page.status_code == 200 and "Enter the PIN" in page.text
    # The token is in the path: kept out of caches and of other sites' Referer.
    assert page["Cache-Control"] == "no-store" and page["Referrer-Policy"] == "same-origin"
    assert "CompressedSamples" not in page.text and CT_SMALL_STUDY not in page.text
    for left in (4, 3, 2, 1):
        wrong = unlock(holder, token, "000000")
        assert wrong.status_code == 400
        assert f"{left} attempt" in wrong.text
    locked = unlock(holder, token, "000000")
    assert locked.status_code == 410 and "locked" in locked.text
    # Now even the right PIN, from any browser, opens nothing.
    for client in (holder, Client()):
        assert unlock(client, token).status_code == 410
        assert dicomweb(client, token, "studies").status_code == 410
    events = AuditEvent.objects.filter(
        action__in=[AuditAction.ACCESS_DENIED, AuditAction.SHARE_LOCKED], outcome=Outcome.FAILURE
    )
    assert events.filter(detail__event="share.wrong_factor").count() == 4
    assert events.filter(detail__event="share.locked").count() == 1
    assert events.filter(detail__event="share.refused", detail__status="locked").count() >= 2
    assert ShareLink.objects.get().locked_at is not None


def test_the_right_pin_opens_the_studies_in_a_read_only_viewer_over_the_links_dicomweb(
    people, studies
):
    _, token = create(staff(people.alice))
    holder = Client()
    assert dicomweb(holder, token, "studies").status_code == 401  # the PIN first
    opened = unlock(holder, token)
    assert opened.status_code == 302
    page = holder.get(f"/s/{token}/")
    assert page.status_code == 200 and "Open in the viewer" in page.text
    assert "Download" not in page.text  # view-only
    launch = holder.get("/viewer/viewer", {"StudyInstanceUIDs": CT_SMALL_STUDY, "share": token})
    assert launch.status_code == 200
    assert f'src="/s/{token}/app-config.js"' in launch.text
    config = holder.get(f"/s/{token}/app-config.js").text
    assert f"/s/{token}/dicomweb" in config
    assert '"dicomUploadEnabled": false' in config and "/t/demo-hospital" not in config
    # The link's DICOMweb answers its study, and nothing else of the hospital.
    found = dicomweb(holder, token, "studies")
    assert found.status_code == 200
    assert [s["0020000D"]["Value"][0] for s in found.json()] == [CT_SMALL_STUDY]
    asked_other = holder.get(
        f"/s/{token}/dicomweb/studies", {"StudyInstanceUID": MR_SMALL_STUDY}, HTTP_ACCEPT=DICOM_JSON
    )
    assert asked_other.json() == []
    assert dicomweb(holder, token, f"studies/{MR_SMALL_STUDY}/metadata").status_code == 404
    metadata = b"".join(
        dicomweb(holder, token, f"studies/{CT_SMALL_STUDY}/metadata").streaming_content
    )
    assert (
        f"/s/{token}/dicomweb/studies/".encode() in metadata and b"/t/demo-hospital" not in metadata
    )
    stow = holder.post(
        f"/s/{token}/dicomweb/studies", b"", content_type="multipart/related; boundary=x"
    )
    assert stow.status_code == 405
    # A launch naming a study the link does not share opens nothing.
    other = holder.get("/viewer/viewer", {"StudyInstanceUIDs": MR_SMALL_STUDY, "share": token})
    assert other.status_code == 404 and "app-config" not in other.text
    # Audited: the unlock, the page, the viewer, and the DICOMweb reads, all as the link.
    link = ShareLink.objects.get()
    via = AuditEvent.objects.filter(detail__via="share", detail__share=link.pk, tenant=people.demo)
    assert via.filter(action=AuditAction.SHARE_OPEN, detail__event="share.unlock").exists()
    assert via.filter(action=AuditAction.SHARE_OPEN, study_instance_uid=CT_SMALL_STUDY).exists()
    assert via.filter(action=AuditAction.VIEWER_OPEN, study_instance_uid=CT_SMALL_STUDY).exists()
    assert via.filter(action=AuditAction.QIDO_QUERY).exists()
    assert via.filter(action=AuditAction.WADO_RETRIEVE, study_instance_uid=CT_SMALL_STUDY).exists()
    assert ShareLink.objects.get().accesses >= 8


def test_the_patients_birth_date_opens_a_link_made_with_it(people, studies):
    _, token = create(staff(people.alice), second_factor="birth_date", pin="")
    holder = Client()
    assert "date of birth" in holder.get(f"/s/{token}/").text
    assert unlock(holder, token, "1960-02-15").status_code == 400
    assert unlock(holder, token, "1960-02-14").status_code == 302
    assert dicomweb(holder, token, "studies").status_code == 200


def test_a_replayed_expired_token_is_gone_and_audited(people, studies):
    study = Study.objects.get(tenant=people.demo, study_instance_uid=CT_SMALL_STUDY)
    created = services.create_share(
        tenant=people.demo,
        actor=audit.Actor.for_user(people.alice),
        studies=[study],
        now=timezone.now() - datetime.timedelta(days=8),
    )
    holder = Client()
    page = holder.get(f"/s/{created.token}/")
    assert page.status_code == 410 and "expired" in page.text
    assert "CompressedSamples" not in page.text and CT_SMALL_STUDY not in page.text
    assert dicomweb(holder, created.token, "studies").status_code == 410
    assert holder.get(f"/s/{created.token}/app-config.js").status_code == 404
    refused = AuditEvent.objects.filter(
        action=AuditAction.ACCESS_DENIED, detail__event="share.refused", detail__status="expired"
    )
    assert refused.count() == 3 and refused.first().tenant == people.demo
    # A token that never existed: 404, the same page.
    unknown = holder.get("/s/" + "x" * 43 + "/")
    assert unknown.status_code == 404 and "no such link" in unknown.text


def test_a_revoked_link_is_dead_everywhere_and_the_admin_sees_it(people, studies):
    _, token = create(staff(people.bob), second_factor="none", pin="")
    holder = Client()
    assert holder.get(f"/s/{token}/").status_code == 200
    assert dicomweb(holder, token, "studies").status_code == 200
    alice = staff(people.alice)
    listing = alice.get("/s/t/demo-hospital/")
    assert listing.status_code == 200 and "active" in listing.text and "bob" in listing.text
    link = ShareLink.objects.get()
    assert alice.post(f"/s/t/demo-hospital/{link.pk}/revoke/").status_code == 302
    assert holder.get(f"/s/{token}/").status_code == 410
    assert dicomweb(holder, token, "studies").status_code == 410
    assert dicomweb(holder, token, f"studies/{CT_SMALL_STUDY}/metadata").status_code == 410
    assert (
        holder.get(
            "/viewer/viewer", {"StudyInstanceUIDs": CT_SMALL_STUDY, "share": token}
        ).status_code
        == 410
    )
    assert "revoked" in alice.get("/s/t/demo-hospital/").text
    assert AuditEvent.objects.filter(
        action=AuditAction.SHARE_REVOKE, detail__event="share.revoke", actor_user=people.alice
    ).exists()


def test_too_many_requests_on_one_link_are_refused_with_429(people, studies):
    SharePolicy.objects.create(tenant=people.demo, requests_per_minute=3)
    _, token = create(staff(people.alice), second_factor="none", pin="")
    holder = Client()
    answers = [dicomweb(holder, token, "studies").status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    page = holder.get(f"/s/{token}/")
    assert page.status_code == 429 and page["Retry-After"] == "60"


def test_a_download_link_gives_a_zip_of_the_dicom_files_and_a_view_only_link_none(people, studies):
    alice = staff(people.alice)
    _, token = create(alice, studies=f"{CT_SMALL_STUDY} {MR_SMALL_STUDY}", allow_download="on")
    holder = Client()
    assert holder.get(f"/s/{token}/download/").status_code == 302  # the PIN first
    unlock(holder, token)
    response = holder.get(f"/s/{token}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert len(names) == 2 and all(re.fullmatch(r"study-\d/series-\d/\d{5}\.dcm", n) for n in names)
    uids = {pydicom.dcmread(io.BytesIO(archive.read(n))).StudyInstanceUID for n in names}
    assert uids == {CT_SMALL_STUDY, MR_SMALL_STUDY}
    assert AuditEvent.objects.filter(detail__event="share.download").count() == 2
    _, view_only = create(alice, second_factor="none", pin="")
    assert Client().get(f"/s/{view_only}/download/").status_code == 403


def test_another_hospitals_links_and_studies_are_not_found(people, studies):
    charlie = staff(people.charlie)
    response, token = create(charlie)
    assert response.status_code == 404  # demo-hospital is not his
    assert charlie.get("/s/t/demo-hospital/").status_code == 404
    _, alices = create(staff(people.alice))
    link = ShareLink.objects.get()
    assert charlie.post(f"/s/t/demo-hospital/{link.pk}/revoke/").status_code == 404
    assert charlie.post(f"/s/t/second-hospital/{link.pk}/revoke/").status_code == 404
    assert ShareLink.objects.get().revoked_at is None
    # His own link to the same UIDs in his hospital reaches his patient, never alice's.
    _, his = create(charlie, slug="second-hospital", second_factor="none", pin="")
    holder = Client()
    found = dicomweb(holder, his, "studies").json()
    assert [s["00100010"]["Value"][0]["Alphabetic"] for s in found] == ["OTHER^HOSPITAL"]
    # A referring physician of the hospital may not share its studies.
    erin = people.alice.__class__.objects.create_user("erin", password=people.password)
    add_membership(user=erin, tenant=people.demo, role=Role.REFERRING_PHYSICIAN)
    assert create(staff(erin))[0].status_code == 404


def test_every_dicomweb_route_through_a_link_finds_nothing_it_does_not_share(people, studies):
    """The cross-tenant walk's cases, through a link to the CT, asking for the MR of the same
    hospital: not found (or an empty search), and a store is refused."""
    from tests.studies.test_cross_tenant_routes import SEARCH, STORE, _cases, _path

    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"), stop_before_pixels=True)
    uids = {
        "study": mr.StudyInstanceUID,
        "series": mr.SeriesInstanceUID,
        "instance": mr.SOPInstanceUID,
    }
    _, token = create(staff(people.alice), second_factor="none", pin="")
    holder = Client()
    failures = []
    for name, method, kind, template in _cases():
        response = holder.generic(method, f"/s/{token}/dicomweb/{_path(template, uids)}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        leaked = any(uid.encode() in body for uid in uids.values())
        if kind == STORE:
            ok = response.status_code == 405
        elif kind == SEARCH:
            ok = (response.status_code == 200 and json.loads(body) == []) or (
                response.status_code == 404 and template.startswith("studies/")
            )
        else:
            ok = response.status_code == 404
        if leaked or not ok:
            failures.append(f"{method} {name}: {response.status_code} leaked={leaked}")
    assert not failures, failures
