"""A reading group's admin pages: overview, credentials (with their validation), shifts (and how
they steer auto-assignment), agreements; and who gets "not found"."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from tenants import services as tenant_services
from tenants.models import AuditAction, AuditEvent, Role, User
from tests.worklists.conftest import make_item
from worklists import services
from worklists.models import AutoAssignment, Licence, Privilege, Shift

GROUP = "/g/demo-readers/"


def _credentials() -> list[Any]:
    return [
        sorted(Licence.objects.values_list("id", "user_id", "jurisdiction", "valid_to")),
        sorted(
            Privilege.objects.values_list("id", "user_id", "tenant_id", "modalities", "valid_to")
        ),
        AuditEvent.objects.filter(action=AuditAction.CREDENTIAL_CHANGE).count(),
    ]


def test_the_group_admin_sees_the_groups_overview(reading, login):
    today = timezone.localdate()
    Licence.objects.create(
        user=reading.dave, jurisdiction="US-NY", number="NY-7", valid_from=date(2020, 1, 1),
        valid_to=today + timedelta(days=10),
    )  # fmt: skip
    now = timezone.now()
    Shift.objects.create(
        group=reading.people.group, user=reading.bob, starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=7),
    )  # fmt: skip
    page = login(reading.grace).get(GROUP)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Demo Hospital" in body and "Second Hospital" in body
    assert "3 radiologists" in body  # bob, dave, fay
    on_shift = body.split("On shift now")[1].split("</section>")[0]
    assert "Bob" in on_shift or "bob" in on_shift
    soon = body.split("Credentials ending soon")[1]
    assert "licence US-NY" in soon and "expiring" in soon
    for path in ("credentials/", "shifts/", "agreements/"):
        assert login(reading.grace).get(GROUP + path).status_code == 200


@pytest.mark.parametrize("path", ["", "credentials/", "shifts/", "agreements/"])
def test_anyone_but_the_groups_admins_gets_404(reading, login, path):
    nina = User.objects.create_user("nina", password=reading.password)
    tenant_services.add_membership(user=nina, group=reading.night, role=Role.GROUP_ADMIN)
    before = (_credentials(), Shift.objects.count())
    for user in (nina, reading.bob, reading.people.alice):
        client = login(user)
        assert client.get(GROUP + path).status_code == 404
        response = client.post(
            GROUP + path,
            {"action": "licence-save", "user": "dave", "jurisdiction": "US-CA", "number": "X",
             "valid_from": "2024-01-01"},
        )  # fmt: skip
        assert response.status_code == 404
    # grace leads demo-readers, not night-readers.
    assert login(reading.grace).get("/g/night-readers/" + path).status_code == 404
    assert login(reading.grace).get("/g/no-such-group/" + path).status_code == 404
    assert (_credentials(), Shift.objects.count()) == before


def _licence(**fields: Any) -> dict[str, Any]:
    return {
        "action": "licence-save", "user": "dave", "jurisdiction": "US-TX", "number": "TX-1",
        "valid_from": "2024-01-01", **fields,
    }  # fmt: skip


def _privilege(**fields: Any) -> dict[str, Any]:
    return {
        "action": "privilege-save", "user": "dave", "tenant": "demo-hospital",
        "modalities": "CT", "valid_from": "2024-01-01", **fields,
    }  # fmt: skip


@pytest.mark.parametrize(
    "data, kind, field, message",
    [
        (
            _licence(valid_to=(date.today() - timedelta(days=3)).isoformat()),
            "licence", "valid_to", "validity already ended",
        ),
        (_licence(valid_to="2023-12-31"), "licence", "valid_to", "cannot end before it starts"),
        (
            _privilege(valid_from="2030-01-10", valid_to="2030-01-01"),
            "privilege", "valid_to", "cannot end before it starts",
        ),
        (_privilege(modalities="CT, QQ"), "privilege", "modalities", "Unknown modality code QQ"),
        (_privilege(tenant="third-hospital"), "privilege", "tenant", "no agreement with"),
        (_licence(user="erin"), "licence", "user", "not a radiologist of this group"),
    ],
)  # fmt: skip
def test_bad_credentials_are_form_errors_and_change_nothing(
    reading, login, data, kind, field, message
):
    before = _credentials()
    response = login(reading.grace).post(GROUP + "credentials/", data)
    assert response.status_code == 400
    errors = response.context["forms"][kind].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert _credentials() == before


def test_the_group_admin_adds_changes_and_ends_credentials_audited(reading, login):
    client = login(reading.grace)
    assert client.post(GROUP + "credentials/", _licence()).status_code == 302
    licence = Licence.objects.get(user=reading.dave, jurisdiction="US-TX")
    response = client.post(
        GROUP + "credentials/", _licence(id=licence.pk, number="TX-2", valid_to="2099-01-01")
    )
    assert response.status_code == 302
    licence.refresh_from_db()
    assert (licence.number, licence.valid_to) == ("TX-2", date(2099, 1, 1))
    assert client.post(GROUP + "credentials/", _privilege()).status_code == 302
    privilege = Privilege.objects.get(user=reading.dave, tenant=reading.people.demo)
    assert privilege.granted_by == reading.grace
    response = client.post(GROUP + "credentials/", {"action": "licence-end", "id": licence.pk})
    assert response.status_code == 302
    licence.refresh_from_db()
    assert licence.valid_to == timezone.localdate() - timedelta(days=1)
    changes = [
        (e.detail["kind"], e.detail["change"])
        for e in AuditEvent.objects.filter(action=AuditAction.CREDENTIAL_CHANGE).order_by("id")
    ]
    assert changes == [
        ("licence", "create"), ("licence", "update"), ("privilege", "create"), ("licence", "end"),
    ]  # fmt: skip
    page = client.get(GROUP + "credentials/").content.decode()
    assert 'class="status expired"' in page and 'class="status valid"' in page
    # Another group's radiologist's credential is not found, whatever its id.
    erin_licence = Licence.objects.get(user=reading.erin)
    response = client.post(GROUP + "credentials/", {"action": "licence-end", "id": erin_licence.pk})
    assert response.status_code == 404


def _shift(user: str, start: str, end: str) -> dict[str, str]:
    return {"action": "add", "user": user, "starts_at": start, "ends_at": end}


def test_a_shift_that_ends_before_it_starts_is_refused(reading, login):
    response = login(reading.grace).post(
        GROUP + "shifts/", _shift("bob", "2030-01-01T20:00", "2030-01-01T08:00")
    )
    assert response.status_code == 400
    assert "cannot end before it starts" in " ".join(response.context["form"].errors["ends_at"])
    assert not Shift.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.SHIFT_CHANGE).exists()


def test_shifts_steer_auto_assignment_to_who_is_on_duty(reading, login):
    demo = reading.people.demo
    Privilege.objects.create(
        user=reading.dave, tenant=demo, modalities=["CT"], valid_from=date(2020, 1, 1)
    )
    AutoAssignment.objects.create(group=reading.people.group, enabled=True)
    now = timezone.now()
    # No roster: the least-loaded eligible reader, bob before dave on a tie.
    first = make_item(demo, modality="CT")
    assert services.auto_assign(demo.pk, now=now) == 1
    first.refresh_from_db()
    assert first.assigned_to == reading.bob

    local = timezone.localtime(now)
    fmt = "%Y-%m-%dT%H:%M"
    start, end = (
        (local - timedelta(hours=2)).strftime(fmt),
        (local + timedelta(hours=6)).strftime(fmt),
    )
    response = login(reading.grace).post(GROUP + "shifts/", _shift("dave", start, end))
    assert response.status_code == 302
    shift = Shift.objects.get()
    assert AuditEvent.objects.get(action=AuditAction.SHIFT_CHANGE).detail["shift"] == shift.pk
    page = login(reading.grace).get(GROUP + "shifts/").content.decode()
    assert "Dave" in page.split('id="on-shift"')[1].split("</ul>")[0]

    # With a roster, only dave (on shift) gets items, though bob is as free.
    items = [make_item(demo, modality="CT") for _ in range(2)]
    assert services.auto_assign(demo.pk, now=now) == 2
    for item in items:
        item.refresh_from_db()
        assert item.assigned_to == reading.dave
    # After the shift nobody of the group is on duty: nothing is assigned.
    later = make_item(demo, modality="CT")
    assert services.auto_assign(demo.pk, now=now + timedelta(hours=7)) == 0
    later.refresh_from_db()
    assert later.assigned_to is None

    response = login(reading.grace).post(GROUP + "shifts/", {"action": "remove", "shift": shift.pk})
    assert response.status_code == 302
    assert not Shift.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.SHIFT_CHANGE).count() == 2


def test_the_group_admin_reads_the_groups_agreements_with_their_sla(reading, login):
    from worklists.groupadmin.sections import SECTION

    SECTION.apply(
        reading.people.demo,
        [{"group": "demo-readers", "modalities": ["CT", "MR"], "priorities": {"stat": 45}}],
        reading.people.alice,
    )
    page = login(reading.grace).get(GROUP + "agreements/").content.decode()
    assert "Demo Hospital" in page and "45 min (agreed)" in page and "CT, MR" in page
    assert "<form" not in page.split("<table")[1]  # read-only


def _page_queries(login: Any, user: Any, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_credentials_page_costs_the_same_queries_for_more_members(reading, login):
    before = _page_queries(login, reading.grace, GROUP + "credentials/")
    for n in range(4):
        user = User.objects.create_user(f"reader{n}", password=reading.password)
        tenant_services.add_membership(user=user, group=reading.people.group, role=Role.RADIOLOGIST)
        Licence.objects.create(
            user=user, jurisdiction="US-CA", number=f"R{n}", valid_from=date(2020, 1, 1)
        )
        Privilege.objects.create(
            user=user, tenant=reading.people.demo, modalities=["CT"], valid_from=date(2020, 1, 1)
        )
    assert _page_queries(login, reading.grace, GROUP + "credentials/") == before
