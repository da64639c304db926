"""Who may read a delivered report: its readers and admins, and once final the study's referring
physician; nobody else, and another hospital's users find nothing. The panel's query count does
not grow with the number of versions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import wait_for

from .helpers import actor, sign_final, status_of


def _referrer(reading: Any, name: str, person_name: str) -> Any:
    from tenants import services
    from tenants.models import Role, User

    user = User.objects.create_user(name, password=reading.password, person_name=person_name)
    services.add_membership(user=user, tenant=reading.people.demo, role=Role.REFERRING_PHYSICIAN)
    return user


def _referred_to(item: Any, person_name: str) -> None:
    from studies.dicom.attributes import search_form
    from studies.models import Study

    Study.objects.filter(pk=item.study_id).update(
        referring_physician_name=person_name,
        referring_physician_name_search=search_form(person_name),
    )


@pytest.mark.smoke
def test_the_referring_physician_reads_the_final_report_and_nothing_else(
    reading: Any, indexer: Any, client: Any
) -> None:
    from reports import services as reports
    from worklists import services

    welby = _referrer(reading, "welby", "Welby^Marcus")
    other = _referrer(reading, "kildare", "KILDARE^JAMES")
    final_item = reading.item()
    _referred_to(final_item, "WELBY^MARCUS")
    final = sign_final(reading, final_item)

    bob = reading.bob
    prelim_item = reading.item()
    _referred_to(prelim_item, "WELBY^MARCUS")
    services.claim(prelim_item, bob, actor(bob))
    draft = reports.save_draft(
        item=prelim_item, user=bob, actor=actor(bob), sections={"impression": "Normal."}
    )
    prelim = reports.sign(
        version=draft, user=bob, actor=actor(bob), status="preliminary", password=reading.password
    )
    wait_for(lambda: status_of(final, "pdf") == "sent", timeout=60, what="the PDF")

    client.force_login(welby)
    assert client.get(f"/reports/delivery/versions/{final.pk}/report.pdf").status_code == 200
    fhir = client.get(f"/api/reports/delivery/fhir/DiagnosticReport/{final.report_id}")
    assert fhir.status_code == 200
    assert client.get(f"/reports/delivery/versions/{prelim.pk}/report.pdf").status_code == 404
    # The panel belongs to the reading room, not to referrers.
    assert client.get(f"/reports/delivery/items/{final_item.pk}/panel/").status_code == 404

    client.force_login(other)
    assert client.get(f"/reports/delivery/versions/{final.pk}/report.pdf").status_code == 404
    client.force_login(reading.people.charlie)
    for url in (
        f"/reports/delivery/versions/{final.pk}/report.pdf",
        f"/api/reports/delivery/fhir/DiagnosticReport/{final.report_id}",
        f"/api/reports/delivery/versions/{final.pk}/hl7",
        "/reports/delivery/versions/999999/report.pdf",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"DOE" not in response.content


def test_the_panel_costs_the_same_queries_for_one_version_or_three(
    reading: Any, indexer: Any, client: Any, django_assert_max_num_queries: Any
) -> None:
    from reports import services as reports

    bob = reading.bob
    item = reading.item()
    final = sign_final(reading, item)
    client.force_login(bob)
    url = f"/reports/delivery/items/{item.pk}/panel/"
    client.get(url)  # the session, warmed
    with django_assert_max_num_queries(1000) as one:
        client.get(url)
    for _ in range(2):
        draft = reports.start_change(
            report=final.report, user=bob, actor=actor(bob), kind="addendum",
            sections={"findings": "More."},
        )  # fmt: skip
        final = reports.sign(
            version=draft, user=bob, actor=actor(bob), status="final", password=reading.password
        )
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count('class="delivery-version"') == 3
