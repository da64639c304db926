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
