"""REST API of the worklist: the list and its filters, saved views, metrics, credentials, SLA
and priority actions, tenant isolation, query counts and the audit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from tests.worklists.conftest import Api

ITEM_FIELDS = {
    "id",
    "url",
    "tenant",
    "accession_number",
    "patient_name",
    "patient_id",
    "study_instance_uid",
    "study_description",
    "modality",
    "modalities",
    "body_part",
    "subspecialty",
    "clinical_question",
    "priority",
    "arrived_at",
    "sla_due_at",
    "sla_remaining_seconds",
    "sla_status",
    "sla_paused_at",
    "sla_pause_reason",
    "state",
    "reading_state",
    "holder",
    "claimed_at",
    "lease_expires_at",
    "assigned_to",
    "escalated_at",
    "version",
}


def _actor(user: Any) -> Any:
    from tenants import audit

    return audit.Actor.for_user(user)


def _set_priority(reading: Any, item: Any, code: str) -> Any:
    from worklists import services

    return services.set_priority(
        item, reading.grace, _actor(reading.grace), code=code, clinical_question=None
    )


# ---------------------------------------------------------------------------------------------
# The list
# ---------------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_bob_lists_his_worklist_with_every_field_and_each_hospital_is_audited(
    web, reading, token_for
):
    from tenants.models import AuditAction, AuditEvent

    demo = reading.item(reading.people.demo, accession="A-1", patient_id="P-1")
    second = reading.item(reading.people.second, modality="MR", description="MR KNEE")
    response = Api(web, token_for(reading.bob)).get("items/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 2 and body["previous"] is None
    rows = {row["id"]: row for row in body["results"]}
    row = rows[demo.pk]
    assert set(row) == ITEM_FIELDS
    assert row["url"] == f"/worklist/items/{demo.pk}/"
    assert row["tenant"] == {"slug": "demo-hospital", "name": "Demo Hospital"}
    assert (row["accession_number"], row["patient_id"]) == ("A-1", "P-1")
    assert row["patient_name"] == "DOE^JANE"
    assert row["study_instance_uid"] == demo.study.study_instance_uid
    assert row["modality"] == "CT" and row["modalities"] == ["CT"]
    assert row["priority"] == {"code": "routine", "name": "Routine", "sla_minutes": 1440}
    assert row["state"] == "scheduled" and row["reading_state"] == "unread"
    assert row["holder"] is None and row["sla_status"] == "ok"
    assert 0 < row["sla_remaining_seconds"] <= 24 * 3600
    assert rows[second.pk]["modalities"] == ["MR"]

    events = list(AuditEvent.objects.filter(action=AuditAction.WORKLIST_LIST))
    assert {e.tenant_id: e.detail["items"] for e in events} == {
        reading.people.demo.pk: [demo.pk],
        reading.people.second.pk: [second.pk],
    }
    assert all(e.actor_user_id == reading.bob.pk for e in events)


@pytest.mark.smoke
def test_charlie_gets_404_for_demo_hospital_items(web, reading, token_for):
    item = reading.item(reading.people.demo)
    charlie = Api(web, token_for(reading.people.charlie))
    assert charlie.ids() == []
    for response in (
        charlie.get(f"items/{item.pk}/"),
        charlie.post(f"items/{item.pk}/claim/"),
        charlie.post(f"items/{item.pk}/release/", {"reason": "x"}),
        charlie.post(f"items/{item.pk}/priority/", {"code": "stat"}),
        charlie.post(f"items/{item.pk}/cancel/", {"reason": "x"}),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "No such work item."}
    # His own hospital's item is his to manage.
    own = reading.item(reading.people.second)
    detail = charlie.get(f"items/{own.pk}/")
    assert detail.status_code == 200 and detail.json()["can_manage"] is True


@pytest.mark.smoke
def test_the_list_costs_the_same_queries_for_5_or_50_items(reading):
    from worklists.models import WorkItem

    client = APIClient()
    client.force_authenticate(reading.bob)

    def count_queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/worklist/items/")
        assert response.status_code == 200
        return len(queries), response.json()["count"]

    for _ in range(5):
        reading.item(reading.people.demo)
    few = count_queries()
    for n in range(45):
        reading.item(reading.people.demo if n % 2 else reading.people.second)
    many = count_queries()
    assert WorkItem.objects.count() == 50
    assert few[1] == 5 and many[1] == 50
    assert few[0] == many[0], (few, many)


def test_filters_narrow_the_list(web, reading, token_for):
    from worklists.models import WorkItem

    ct = reading.item(
        reading.people.demo, patient_name="SMITH^ANNA", patient_id="PX-9", accession="AC-77"
    )
    mr = reading.item(reading.people.demo, modality="MR", description="MR KNEE")
    second = reading.item(reading.people.second)
    stat = reading.item(reading.people.demo)
    _set_priority(reading, stat, "stat")
    overdue = reading.item(reading.people.demo, arrived_minutes_ago=2000)
    bob = Api(web, token_for(reading.bob))

    assert set(bob.ids(tenant="second-hospital")) == {second.pk}
    assert set(bob.ids(modality="mr")) == {mr.pk}
    assert set(bob.ids(priority="stat")) == {stat.pk}
    assert set(bob.ids(q="smith")) == {ct.pk}
    assert set(bob.ids(q="PX-9")) == {ct.pk}
    assert set(bob.ids(q="AC-77")) == {ct.pk}
    assert set(bob.ids(overdue="1")) == {overdue.pk}
    # Routine: 24 h from arrival; stat: 1 h from five minutes ago.
    assert set(bob.ids(due_within="120")) == {stat.pk, overdue.pk}
    row = next(r for r in bob.get("items/").json()["results"] if r["id"] == overdue.pk)
    assert row["sla_status"] == "overdue" and row["sla_remaining_seconds"] < 0

    bob.post(f"items/{ct.pk}/claim/")
    assert bob.ids(state="mine") == [ct.pk]
    assert ct.pk not in bob.ids(state="scheduled")
    WorkItem.objects.filter(pk=mr.pk).update(state="completed")
    assert bob.ids(state="completed") == [mr.pk]
    assert mr.pk not in bob.ids()


def test_sorts_order_the_list(web, reading, token_for):
    old = reading.item(reading.people.demo, arrived_minutes_ago=300)
    new = reading.item(reading.people.demo, arrived_minutes_ago=1)
    stat = reading.item(reading.people.demo, arrived_minutes_ago=100)
    _set_priority(reading, stat, "stat")
    bob = Api(web, token_for(reading.bob))
    assert bob.ids() == [stat.pk, old.pk, new.pk]  # priority, then deadline
    assert bob.ids(sort="sla") == [stat.pk, old.pk, new.pk]
    assert bob.ids(sort="arrived") == [old.pk, stat.pk, new.pk]
    assert bob.ids(sort="-arrived") == [new.pk, stat.pk, old.pk]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "name"}, "sort is one of priority, sla, arrived, -arrived."),
        ({"due_within": "soon"}, "due_within is a number of minutes, e.g. due_within=60."),
        (
            {"state": "lost"},
            "state is one of scheduled, in_progress, mine, completed, canceled.",
        ),
        ({"view": "mine"}, "view is the id of a saved view, e.g. view=3."),
        ({"q": "x" * 65}, "The q filter is longer than 64 characters."),
    ],
)
def test_a_bad_filter_is_a_400_that_says_what_to_send(web, reading, token_for, params, message):
    response = Api(web, token_for(reading.bob)).get("items/", **params)
    assert response.status_code == 400
    assert response.json() == {"detail": message}


def test_the_list_is_paginated_by_limit_and_offset(web, reading, token_for):
    items = [reading.item(reading.people.demo, arrived_minutes_ago=10 - n) for n in range(3)]
    bob = Api(web, token_for(reading.bob))
    first = bob.get("items/", limit=2).json()
    assert first["count"] == 3 and len(first["results"]) == 2
    assert first["previous"] is None and "offset=2" in first["next"]
    rest = bob.get("items/", limit=2, offset=2).json()
    assert rest["next"] is None and rest["previous"] is not None
    seen = [r["id"] for r in first["results"] + rest["results"]]
    assert sorted(seen) == sorted(i.pk for i in items)


# ---------------------------------------------------------------------------------------------
# Saved views
# ---------------------------------------------------------------------------------------------


def test_saved_views_filter_the_list_and_count_their_items(web, reading, token_for):
    from worklists.models import WorkItem

    ct = reading.item(reading.people.demo)
    mr = reading.item(reading.people.demo, modality="MR", description="MR KNEE")
    done = reading.item(reading.people.second, modality="MR", description="MR HIP")
    WorkItem.objects.filter(pk=done.pk).update(state="completed")
    bob = Api(web, token_for(reading.bob))

    mine = bob.post("views/", {"name": "My MR", "filters": {"modality": "mr"}})
    assert mine.status_code == 201, mine.text
    view = mine.json()
    assert view["filters"]["modality"] == "MR" and view["group"] is None
    assert view["owner"] == "bob" and view["can_delete"] is True
    shared = bob.post(
        "views/", {"name": "Done", "filters": {"state": "completed"}, "group": "demo-readers"}
    )
    assert shared.status_code == 201 and shared.json()["can_delete"] is False

    assert bob.ids(view=view["id"]) == [mr.pk]
    # An explicit parameter overrides the view's.
    assert bob.ids(view=view["id"], modality="CT") == [ct.pk]
    assert bob.get("items/", view=99999).status_code == 404

    counts = {c["name"]: c["count"] for c in bob.get("views/counts/").json()}
    assert counts == {"My MR": 1, "Done": 1}
    # Grace, of the same group, sees the shared view; her own count is hers (she reads nothing).
    grace = Api(web, token_for(reading.grace))
    assert [v["name"] for v in grace.get("views/").json()] == ["Done"]
    assert grace.get("views/counts/").json() == [
        {"id": shared.json()["id"], "name": "Done", "count": 0}
    ]
    # Erin is in another group: none of these are hers.
    erin = Api(web, token_for(reading.erin))
    assert erin.get("views/").json() == []
    assert erin.get("items/", view=view["id"]).status_code == 404


def test_a_saved_view_is_validated_and_shared_only_with_your_own_group(web, reading, token_for):
    bob, erin = Api(web, token_for(reading.bob)), Api(web, token_for(reading.erin))
    bad = bob.post("views/", {"name": "x", "filters": {"sort": "name"}})
    assert bad.status_code == 400
    assert bad.json() == {"detail": "sort is one of priority, sla, arrived, -arrived."}
    unknown = bob.post("views/", {"name": "x", "filters": {"colour": "red"}})
    assert unknown.status_code == 400 and unknown.json()["detail"] == "Unknown filter: colour."
    nameless = bob.post("views/", {"filters": {}})
    assert nameless.status_code == 400 and "name" in nameless.json()["detail"]
    foreign = erin.post("views/", {"name": "x", "filters": {}, "group": "demo-readers"})
    assert foreign.status_code == 400
    assert "reading group you belong to" in foreign.json()["detail"]
    assert bob.get("views/").json() == []


def test_deleting_views_own_ones_and_group_ones_by_group_admins(web, reading, token_for):
    bob, grace = Api(web, token_for(reading.bob)), Api(web, token_for(reading.grace))
    dave = Api(web, token_for(reading.dave))
    private = bob.post("views/", {"name": "Mine", "filters": {}}).json()
    shared = bob.post("views/", {"name": "Ours", "filters": {}, "group": "demo-readers"}).json()
    assert grace.delete(f"views/{private['id']}/").status_code == 404
    assert dave.delete(f"views/{shared['id']}/").status_code == 403
    assert bob.delete(f"views/{shared['id']}/").status_code == 403  # not a group admin
    assert grace.delete(f"views/{shared['id']}/").status_code == 204
    assert bob.delete(f"views/{private['id']}/").status_code == 204
    assert bob.get("views/").json() == []


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _read(reading: Any, item: Any, reader: Any, prelim_after: int, final_after: int) -> None:
    from worklists import services

    services.claim(item, reader, _actor(reader), now=item.arrived_at)
    services.mark_read(item, "preliminary", now=item.arrived_at + timedelta(minutes=prelim_after))
    services.mark_read(item, "final", now=item.arrived_at + timedelta(minutes=final_after))


def test_metrics_give_turnaround_per_hospital_priority_and_radiologist(web, reading, token_for):
    a = reading.item(reading.people.demo, arrived_minutes_ago=500)
    b = reading.item(reading.people.demo, arrived_minutes_ago=500)
    c = reading.item(reading.people.second, arrived_minutes_ago=500)
    _set_priority(reading, c, "stat")
    reading.item(reading.people.demo)  # unread: not measured
    _read(reading, a, reading.bob, 10, 30)
    _read(reading, b, reading.bob, 20, 60)
    _read(reading, c, reading.erin, 5, 15)

    bob = Api(web, token_for(reading.bob))
    body = bob.get("metrics/").json()
    by_tenant = {row["key"]: row for row in body["by_tenant"]}
    assert by_tenant["demo-hospital"]["preliminary"] == {
        "count": 2,
        "mean_minutes": 15.0,
        "median_minutes": 15.0,
    }
    assert by_tenant["demo-hospital"]["final"]["mean_minutes"] == 45.0
    assert by_tenant["second-hospital"]["final"] == {
        "count": 1,
        "mean_minutes": 15.0,
        "median_minutes": 15.0,
    }
    assert {row["key"] for row in body["by_priority"]} == {"routine", "stat"}
    by_reader = {row["key"]: row["final"]["count"] for row in body["by_radiologist"]}
    assert by_reader == {"bob": 2, "erin": 1}

    only_erin = bob.get("metrics/", radiologist="erin").json()
    assert [row["key"] for row in only_erin["by_tenant"]] == ["second-hospital"]
    stat = bob.get("metrics/", priority="stat", tenant="second-hospital").json()
    assert [row["key"] for row in stat["by_priority"]] == ["stat"]
    assert bob.get("metrics/", since="2999-01-01").json()["by_tenant"] == []
    assert (
        len(
            bob.get(
                "metrics/", since=(timezone.now() - timedelta(days=1)).date().isoformat()
            ).json()["by_tenant"]
        )
        == 2
    )

    # Erin reads CT at second-hospital only; charlie administers it; dave reads nothing.
    erin = Api(web, token_for(reading.erin)).get("metrics/").json()
    assert [row["key"] for row in erin["by_tenant"]] == ["second-hospital"]
    charlie = Api(web, token_for(reading.people.charlie)).get("metrics/").json()
    assert [row["key"] for row in charlie["by_tenant"]] == ["second-hospital"]
    assert Api(web, token_for(reading.dave)).get("metrics/").json()["by_tenant"] == []


def test_metrics_refuse_a_bad_date_naming_the_format(web, reading, token_for):
    response = Api(web, token_for(reading.bob)).get("metrics/", since="31/01/2026")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.json()["detail"]


# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


def test_a_group_admin_manages_the_licences_of_her_radiologists_only(web, reading, token_for):
    from tenants.models import AuditAction, AuditEvent
    from worklists.models import Licence

    grace = Api(web, token_for(reading.grace))
    listed = grace.get("licences/").json()["results"]
    assert {row["user"] for row in listed} == {"bob", "dave", "fay"}
    assert all(row["can_edit"] for row in listed)

    created = grace.post(
        "licences/",
        {"user": "dave", "jurisdiction": "US-NY", "number": "NY-9", "valid_from": "2024-01-01"},
    )
    assert created.status_code == 201, created.text
    licence_id = created.json()["id"]
    assert Licence.objects.get(pk=licence_id).user == reading.dave
    event = AuditEvent.objects.get(action=AuditAction.CREDENTIAL_CHANGE)
    assert event.actor_user == reading.grace and event.tenant is None
    assert event.detail == {
        "kind": "licence",
        "id": licence_id,
        "user": reading.dave.pk,
        "change": "create",
    }

    backwards = grace.patch(f"licences/{licence_id}/", {"valid_to": "2023-01-01"})
    assert backwards.status_code == 400
    assert "A licence cannot end before it starts." in backwards.json()["detail"]
    bad_date = grace.patch(f"licences/{licence_id}/", {"valid_to": "soon"})
    assert bad_date.status_code == 400 and "valid_to" in bad_date.json()["detail"]
    ended = grace.patch(f"licences/{licence_id}/", {"valid_to": "2030-01-01"})
    assert ended.status_code == 200 and ended.json()["valid_to"] == "2030-01-01"

    # Erin is not in grace's group: as if she did not exist.
    erin_licence = Licence.objects.get(user=reading.erin)
    assert grace.get(f"licences/{erin_licence.pk}/").status_code == 404
    assert grace.delete(f"licences/{erin_licence.pk}/").status_code == 404
    for_erin = grace.post(
        "licences/",
        {"user": "erin", "jurisdiction": "US-NY", "number": "NY-5", "valid_from": "2024-01-01"},
    )
    assert for_erin.status_code == 400
    assert grace.delete(f"licences/{licence_id}/").status_code == 204
    changes = AuditEvent.objects.filter(action=AuditAction.CREDENTIAL_CHANGE)
    assert sorted(e.detail["change"] for e in changes) == ["create", "delete", "update"]


def test_a_radiologist_sees_his_own_credentials_read_only(web, reading, token_for):
    from worklists.models import Licence

    bob = Api(web, token_for(reading.bob))
    licences = bob.get("licences/").json()["results"]
    assert {row["number"] for row in licences} == {"CA-1", "NY-1"}
    assert not any(row["can_edit"] for row in licences)
    own = Licence.objects.filter(user=reading.bob).first()
    assert bob.patch(f"licences/{own.pk}/", {"valid_to": "2020-06-01"}).status_code == 403
    assert bob.delete(f"licences/{own.pk}/").status_code == 403
    dave_licence = Licence.objects.get(user=reading.dave)
    assert bob.get(f"licences/{dave_licence.pk}/").status_code == 404
    privileges = bob.get("privileges/").json()["results"]
    assert {row["tenant"] for row in privileges} == {"demo-hospital", "second-hospital"}


def test_privileges_are_granted_by_group_admins_for_agreed_hospitals(web, reading, token_for):
    from tenants.models import AuditAction, AuditEvent

    item = reading.item(reading.people.demo)
    dave = Api(web, token_for(reading.dave))
    assert dave.ids() == []
    grace = Api(web, token_for(reading.grace))
    granted = grace.post(
        "privileges/",
        {
            "user": "dave",
            "tenant": "demo-hospital",
            "modalities": ["ct"],
            "valid_from": "2024-01-01",
        },
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["modalities"] == ["CT"]
    assert granted.json()["granted_by"] == "grace"
    assert dave.ids() == [item.pk]  # the privilege takes effect at once
    event = AuditEvent.objects.get(action=AuditAction.CREDENTIAL_CHANGE)
    assert event.tenant == reading.people.demo and event.detail["kind"] == "privilege"

    for body, message in (
        ({"modalities": []}, "Name at least one modality."),
        ({"modalities": ["C T!"]}, "Not a modality code"),
        ({"valid_to": "2023-01-01"}, "A privilege cannot end before it starts."),
    ):
        refused = grace.post(
            "privileges/",
            {"user": "dave", "tenant": "demo-hospital", "modalities": ["CT"]}
            | {"valid_from": "2024-01-01"}
            | body,
        )
        assert refused.status_code == 400 and message in refused.json()["detail"]
    erin = grace.post(
        "privileges/",
        {
            "user": "erin",
            "tenant": "second-hospital",
            "modalities": ["CT"],
            "valid_from": "2024-01-01",
        },
    )
    assert erin.status_code == 400


def test_a_hospital_admin_manages_privileges_at_her_own_hospital_only(web, reading, token_for):
    from tenants.models import AuditAction, AuditEvent
    from worklists.models import Privilege

    charlie = Api(web, token_for(reading.people.charlie))
    listed = charlie.get("privileges/").json()["results"]
    assert {(row["user"], row["tenant"]) for row in listed} == {
        ("bob", "second-hospital"),
        ("erin", "second-hospital"),
    }
    bob_demo = Privilege.objects.get(user=reading.bob, tenant=reading.people.demo)
    assert charlie.get(f"privileges/{bob_demo.pk}/").status_code == 404
    assert (
        charlie.patch(f"privileges/{bob_demo.pk}/", {"valid_to": "2030-01-01"}).status_code == 404
    )
    assert charlie.get("licences/").json()["results"] == []

    erin_second = Privilege.objects.get(user=reading.erin)
    narrowed = charlie.patch(f"privileges/{erin_second.pk}/", {"modalities": ["CT"]})
    assert narrowed.status_code == 200 and narrowed.json()["modalities"] == ["CT"]
    moved = charlie.patch(f"privileges/{erin_second.pk}/", {"tenant": "demo-hospital"})
    assert moved.status_code == 400
    elsewhere = charlie.post(
        "privileges/",
        {
            "user": "erin",
            "tenant": "demo-hospital",
            "modalities": ["CT"],
            "valid_from": "2024-01-01",
        },
    )
    assert elsewhere.status_code == 403
    assert not Privilege.objects.filter(user=reading.erin, tenant=reading.people.demo).exists()
    bob_second = Privilege.objects.get(user=reading.bob, tenant=reading.people.second)
    assert charlie.delete(f"privileges/{bob_second.pk}/").status_code == 204
    event = AuditEvent.objects.filter(action=AuditAction.CREDENTIAL_CHANGE).first()
    assert event.detail == {
        "kind": "privilege",
        "id": bob_second.pk,
        "user": reading.bob.pk,
        "change": "delete",
    }
    assert event.tenant == reading.people.second


# ---------------------------------------------------------------------------------------------
# SLA clock, priority, cancel
# ---------------------------------------------------------------------------------------------


def test_pausing_and_resuming_the_clock_moves_the_deadline(web, reading, token_for):
    from worklists.models import WorkItem

    item = reading.item(reading.people.demo)
    bob = Api(web, token_for(reading.bob))
    assert bob.post(f"items/{item.pk}/pause/", {"reason": "priors"}).status_code == 403
    bob.post(f"items/{item.pk}/claim/")
    assert bob.post(f"items/{item.pk}/pause/").status_code == 400
    paused = bob.post(f"items/{item.pk}/pause/", {"reason": "waiting for priors"})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["sla_status"] == "paused" and body["sla_pause_reason"] == "waiting for priors"
    assert bob.post(f"items/{item.pk}/pause/", {"reason": "again"}).status_code == 409

    # Ten minutes pass while paused; the remaining time does not move meanwhile.
    WorkItem.objects.filter(pk=item.pk).update(
        sla_paused_at=parse_datetime(body["sla_paused_at"]) - timedelta(minutes=10)
    )
    frozen = bob.get(f"items/{item.pk}/").json()["sla_remaining_seconds"]
    assert frozen == bob.get(f"items/{item.pk}/").json()["sla_remaining_seconds"]
    resumed = bob.post(f"items/{item.pk}/resume/")
    assert resumed.status_code == 200
    moved = parse_datetime(resumed.json()["sla_due_at"]) - parse_datetime(body["sla_due_at"])
    assert timedelta(minutes=10) <= moved < timedelta(minutes=15)
    assert resumed.json()["sla_paused_at"] is None and resumed.json()["sla_status"] == "ok"
    assert bob.post(f"items/{item.pk}/resume/").status_code == 409


def test_changing_the_priority_recomputes_the_deadline_from_arrival(web, reading, token_for):
    item = reading.item(reading.people.demo, arrived_minutes_ago=30)
    grace, bob = Api(web, token_for(reading.grace)), Api(web, token_for(reading.bob))
    assert bob.post(f"items/{item.pk}/priority/", {"code": "stat"}).status_code == 403
    unknown = grace.post(f"items/{item.pk}/priority/", {"code": "whenever"})
    assert unknown.status_code == 400
    assert unknown.json() == {"detail": "This hospital has no priority class 'whenever'."}

    changed = grace.post(
        f"items/{item.pk}/priority/", {"code": "stat", "clinical_question": "Bleed?"}
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["priority"] == {"code": "stat", "name": "STAT", "sla_minutes": 60}
    assert parse_datetime(body["sla_due_at"]) == item.arrived_at + timedelta(minutes=60)
    assert body["clinical_question"] == "Bleed?"
    assert 25 * 60 <= body["sla_remaining_seconds"] <= 30 * 60
    assert body["version"] > item.version


def test_an_admin_cancels_an_item_with_a_reason(web, reading, token_for):
    item = reading.item(reading.people.demo)
    grace, bob = Api(web, token_for(reading.grace)), Api(web, token_for(reading.bob))
    assert bob.post(f"items/{item.pk}/cancel/", {"reason": "duplicate"}).status_code == 403
    assert grace.post(f"items/{item.pk}/cancel/").status_code == 400
    canceled = grace.post(f"items/{item.pk}/cancel/", {"reason": "duplicate"})
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    assert bob.ids() == [] and bob.ids(state="canceled") == [item.pk]


# ---------------------------------------------------------------------------------------------
# The audit never holds patient data
# ---------------------------------------------------------------------------------------------


def test_no_patient_name_reaches_the_audit_detail(web, reading, token_for):
    from tenants.models import AuditAction, AuditEvent

    item = reading.item(reading.people.demo, patient_name="SECRET^PERSON", patient_id="PID-SECRET")
    bob, grace = Api(web, token_for(reading.bob)), Api(web, token_for(reading.grace))
    assert bob.ids(q="secret") == [item.pk]
    assert bob.ids(q="PID-SECRET") == [item.pk]
    bob.get(f"items/{item.pk}/")
    bob.post(f"items/{item.pk}/claim/")
    bob.post(f"items/{item.pk}/pause/", {"reason": "priors"})
    bob.post(f"items/{item.pk}/resume/")
    grace.post(f"items/{item.pk}/release/", {"reason": "shift over"})
    grace.post(f"items/{item.pk}/priority/", {"code": "urgent"})
    view = bob.post("views/", {"name": "Secret", "filters": {"q": "secret"}}).json()
    bob.get("items/", view=view["id"])

    lists = AuditEvent.objects.filter(action=AuditAction.WORKLIST_LIST)
    assert {tuple(e.detail["filters"]) for e in lists} >= {("q",), ("view", "q", "sort")}
    assert AuditEvent.objects.count() >= 10
    dumped = json.dumps([e.detail for e in AuditEvent.objects.all()]).lower()
    for secret in ("secret", "person", "pid-secret", "doe^jane"):
        assert secret not in dumped


def test_sla_remaining_is_frozen_while_paused(reading):
    """In process: the serializer uses the pause moment, not now, while paused."""
    from worklists.serializers import WorkItemSerializer

    item = reading.item(reading.people.demo)
    paused_at = timezone.now()
    item.sla_paused_at = paused_at
    later = {"now": paused_at + timedelta(hours=3)}
    expected = int((item.sla_due_at - paused_at).total_seconds())
    assert WorkItemSerializer(item, context=later).data["sla_remaining_seconds"] == expected
    assert isinstance(parse_datetime(WorkItemSerializer(item).data["sla_due_at"]), datetime)


def test_the_item_detail_lists_its_priors_newest_first(web, reading, token_for):
    from tests.worklists.conftest import make_study
    from worklists import priors

    older = make_study(
        reading.people.demo, patient_id="P-PRIOR", description="CT ABDOMEN 2019",
        arrived_minutes_ago=600000,
    )  # fmt: skip
    item = reading.item(reading.people.demo, patient_id="P-PRIOR")
    # Another patient's study is never a prior.
    make_study(reading.people.demo, patient_id="P-OTHER", arrived_minutes_ago=900)
    priors.prefetch(item.pk)
    body = Api(web, token_for(reading.bob)).get(f"items/{item.pk}/").json()
    assert body["priors"] == [
        {
            "study_instance_uid": older.study_instance_uid,
            "study_date": older.study_date.isoformat(),
            "study_description": "CT ABDOMEN 2019",
            "modalities": ["CT"],
            "rank": 1,
            "warmed": True,
            "reports": [],
        }
    ]
