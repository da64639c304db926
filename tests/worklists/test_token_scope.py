"""Hospital-scoped and read-only API tokens on the worklist API, against the live server.

A token kept to one hospital (``ApiToken.tenant``) finds nothing of the others: their items are
neither listed, counted, measured nor reachable, and their privileges are not listed. A
read-only token changes nothing anywhere: every writing method of every API that takes tokens
answers 403 before its view runs.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from django.urls import URLPattern, URLResolver, get_resolver

from tenants import tokens
from tenants.auth import BearerTokenAuthentication
from tests.worklists.conftest import Api


def _token(user: Any, *, hospital: str = "", read_only: bool = False) -> str:
    return tokens.issue(user=user, name="scope test", tenant_slug=hospital, read_only=read_only)[1]


@pytest.fixture
def items(reading: Any) -> dict[str, Any]:
    """One open item at each hospital, both in bob's coverage."""
    return {
        "demo": reading.item(reading.people.demo),
        "second": reading.item(reading.people.second),
    }


def test_a_token_kept_to_one_hospital_lists_and_counts_only_its_items(web, reading, items):
    everywhere = Api(web, _token(reading.bob))
    second_only = Api(web, _token(reading.bob, hospital="second-hospital"))
    assert everywhere.id_set() == {items["demo"].pk, items["second"].pk}
    assert second_only.id_set() == {items["second"].pk}
    # Asking for the other hospital by name finds nothing, as for someone who never read there.
    assert second_only.ids(tenant="demo-hospital") == []
    # Saved views count through the same scope.
    view = second_only.post("views/", {"name": "All open", "filters": {}})
    assert view.status_code == 201, view.text
    counts = {row["id"]: row["count"] for row in second_only.get("views/counts/").json()}
    assert counts[view.json()["id"]] == 1
    counts = {row["id"]: row["count"] for row in everywhere.get("views/counts/").json()}
    assert counts[view.json()["id"]] == 2


def test_a_token_kept_to_one_hospital_cannot_reach_another_hospitals_item(web, reading, items):
    from worklists.models import WorkItem

    second_only = Api(web, _token(reading.bob, hospital="second-hospital"))
    theirs = items["demo"].pk
    assert second_only.get(f"items/{theirs}/").status_code == 404
    assert second_only.post(f"items/{theirs}/claim/").status_code == 404
    assert WorkItem.objects.get(pk=theirs).holder_id is None
    # Its own hospital's item: read and claimed as usual.
    assert second_only.get(f"items/{items['second'].pk}/").status_code == 200
    assert second_only.post(f"items/{items['second'].pk}/claim/").status_code == 200
    assert WorkItem.objects.get(pk=items["second"].pk).holder_id == reading.bob.pk


def test_metrics_and_privileges_of_a_scoped_token_are_its_hospitals(web, reading, items):
    from django.utils import timezone

    from worklists.models import WorkItem

    # Both read to a preliminary report: what the turnaround metrics measure.
    WorkItem.objects.filter(pk__in=[i.pk for i in items.values()]).update(
        preliminary_at=timezone.now()
    )
    grace = reading.grace  # group admin of demo-readers: privileges at both hospitals
    everywhere = Api(web, _token(grace))
    second_only = Api(web, _token(grace, hospital="second-hospital"))

    def hospitals(api: Api) -> set[str]:
        rows = api.get("privileges/").json()["results"]
        return {row["tenant"] for row in rows}

    assert hospitals(everywhere) == {"demo-hospital", "second-hospital"}
    assert hospitals(second_only) == {"second-hospital"}
    # Nor can the scoped token grant one at the other hospital.
    granted = second_only.post(
        "privileges/",
        {
            "user": "dave",
            "tenant": "demo-hospital",
            "modalities": ["CT"],
            "valid_from": "2024-01-01",
        },
    )
    assert granted.status_code == 403, granted.text
    assert "privilege" in granted.json()["detail"]
    # Licences are a reading group's, not a hospital's: the scoped token manages none.
    response = everywhere.get("licences/")
    assert response.status_code == 200, response.text[:2000]
    licences = response.json()["results"]
    assert any(row["can_edit"] for row in licences)
    assert not any(row["can_edit"] for row in second_only.get("licences/").json()["results"])

    bob_everywhere = Api(web, _token(reading.bob))
    bob_second = Api(web, _token(reading.bob, hospital="second-hospital"))
    tenants_all = {row["key"] for row in bob_everywhere.get("metrics/").json()["by_tenant"]}
    tenants_second = {row["key"] for row in bob_second.get("metrics/").json()["by_tenant"]}
    assert tenants_all >= {"demo-hospital", "second-hospital"}
    assert tenants_second == {"second-hospital"}


def _api_routes() -> list[str]:
    """Every route under /api/ whose view takes bearer tokens, its path parameters filled."""

    def walk(patterns: Any, prefix: str = "") -> Any:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern

    routes = []
    for path, pattern in walk(get_resolver().url_patterns):
        view = getattr(pattern.callback, "cls", None)
        classes = getattr(view, "authentication_classes", [])
        if path.startswith("api/") and BearerTokenAuthentication in classes:
            routes.append(re.sub(r"<(?:\w+:)?(\w+)>", _fill, path))
    return routes


def _fill(match: re.Match[str]) -> str:
    return {"tenant_slug": "demo-hospital", "fmt": "csv", "token": "x"}.get(match[1], "1")


def test_a_read_only_token_changes_nothing_through_any_api(web, reading, items):
    from tenants.models import AuditEvent
    from worklists.models import SavedView, WorkItem

    token = _token(reading.grace, read_only=True)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    before = (AuditEvent.objects.count(), SavedView.objects.count())
    routes = _api_routes()
    assert "api/worklist/items/1/claim/" in routes and len(routes) > 40
    item = items["demo"].pk
    refused = []
    for route in routes:
        url = f"{web.url}/{route.replace('items/1/', f'items/{item}/')}"
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = session.request(method, url, json={}, timeout=60)
            refused.append((method, route, response.status_code))
            if response.status_code == 403:
                assert "read-only" in response.text, (method, route, response.text[:2000])
    assert {status for _, _, status in refused} == {403}, [r for r in refused if r[2] != 403]
    assert (AuditEvent.objects.count(), SavedView.objects.count()) == before
    assert WorkItem.objects.get(pk=item).holder_id is None
    # Reading still works.
    assert session.get(f"{web.url}/api/worklist/items/", timeout=60).status_code == 200
