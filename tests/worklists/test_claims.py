"""Claims are leases: one winner among simultaneous claimers, expiry, heartbeats, release,
reassignment, decline, and an audit row for each."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tests.worklists.conftest import Api


def _radiologist(reading: Any, name: str) -> Any:
    """Another radiologist of demo-readers who may read CT at demo-hospital."""
    from tenants import services
    from tenants.models import Role, User
    from worklists.models import Licence, Privilege

    user = User.objects.create_user(name, password=reading.password, display_name=name.title())
    services.add_membership(user=user, group=reading.people.group, role=Role.RADIOLOGIST)
    start = date(2020, 1, 1)
    Licence.objects.create(user=user, jurisdiction="US-CA", number=name, valid_from=start)
    Privilege.objects.create(
        user=user, tenant=reading.people.demo, modalities=["CT"], valid_from=start
    )
    return user


def _events(action: str, item: Any) -> list[Any]:
    from tenants.models import AuditEvent

    return [e for e in AuditEvent.objects.filter(action=action) if e.detail.get("item") == item.pk]


def _assert_audited(action: str, item: Any, actor: Any, outcome: str = "success") -> Any:
    events = [e for e in _events(action, item) if e.actor_user_id == actor.pk]
    assert events, f"no {action} by {actor} for item {item.pk}"
    event = events[0]
    assert event.tenant_id == item.tenant_id
    assert event.outcome == outcome
    assert event.study_instance_uid == item.study.study_instance_uid
    assert event.patient_ref == item.patient_id
    return event


def test_twenty_simultaneous_claimers_get_one_200_and_nineteen_409s_naming_the_winner(
    web, reading, token_for
):
    from tenants.models import AuditAction

    item = reading.item(reading.people.demo)
    users = [_radiologist(reading, f"reader{n:02d}") for n in range(20)]
    apis = [Api(web, token_for(u)) for u in users]
    for api in apis:  # every session is open before the race starts
        assert item.pk in api.id_set()
    start = threading.Barrier(len(apis))

    def claim(api: Api) -> requests.Response:
        start.wait()
        return api.post(f"items/{item.pk}/claim/")

    with ThreadPoolExecutor(max_workers=len(apis)) as pool:
        responses = list(pool.map(claim, apis))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 19, codes
    winner = next(r.json() for r in responses if r.status_code == 200)
    winner_name = winner["holder"]["username"]
    assert winner["state"] == "in_progress" and winner["lease_token"]
    for response in responses:
        if response.status_code == 409:
            body = response.json()
            assert body["holder"]["username"] == winner_name
            assert body["since"] is not None
            assert winner_name.title() in body["detail"]
    item.refresh_from_db()
    assert item.holder.username == winner_name
    claims = _events(AuditAction.ITEM_CLAIM, item)
    assert sorted(e.outcome for e in claims) == ["failure"] * 19 + ["success"]


def test_an_expired_lease_returns_the_item_to_the_others(reading):
    from tenants import audit
    from worklists import queries, services
    from worklists.models import ItemState

    item = reading.item(reading.people.demo)
    other = _radiologist(reading, "ivan")
    now = timezone.now()
    services.claim(item, reading.bob, audit.Actor.for_user(reading.bob), now=now)
    with pytest.raises(services.Conflict) as held:
        services.claim(item, other, audit.Actor.for_user(other), now=now + timedelta(minutes=5))
    assert held.value.holder == reading.bob
    assert item.pk not in set(queries.worklist(other, now=now).values_list("id", flat=True))

    later = now + services.lease_duration() + timedelta(seconds=1)
    assert item.pk in set(queries.worklist(other, now=later).values_list("id", flat=True))
    assert services.expire_leases(now=later) == 1
    item.refresh_from_db()
    assert item.holder is None and item.state == ItemState.SCHEDULED
    services.claim(item, other, audit.Actor.for_user(other), now=later)
    assert item.holder == other


def test_a_lapsed_lease_puts_the_item_back_on_another_radiologists_list(web, reading, token_for):
    from worklists.models import WorkItem

    item = reading.item(reading.people.second)
    bob, erin = Api(web, token_for(reading.bob)), Api(web, token_for(reading.erin))
    assert bob.post(f"items/{item.pk}/claim/").status_code == 200
    assert item.pk not in erin.id_set()
    conflict = erin.post(f"items/{item.pk}/claim/")
    assert conflict.status_code == 409 and conflict.json()["holder"]["username"] == "bob"

    WorkItem.objects.filter(pk=item.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert item.pk in erin.id_set()
    row = next(r for r in erin.get("items/").json()["results"] if r["id"] == item.pk)
    assert row["holder"] is None  # a lapsed lease holds nothing
    taken = erin.post(f"items/{item.pk}/claim/")
    assert taken.status_code == 200 and taken.json()["holder"]["username"] == "erin"


def test_a_heartbeat_extends_the_lease_and_a_wrong_token_has_lost_it(web, reading, token_for):
    from tenants.models import AuditAction
    from worklists.models import WorkItem

    item = reading.item(reading.people.demo)
    bob = Api(web, token_for(reading.bob))
    claimed = bob.post(f"items/{item.pk}/claim/").json()
    soon = timezone.now() + timedelta(seconds=30)
    WorkItem.objects.filter(pk=item.pk).update(lease_expires_at=soon)

    beat = bob.post(f"items/{item.pk}/heartbeat/", {"lease_token": claimed["lease_token"]})
    assert beat.status_code == 200, beat.text
    extended = parse_datetime(beat.json()["lease_expires_at"])
    assert isinstance(extended, datetime) and extended > soon + timedelta(minutes=5)
    item.refresh_from_db()
    assert item.lease_expires_at == extended

    lost = bob.post(f"items/{item.pk}/heartbeat/", {"lease_token": str(uuid.uuid4())})
    assert lost.status_code == 409
    assert "ended" in lost.json()["detail"]
    _assert_audited(AuditAction.ITEM_HEARTBEAT_LOST, item, reading.bob, "failure")
    bad = bob.post(f"items/{item.pk}/heartbeat/", {"lease_token": "not-a-token"})
    assert (
        bad.status_code == 400 and bad.json()["detail"] == "The lease token is not a valid token."
    )
    missing = bob.post(f"items/{item.pk}/heartbeat/", {})
    assert missing.status_code == 400 and "lease_token" in missing.json()["detail"]


def test_the_holder_releases_and_the_item_is_free_again(web, reading, token_for):
    from tenants.models import AuditAction

    item = reading.item(reading.people.demo)
    bob = Api(web, token_for(reading.bob))
    bob.post(f"items/{item.pk}/claim/")
    released = bob.post(f"items/{item.pk}/release/")
    assert released.status_code == 200, released.text
    body = released.json()
    assert body["holder"] is None and body["state"] == "scheduled"
    assert body["reading_state"] == "unread"
    event = _assert_audited(AuditAction.ITEM_RELEASE, item, reading.bob)
    assert event.detail["by_admin"] is False and event.detail["previous_holder"] == reading.bob.pk


def test_an_admin_releases_someone_elses_claim_only_with_a_reason(web, reading, token_for):
    from tenants.models import AuditAction

    item = reading.item(reading.people.demo)
    Api(web, token_for(reading.bob)).post(f"items/{item.pk}/claim/")
    grace = Api(web, token_for(reading.grace))
    dave = Api(web, token_for(reading.dave))

    assert dave.post(f"items/{item.pk}/release/", {"reason": "mine"}).status_code == 404
    without = grace.post(f"items/{item.pk}/release/")
    assert without.status_code == 400
    assert without.json() == {"detail": "Say why you release another radiologist's claim."}
    item.refresh_from_db()
    assert item.holder == reading.bob

    released = grace.post(f"items/{item.pk}/release/", {"reason": "Bob went home"})
    assert released.status_code == 200 and released.json()["holder"] is None
    event = _assert_audited(AuditAction.ITEM_RELEASE, item, reading.grace)
    assert event.detail["by_admin"] is True
    assert event.detail["reason"] == "Bob went home"
    assert event.detail["previous_holder"] == reading.bob.pk


def test_reassigning_to_an_ineligible_radiologist_is_refused(web, reading, token_for):
    from tenants.models import AuditAction

    item = reading.item(reading.people.second)
    grace = Api(web, token_for(reading.grace))
    refused = grace.post(f"items/{item.pk}/reassign/", {"to": "dave", "reason": "cover"})
    assert refused.status_code == 400
    assert refused.json() == {"detail": "Dave is not credentialed to read this study."}
    unknown = grace.post(f"items/{item.pk}/reassign/", {"to": "nobody", "reason": "cover"})
    assert unknown.status_code == 400
    assert (
        Api(web, token_for(reading.bob))
        .post(f"items/{item.pk}/reassign/", {"to": "erin", "reason": "cover"})
        .status_code
        == 403
    )

    moved = grace.post(f"items/{item.pk}/reassign/", {"to": "erin", "reason": "cover"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["holder"]["username"] == "erin"
    assert moved.json()["assigned_to"]["username"] == "erin"
    event = _assert_audited(AuditAction.ITEM_REASSIGN, item, reading.grace)
    assert event.detail["to_user"] == reading.erin.pk and event.detail["reason"] == "cover"
    # Erin now has it on her own list.
    assert item.pk in Api(web, token_for(reading.erin)).id_set(state="mine")


def test_a_radiologist_declines_an_item_assigned_to_them(web, reading, token_for):
    from tenants.models import AuditAction
    from worklists.models import Decline

    item = reading.item(reading.people.demo)
    grace = Api(web, token_for(reading.grace))
    assert grace.post(f"items/{item.pk}/reassign/", {"to": "bob", "reason": "x"}).status_code == 200
    bob = Api(web, token_for(reading.bob))
    assert bob.post(f"items/{item.pk}/decline/").status_code == 400
    declined = bob.post(f"items/{item.pk}/decline/", {"reason": "conflict of interest"})
    assert declined.status_code == 200, declined.text
    assert declined.json()["assigned_to"] is None and declined.json()["holder"] is None
    assert Decline.objects.filter(item=item, user=reading.bob).exists()
    _assert_audited(AuditAction.ITEM_DECLINE, item, reading.bob)
    # Not assigned to him any more: a second decline is refused.
    assert bob.post(f"items/{item.pk}/decline/", {"reason": "again"}).status_code == 400


def test_claim_release_and_view_each_leave_an_audit_row(web, reading, token_for):
    from tenants.models import AuditAction

    item = reading.item(reading.people.demo)
    bob = Api(web, token_for(reading.bob))
    assert bob.get(f"items/{item.pk}/").status_code == 200
    claimed = bob.post(f"items/{item.pk}/claim/")
    assert claimed.status_code == 200
    assert bob.post(f"items/{item.pk}/claim/").status_code == 200  # renewing your own claim
    bob.post(f"items/{item.pk}/release/")
    _assert_audited(AuditAction.ITEM_VIEW, item, reading.bob)
    claims = [e for e in _events(AuditAction.ITEM_CLAIM, item) if e.actor_user_id == reading.bob.pk]
    assert len(claims) == 2 and {e.outcome for e in claims} == {"success"}
    assert all(e.actor_token_id is not None for e in claims)  # the bearer token is named
    _assert_audited(AuditAction.ITEM_RELEASE, item, reading.bob)
