"""The referring physicians' portal (/reports/results/): finals only unless the hospital shows
preliminaries, and their critical results acknowledged in the portal."""

from __future__ import annotations

from typing import Any

from django.test import Client

from studies.models import Study
from studies.sharing.models import SharePolicy
from tenants import services as tenants
from tenants.models import AuditAction, AuditEvent, Role, User
from tests.reports.review.test_pages import _actor, _login, _preliminary
from worklists import services as worklist


def welby(reading: Any) -> User:
    user = User.objects.create_user("welby", password=reading.password, person_name="WELBY^MARCUS")
    tenants.add_membership(user=user, tenant=reading.people.demo, role=Role.REFERRING_PHYSICIAN)
    return user


def referred(item: Any) -> None:
    Study.objects.filter(pk=item.study_id).update(
        referring_physician_name="WELBY^MARCUS", referring_physician_name_search="WELBY^MARCUS"
    )


def test_a_referrer_sees_finals_and_preliminaries_only_where_the_hospital_allows(reading):
    from reports import services

    client = _login(welby(reading), reading.password)
    item, preliminary = _preliminary(reading, send_to=False)
    referred(item)
    page = f"/reports/results/{preliminary.report_id}/"
    assert page not in client.get("/reports/results/").content.decode()
    assert client.get(page).status_code == 404

    policy = SharePolicy.objects.create(tenant=reading.people.demo, referrers_see_preliminary=True)
    listing = client.get("/reports/results/").content.decode()
    assert page in listing and ">PRELIMINARY</span>" in listing
    policy.referrers_see_preliminary = False
    policy.save()

    services.finalise(
        preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password, sections={"impression": "Benign."},
    )  # fmt: skip
    listing = client.get("/reports/results/").content.decode()
    assert page in listing and ">FINAL</span>" in listing and ">PRELIMINARY<" not in listing
    shown = client.get(page).content.decode()
    assert "Benign." in shown and "Earlier versions" not in shown  # the preliminary stays hidden
    # The hospital's own staff see every signed version.
    alice = _login(reading.people.alice, reading.password).get(page).content.decode()
    assert "Earlier versions" in alice


def test_a_referrer_acknowledges_their_critical_result_in_the_portal(reading):
    from reports.critical import services as critical
    from reports.models import CriticalResult

    doctor = welby(reading)
    item = reading.item(reading.people.demo)
    referred(item)
    worklist.claim(item, reading.bob, _actor(reading.bob))
    flagged = critical.flag(
        item=item, user=reading.bob, actor=_actor(reading.bob), category=1,
        finding="Free air under the diaphragm.",
    )  # fmt: skip
    critical.communicate(
        critical=flagged, user=reading.bob, actor=_actor(reading.bob), method="phone",
        recipient_name="Dr Welby", recipient_user=doctor,
    )  # fmt: skip
    client = _login(doctor, reading.password)
    listing = client.get("/reports/results/").content.decode()
    assert "Free air under the diaphragm." in listing and "Acknowledge" in listing
    assert AuditEvent.objects.filter(action=AuditAction.CRITICAL_LIST, actor_user=doctor).exists()

    # Another hospital's admin cannot acknowledge it: not found.
    other = _login(reading.people.charlie, reading.password)
    url = f"/reports/results/critical/{flagged.pk}/acknowledge/"
    assert other.post(url).status_code == 404
    assert CriticalResult.objects.get(pk=flagged.pk).acknowledged_at is None

    assert client.post(url).status_code == 302
    done = CriticalResult.objects.get(pk=flagged.pk)
    assert done.acknowledged_at is not None and done.acknowledged_by == doctor
    assert client.post(url).status_code == 302  # again: nothing changes
    assert CriticalResult.objects.get(pk=flagged.pk).acknowledged_at == done.acknowledged_at
    acks = AuditEvent.objects.filter(action=AuditAction.CRITICAL_ACKNOWLEDGE).order_by("id")
    assert [e.detail["first"] for e in acks] == [True, False]
    assert "Free air" not in client.get("/reports/results/").content.decode()
    assert Client().post(url).status_code == 302  # to the login page


def test_a_referrer_views_their_own_and_granted_studies_read_only_and_nothing_else(reading):
    from reports import services

    doctor = welby(reading)
    mine, preliminary = _preliminary(reading, send_to=False)
    referred(mine)
    services.finalise(
        preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password, sections={"impression": "Benign."},
    )  # fmt: skip
    given, given_version = _preliminary(reading, send_to=False)  # another physician's patient
    services.finalise(
        preliminary=given_version, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password, sections={"impression": "Stable."},
    )  # fmt: skip
    other = reading.item(reading.people.demo)  # neither referred nor given
    uid = {i: Study.objects.get(pk=i.study_id).study_instance_uid for i in (mine, given, other)}
    client = _login(doctor, reading.password)

    def launch(item: Any) -> int:
        return client.get("/viewer/viewer", {"StudyInstanceUIDs": uid[item]}).status_code

    def qido() -> set[str]:
        response = client.get(
            "/t/demo-hospital/dicomweb/studies", HTTP_ACCEPT="application/dicom+json"
        )
        assert response.status_code == 200
        return {s["0020000D"]["Value"][0] for s in response.json()}

    assert launch(mine) == 200 and launch(given) == 404 and launch(other) == 404
    assert qido() == {uid[mine]}
    config = client.get("/viewer/app-config.js").content.decode()
    assert "/t/demo-hospital/dicomweb" in config and '"dicomUploadEnabled": false' in config
    stow = client.post(
        "/t/demo-hospital/dicomweb/studies", b"", content_type="multipart/related; boundary=x"
    )
    assert stow.status_code in (403, 404)  # never stored
    assert (
        f"/reports/results/{given_version.report_id}/"
        not in client.get("/reports/results/").content.decode()
    )

    # The hospital's admin gives him the other physician's study: his portal and viewer have it.
    alice = _login(reading.people.alice, reading.password)
    page = alice.post("/s/t/demo-hospital/grants/", {"user": doctor.pk, "studies": uid[given]})
    assert page.status_code == 302
    assert alice.post("/s/t/demo-hospital/grants/", {"user": doctor.pk, "studies": uid[given]})
    assert launch(given) == 200 and qido() == {uid[mine], uid[given]}
    assert (
        f"/reports/results/{given_version.report_id}/"
        in client.get("/reports/results/").content.decode()
    )
    assert AuditEvent.objects.filter(detail__via="referrer", actor_user=doctor).exists()
    # Another hospital's admin cannot see or give demo-hospital's studies.
    charlie = _login(reading.people.charlie, reading.password)
    assert charlie.get("/s/t/demo-hospital/grants/").status_code == 404
    # Withdrawn: gone again.
    from studies.sharing.models import StudyGrant

    grant = StudyGrant.objects.get(revoked_at__isnull=True)
    assert alice.post("/s/t/demo-hospital/grants/", {"revoke": grant.pk}).status_code == 302
    assert launch(given) == 404 and qido() == {uid[mine]}
