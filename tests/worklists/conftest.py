"""A reading set-up: two hospitals, two reading groups, radiologists with and without credentials.

- demo-hospital (US-CA) and second-hospital (US-NY), from the ``people`` fixture.
- demo-readers (group, from ``people``): agreements with both hospitals, covering everything.
- night-readers: an agreement with second-hospital only, covering CT only.
- bob: radiologist of demo-readers; licences US-CA and US-NY; privileges CT, MR (neuro) at both.
- dave: radiologist of demo-readers; licence US-CA; no privilege anywhere.
- erin: radiologist of night-readers; licence US-NY; privileges CT and MR at second-hospital.
- fay: radiologist of demo-readers; privileges CT at demo-hospital; her US-CA licence expired.
- grace: group admin of demo-readers (manages credentials, releases and reassigns).

Items are made from Study rows set READY, through the real ``ensure_item`` service.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone

_counter = itertools.count(1)


@dataclass
class Reading:
    people: Any
    night: Any
    bob: Any
    dave: Any
    erin: Any
    fay: Any
    grace: Any
    password: str

    def item(self, tenant: Any = None, **study: Any) -> Any:
        """A work item of a new ready study (see ``make_study`` for the keywords)."""
        return make_item(tenant or self.people.demo, **study)


class Api:
    """requests against the live server as one user, under /api/worklist/."""

    def __init__(self, web: Any, token: str):
        self.base = f"{web.url}/api/worklist"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.base}/{path}", params=params, timeout=60)

    def post(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.session.post(f"{self.base}/{path}", json=body or {}, timeout=60)

    def patch(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.patch(f"{self.base}/{path}", json=body, timeout=60)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(f"{self.base}/{path}", timeout=60)

    def ids(self, **params: Any) -> list[int]:
        response = self.get("items/", **params)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["results"]]

    def id_set(self, **params: Any) -> set[int]:
        return set(self.ids(**params))


def make_study(
    tenant: Any,
    *,
    modality: str = "CT",
    description: str = "CT ABDOMEN",
    body_part: str = "ABDOMEN",
    accession: str | None = None,
    patient_id: str | None = None,
    patient_name: str = "DOE^JANE",
    arrived_minutes_ago: int = 5,
    study_date: date | None = None,
) -> Any:
    from studies.dicom.attributes import search_form
    from studies.models import Patient, Study, StudyState

    n = next(_counter)
    now = timezone.now()
    arrived = now - timedelta(minutes=arrived_minutes_ago)
    patient, _ = Patient.objects.get_or_create(
        tenant=tenant,
        patient_id=patient_id or f"PID{n:05d}",
        issuer_of_patient_id="",
        defaults={"patient_name": patient_name, "patient_name_search": search_form(patient_name)},
    )
    return Study.objects.create(
        tenant=tenant,
        patient=patient,
        study_instance_uid=f"2.25.{900000000 + n}{tenant.pk}",
        study_date=study_date or arrived.date(),
        accession_number=accession if accession is not None else f"ACC{n:05d}",
        study_description=description,
        modalities_in_study=f"\\{modality}\\",
        body_parts_examined=f"\\{body_part}\\",
        number_of_study_related_series=1,
        number_of_study_related_instances=1,
        state=StudyState.READY,
        first_received_at=arrived,
        first_ready_at=now,
        last_instance_at=arrived,
    )


def make_item(tenant: Any, **kwargs: Any) -> Any:
    from worklists import services

    study = make_study(tenant, **kwargs)
    ensured = services.ensure_item(study.pk)
    assert ensured is not None
    return ensured.item


@pytest.fixture
def reading(people: Any) -> Reading:
    from tenants import services
    from tenants.models import Role, User
    from worklists.models import AutoAssignment, Licence, Privilege

    people.demo.jurisdiction = "US-CA"
    people.demo.save()
    people.second.jurisdiction = "US-NY"
    people.second.save()
    night = services.create_group(slug="night-readers", name="Night Readers")
    agreement = services.create_agreement(tenant=people.second, group=night)
    agreement.modalities = ["CT"]
    agreement.save()
    AutoAssignment.objects.create(group=night, enabled=False)

    def user(name: str) -> Any:
        return User.objects.create_user(
            name, password=people.password, display_name=name.title(), email=f"{name}@example.org"
        )

    dave, erin, fay, grace = (user(n) for n in ("dave", "erin", "fay", "grace"))
    bob = people.bob
    services.add_membership(user=dave, group=people.group, role=Role.RADIOLOGIST)
    services.add_membership(user=fay, group=people.group, role=Role.RADIOLOGIST)
    services.add_membership(user=erin, group=night, role=Role.RADIOLOGIST)
    services.add_membership(user=grace, group=people.group, role=Role.GROUP_ADMIN)

    start = date(2020, 1, 1)
    yesterday = timezone.localdate() - timedelta(days=1)
    Licence.objects.create(user=bob, jurisdiction="US-CA", number="CA-1", valid_from=start)
    Licence.objects.create(user=bob, jurisdiction="US-NY", number="NY-1", valid_from=start)
    Licence.objects.create(user=dave, jurisdiction="US-CA", number="CA-2", valid_from=start)
    Licence.objects.create(user=erin, jurisdiction="US-NY", number="NY-3", valid_from=start)
    Licence.objects.create(
        user=fay, jurisdiction="US-CA", number="CA-4", valid_from=start, valid_to=yesterday
    )
    for tenant in (people.demo, people.second):
        Privilege.objects.create(
            user=bob, tenant=tenant, modalities=["CT", "MR"], subspecialties=["neuro"],
            valid_from=start,
        )  # fmt: skip
    Privilege.objects.create(
        user=erin, tenant=people.second, modalities=["CT", "MR"], valid_from=start
    )
    Privilege.objects.create(user=fay, tenant=people.demo, modalities=["CT"], valid_from=start)
    return Reading(people, night, bob, dave, erin, fay, grace, people.password)
