"""Worklist pages, through the live gunicorn server as a browser would use them: log in at
/login/, read the list, claim from it, open an item, manage it, save views. What the pages wrote
is checked in the rows and the audit log."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants import audit
from tenants.models import AuditAction, AuditEvent
from worklists import services
from worklists.models import ItemState, SavedView, WorkItem


class Browser:
    """A requests session logged in through the login form, posting with its CSRF token."""

    def __init__(self, web: Any, username: str, password: str) -> None:
        self.base = web.url
        self.session = requests.Session()
        self.session.get(f"{self.base}/login/", timeout=30)
        response = self.post("/login/", {"username": username, "password": password})
        assert response.status_code == 200 and "/login/" not in response.url, response.text[:500]

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=30, **kwargs)

    def post(
        self, path: str, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        body = {"csrfmiddlewaretoken": self.session.cookies["csrftoken"], **(data or {})}
        headers = {"Referer": f"{self.base}{path}", **kwargs.pop("headers", {})}
        return self.session.post(
            f"{self.base}{path}", data=body, headers=headers, timeout=30, **kwargs
        )


def rows(html: str) -> set[int]:
    """The item ids the list shows."""
    return {int(i) for i in re.findall(r'<tr data-item="(\d+)"', html)}


@pytest.fixture
def ward(reading: Any) -> Any:
    """Items of both hospitals: two bob may read, one he may not (no privilege for US)."""
    demo, second = reading.people.demo, reading.people.second
    reading.demo_ct = reading.item(demo, patient_name="DEMO^ANNA", accession="ACC-DEMO")
    reading.second_ct = reading.item(second, patient_name="SECOND^BEN", accession="ACC-SECOND")
    reading.demo_us = reading.item(
        demo, modality="US", description="US LIVER", patient_name="HIDDEN^CARL"
    )
    return reading


def test_the_list_shows_bobs_items_from_both_hospitals_and_not_what_he_cannot_read(web, ward):
    bob = Browser(web, "bob", ward.password)
    page = bob.get("/worklist/")
    assert page.status_code == 200
    assert rows(page.text) == {ward.demo_ct.pk, ward.second_ct.pk}
    assert "DEMO, ANNA" in page.text and "SECOND, BEN" in page.text
    assert "HIDDEN" not in page.text
    assert "Demo Hospital" in page.text and "Second Hospital" in page.text
    # Each row has a claim form with its CSRF token; the body polls the same URL every 3 s.
    assert page.text.count('name="csrfmiddlewaretoken"') >= 2
    assert 'hx-get="/worklist/"' in page.text and 'hx-trigger="every 3s"' in page.text

    listed = AuditEvent.objects.filter(action=AuditAction.WORKLIST_LIST, actor_user=ward.bob)
    by_tenant = {e.tenant_id: e.detail for e in listed}
    assert by_tenant[ward.people.demo.pk]["items"] == [ward.demo_ct.pk]
    assert by_tenant[ward.people.second.pk]["items"] == [ward.second_ct.pk]


def test_filters_narrow_the_list_and_the_audit_keeps_their_keys_not_their_values(web, ward):
    bob = Browser(web, "bob", ward.password)
    only_second = bob.get("/worklist/", params={"tenant": "second-hospital"})
    assert rows(only_second.text) == {ward.second_ct.pk}
    by_name = bob.get("/worklist/", params={"q": "demo^anna"})
    assert rows(by_name.text) == {ward.demo_ct.pk}
    by_accession = bob.get("/worklist/", params={"q": "ACC-SECOND"})
    assert rows(by_accession.text) == {ward.second_ct.pk}
    assert rows(bob.get("/worklist/", params={"modality": "MR"}).text) == set()
    assert rows(bob.get("/worklist/", params={"priority": "stat"}).text) == set()
    assert rows(bob.get("/worklist/", params={"overdue": "1"}).text) == set()
    due_soon = bob.get("/worklist/", params={"due_within": str(25 * 60)})
    assert rows(due_soon.text) == {ward.demo_ct.pk, ward.second_ct.pk}

    bad = bob.get("/worklist/", params={"due_within": "soon"})
    assert bad.status_code == 400
    assert "due_within is a number of minutes" in bad.text and rows(bad.text) == set()

    searched = AuditEvent.objects.filter(
        action=AuditAction.WORKLIST_LIST, actor_user=ward.bob, detail__filters__contains=["q"]
    )
    assert searched.count() == 2
    for event in searched:
        assert event.detail["filters"] == ["q", "sort"]
        assert "ANNA" not in str(event.detail).upper() and "ACC-SECOND" not in str(event.detail)


def test_the_htmx_poll_returns_only_the_rows(web, ward):
    bob = Browser(web, "bob", ward.password)
    poll = bob.get("/worklist/", params={"tenant": "demo-hospital"}, headers={"HX-Request": "true"})
    assert poll.status_code == 200
    assert "<html" not in poll.text and "<tbody" not in poll.text
    assert rows(poll.text) == {ward.demo_ct.pk}


def test_claim_from_the_list_opens_the_item_bob_now_holds(web, ward):
    bob = Browser(web, "bob", ward.password)
    item = ward.demo_ct
    claimed = bob.post(f"/worklist/items/{item.pk}/claim", {"next": "/worklist/"})
    assert claimed.status_code == 200 and claimed.url.endswith(f"/worklist/items/{item.pk}/")
    assert "You hold this study" in claimed.text
    assert "Release" in claimed.text and "Pause clock" in claimed.text
    assert f"/worklist/items/{item.pk}/heartbeat" in claimed.text
    item.refresh_from_db()
    assert item.holder == ward.bob and item.state == ItemState.IN_PROGRESS
    # The list marks it as his.
    listed = bob.get("/worklist/")
    assert item.pk in rows(listed.text) and "Held by me" in listed.text
    # The page renews the lease with the token the claim left in the session.
    before = item.lease_expires_at
    beat = bob.post(f"/worklist/items/{item.pk}/heartbeat")
    assert beat.status_code == 200
    item.refresh_from_db()
    assert item.lease_expires_at >= before
    assert AuditEvent.objects.filter(
        action=AuditAction.ITEM_CLAIM, actor_user=ward.bob, detail__item=item.pk
    ).exists()
    viewed = AuditEvent.objects.filter(action=AuditAction.ITEM_VIEW, actor_user=ward.bob)
    assert viewed.filter(tenant=ward.people.demo, detail__item=item.pk).exists()

    released = bob.post(f"/worklist/items/{item.pk}/release")
    assert "Released" in released.text and "Nobody holds this study" in released.text
    item.refresh_from_db()
    assert item.holder is None


def test_a_claim_in_another_browser_ends_this_ones_heartbeat_with_409(web, ward):
    item = ward.demo_ct
    first, second = Browser(web, "bob", ward.password), Browser(web, "bob", ward.password)
    first.post(f"/worklist/items/{item.pk}/claim")
    second.post(f"/worklist/items/{item.pk}/claim")
    assert second.post(f"/worklist/items/{item.pk}/heartbeat").status_code == 200
    lost = first.post(f"/worklist/items/{item.pk}/heartbeat")
    assert lost.status_code == 409 and "claim on this study has ended" in lost.json()["detail"]
    # The first browser is offered to continue here rather than shown as someone else's.
    assert "Continue reading in this browser" in first.get(f"/worklist/items/{item.pk}/").text


def test_another_radiologists_claim_shows_as_held_and_leaves_bobs_list(web, ward):
    item = ward.second_ct
    services.claim(item, ward.erin, audit.Actor.for_user(ward.erin))
    item.refresh_from_db()
    since = f"{item.claimed_at:%H:%M}"
    bob = Browser(web, "bob", ward.password)
    assert item.pk not in rows(bob.get("/worklist/").text)
    page = bob.get(f"/worklist/items/{item.pk}/")
    assert f"Held by Erin since {since}" in page.text
    assert 'class="primary claim"' not in page.text
    refused = bob.post(
        f"/worklist/items/{item.pk}/claim", {"next": "/worklist/?tenant=second-hospital"}
    )
    assert refused.url.endswith("/worklist/?tenant=second-hospital")
    assert f"Held by Erin since {since}." in refused.text
    item.refresh_from_db()
    assert item.holder == ward.erin


@pytest.mark.smoke
def test_dave_without_privilege_and_charlie_of_the_other_hospital_get_404(web, ward):
    item = ward.demo_ct
    dave = Browser(web, "dave", ward.password)
    assert item.pk not in rows(dave.get("/worklist/").text)
    assert dave.get(f"/worklist/items/{item.pk}/").status_code == 404
    assert dave.post(f"/worklist/items/{item.pk}/claim").status_code == 404
    charlie = Browser(web, "charlie", ward.password)
    for path in (f"/worklist/items/{item.pk}/", f"/worklist/items/{item.pk + 1000}/"):
        response = charlie.get(path)
        assert response.status_code == 404 and "DEMO" not in response.text
    assert charlie.post(f"/worklist/items/{item.pk}/cancel", {"reason": "x"}).status_code == 404
    assert charlie.post(f"/worklist/items/{item.pk}/heartbeat").status_code == 404
    # Charlie administers second-hospital: its item is his to see and manage.
    assert charlie.get(f"/worklist/items/{ward.second_ct.pk}/").status_code == 200
    item.refresh_from_db()
    assert item.state == ItemState.SCHEDULED and item.holder is None
    assert not AuditEvent.objects.filter(
        action=AuditAction.ITEM_VIEW, detail__item=item.pk
    ).exists()


def test_the_group_lead_sees_who_can_read_and_reassigns_with_a_reason(web, ward):
    item = ward.demo_ct
    grace = Browser(web, "grace", ward.password)
    page = grace.get(f"/worklist/items/{item.pk}/")
    assert page.status_code == 200 and "Who can read this" in page.text
    assert "no privilege at this hospital" in page.text  # dave
    assert "licence for US-CA expired on" in page.text  # fay
    assert f'<option value="{ward.bob.pk}">bob</option>' in page.text
    assert f'<option value="{ward.dave.pk}">' not in page.text

    no_reason = grace.post(f"/worklist/items/{item.pk}/reassign", {"to": ward.bob.pk})
    assert "Say why you reassign this study." in no_reason.text
    done = grace.post(
        f"/worklist/items/{item.pk}/reassign", {"to": ward.bob.pk, "reason": "bob covers CT"}
    )
    assert "Reassigned to bob." in done.text and "Held by bob since" in done.text
    item.refresh_from_db()
    assert item.holder == ward.bob and item.assigned_to == ward.bob
    # Bob holds it without a token in his browser: the page offers to continue there.
    bob = Browser(web, "bob", ward.password)
    assert "Continue reading in this browser" in bob.get(f"/worklist/items/{item.pk}/").text

    changed = grace.post(f"/worklist/items/{item.pk}/priority", {"priority": "stat"})
    assert "Priority changed" in changed.text
    item.refresh_from_db()
    assert item.priority.code == "stat"
    assert item.sla_due_at == item.arrived_at + timedelta(minutes=60)
    canceled = grace.post(f"/worklist/items/{item.pk}/cancel", {"reason": "duplicate order"})
    assert "The work item is canceled." in canceled.text
    item.refresh_from_db()
    assert item.state == ItemState.CANCELED
    # Bob, a reader, is not a manager: the same form is refused with a message, not done.
    other = ward.second_ct
    refused = bob.post(f"/worklist/items/{other.pk}/cancel", {"reason": "mine now"})
    assert "Only an admin can cancel a work item." in refused.text
    assert WorkItem.objects.get(pk=other.pk).state == ItemState.SCHEDULED


def test_pause_and_resume_the_clock_as_the_holder(web, ward):
    item = ward.demo_ct
    bob = Browser(web, "bob", ward.password)
    bob.post(f"/worklist/items/{item.pk}/claim")
    empty = bob.post(f"/worklist/items/{item.pk}/pause", {"reason": " "})
    assert "Say why the clock is paused" in empty.text
    paused = bob.post(f"/worklist/items/{item.pk}/pause", {"reason": "waiting for priors"})
    assert "The SLA clock is paused." in paused.text and "waiting for priors" in paused.text
    assert "clock clock-paused" in bob.get("/worklist/").text
    resumed = bob.post(f"/worklist/items/{item.pk}/resume")
    assert "runs again" in resumed.text
    item.refresh_from_db()
    assert item.sla_paused_at is None


def test_a_saved_view_round_trip_private_and_shared(web, ward):
    bob = Browser(web, "bob", ward.password)
    saved = bob.post(
        "/worklist/views/",
        {"name": "Second only", "share": "", "tenant": "second-hospital", "sort": "sla"},
    )
    assert "Saved the view" in saved.text
    view = SavedView.objects.get(name="Second only")
    assert view.owner == ward.bob and view.group is None
    assert view.filters == {"tenant": "second-hospital", "sort": "sla"}
    # The list names it with its count, and its link applies the filters.
    page = bob.get("/worklist/")
    assert re.search(r"Second only</a>\s*<span class=\"count\"[^>]*>1</span>", page.text)
    assert rows(bob.get("/worklist/?tenant=second-hospital&sort=sla").text) == {ward.second_ct.pk}

    shared = bob.post(
        "/worklist/views/", {"name": "Team CT", "share": ward.people.group.pk, "modality": "CT"}
    )
    assert "shared with Demo Readers" in shared.text
    dave = Browser(web, "dave", ward.password)
    dave_page = dave.get("/worklist/").text
    assert "Team CT" in dave_page and "Second only" not in dave_page
    # Nobody shares with a group they are not in.
    erin = Browser(web, "erin", ward.password)
    refused = erin.post("/worklist/views/", {"name": "x", "share": ward.people.group.pk})
    assert "only with a reading group you are in" in refused.text
    assert not SavedView.objects.filter(name="x").exists()
    # Others' views are not found; your own go.
    assert erin.post(f"/worklist/views/{view.pk}/delete").status_code == 404
    deleted = bob.post(f"/worklist/views/{view.pk}/delete")
    assert "Deleted the view" in deleted.text and "Second only</a>" not in deleted.text
    assert not SavedView.objects.filter(pk=view.pk).exists()


def test_the_dashboard_shows_overdue_items_and_turnaround(web, ward):
    late = ward.item(ward.people.demo, arrived_minutes_ago=2 * 24 * 60, patient_name="LATE^LEO")
    services.escalate_overdue()
    read = ward.item(ward.people.second, arrived_minutes_ago=90)
    services.claim(read, ward.bob, audit.Actor.for_user(ward.bob))
    services.mark_read(read, "preliminary")
    services.mark_read(read, "final")
    bob = Browser(web, "bob", ward.password)
    page = bob.get("/worklist/dashboard/")
    assert page.status_code == 200
    assert f'href="/worklist/items/{late.pk}/"' in page.text
    assert "LATE" not in page.text  # no patient data on the dashboard
    assert "not yet" not in page.text.split("Turnaround")[0]  # escalated: its time shows
    turnaround = page.text.split("Turnaround")[1]
    assert "second-hospital" in turnaround and "bob" in turnaround and "routine" in turnaround
    charlie = Browser(web, "charlie", ward.password).get("/worklist/dashboard/")
    assert f"/worklist/items/{late.pk}/" not in charlie.text


def test_the_list_costs_the_same_queries_for_two_or_twelve_items(reading):
    client = Client()
    client.force_login(reading.bob)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/worklist/").status_code == 200
            assert client.get("/worklist/", headers={"HX-Request": "true"}).status_code == 200
        return len(queries)

    for _ in range(2):
        reading.item(reading.people.demo)
    few = count()
    for _ in range(10):
        reading.item(reading.people.second)
    assert count() == few


def test_a_poll_after_the_session_ended_sends_the_page_to_login(web, ward):
    poll = requests.get(
        f"{web.url}/worklist/",
        headers={"HX-Request": "true", "HX-Current-URL": f"{web.url}/worklist/"},
        allow_redirects=False,
        timeout=30,
    )
    assert poll.headers.get("HX-Redirect", "").startswith("/login/?next=")
