"""REST API: tenant scoping, 404 for other tenants, audit, and query counts."""

from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file
from rest_framework.test import APIClient

from studies import services
from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now


def _ingest(tenant, names: list[str]) -> None:  # noqa: ANN001
    ingest_now(tenant, [open(get_testdata_file(n), "rb").read() for n in names])


def _client(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.smoke
def test_alice_lists_her_hospitals_studies_and_the_listing_is_audited(people):
    _ingest(people.demo, ["CT_small.dcm", "MR_small.dcm"])
    response = _client(people.alice).get("/api/t/demo-hospital/studies/")
    assert response.status_code == 200
    assert response.json()["count"] == 2
    event = AuditEvent.objects.get(action=AuditAction.STUDY_LIST)
    assert (
        event.actor_user == people.alice
        and event.tenant == people.demo
        and event.detail["count"] == 2
    )


def test_bob_reads_both_hospitals_through_the_groups_agreements(people):
    _ingest(people.demo, ["CT_small.dcm"])
    _ingest(people.second, ["MR_small.dcm"])
    client = _client(people.bob)
    assert client.get("/api/t/demo-hospital/studies/").json()["count"] == 1
    assert client.get("/api/t/second-hospital/studies/").json()["count"] == 1


@pytest.mark.smoke
def test_charlie_gets_404_for_demo_hospital_and_its_study(people):
    _ingest(people.demo, ["CT_small.dcm"])
    study_uid = services.Study.objects.get().study_instance_uid  # type: ignore[attr-defined]
    client = _client(people.charlie)
    listing = client.get("/api/t/demo-hospital/studies/")
    detail = client.get(f"/api/t/demo-hospital/studies/{study_uid}/")
    missing = client.get("/api/t/no-such-hospital/studies/")
    assert listing.status_code == detail.status_code == missing.status_code == 404
    assert listing.json() == missing.json()
    # The same study UID under his own hospital is simply not there.
    assert client.get(f"/api/t/second-hospital/studies/{study_uid}/").status_code == 404


def test_a_study_detail_lists_its_series_and_is_audited_with_the_patient(people):
    _ingest(people.demo, ["CT_small.dcm"])
    study = services.Study.objects.get()  # type: ignore[attr-defined]
    response = _client(people.alice).get(
        f"/api/t/demo-hospital/studies/{study.study_instance_uid}/"
    )
    assert response.status_code == 200
    assert response.json()["series"][0]["number_of_series_related_instances"] == 1
    event = AuditEvent.objects.get(action=AuditAction.STUDY_VIEW)
    assert (
        event.patient_ref == study.patient_id
        and event.study_instance_uid == study.study_instance_uid
    )


def test_listing_studies_costs_the_same_queries_for_one_or_many(
    people, django_assert_max_num_queries
):
    _ingest(
        people.demo,
        ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "waveform_ecg.dcm", "JPEG2000.dcm"],
    )
    client = _client(people.alice)
    with django_assert_max_num_queries(8):
        response = client.get("/api/t/demo-hospital/studies/")
    assert response.json()["count"] >= 4


def test_the_ingest_report_is_for_the_hospitals_admins(people):
    _ingest(people.demo, ["CT_small.dcm"])
    assert _client(people.alice).get("/api/t/demo-hospital/receipts/").json()["count"] == 1
    assert _client(people.bob).get("/api/t/demo-hospital/receipts/").status_code == 403
    assert _client(people.charlie).get("/api/t/demo-hospital/receipts/").status_code == 404


def test_the_openapi_schema_is_served(people):
    response = _client(people.alice).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/t/{tenant_slug}/studies/" in response.content


def test_a_view_cannot_override_get_queryset():
    from studies.api import TenantScopedView

    with pytest.raises(TypeError, match="scoped_queryset"):
        type("Leaky", (TenantScopedView,), {"get_queryset": lambda self: None})
