"""The pages: the reading room (editor contract, panels, history, priors' reports, a query bound),
the validator's queue and request page, the hospital's rule, and the referrers' results."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.reports.review.conftest import make_attending

FINDINGS = {
    "clinical_information": "Cough.",
    "technique": "CT chest.",
    "findings": "Small nodule right upper lobe.",
    "impression": "Nodule, follow up in 12 months.",
}


def _actor(user: Any) -> Any:
    from tenants import audit

    return audit.Actor.for_user(user)


def _login(user: Any, password: str) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


def _preliminary(reading: Any, item: Any = None, *, send_to: Any = None, **study: Any) -> Any:
    """bob claims, writes and signs a preliminary (and sends it for review)."""
    from reports import services
    from reports.review import services as review
    from worklists import services as worklist

    bob = reading.bob
    item = item or reading.item(reading.people.demo, **study)
    worklist.claim(item, bob, _actor(bob))
    draft = services.save_draft(item=item, user=bob, actor=_actor(bob), sections=FINDINGS)
    version = services.sign(
        version=draft, user=bob, actor=_actor(bob), status="preliminary", password=reading.password
    )
    if send_to is not False:
        review.request_review(
            version=version, user=bob, actor=_actor(bob), reviewer=send_to, message="Check it."
        )
    return item, version


def test_the_reading_room_keeps_the_editor_contract_and_loads_the_panels(reading):
    from worklists import services as worklist

    item = reading.item(reading.people.demo)
    bob = _login(reading.bob, reading.password)
    before = bob.get(f"/worklist/items/{item.pk}/").content.decode()
    assert 'id="report-editor"' not in before and "Claim this study to write its report" in before
    worklist.claim(item, reading.bob, _actor(reading.bob))
    page = bob.get(f"/worklist/items/{item.pk}/").content.decode()
    assert '<form id="report-editor"' in page
    for section in FINDINGS:
        assert f'name="{section}" data-report-section="{section}"' in page
    assert re.search(r'<input type="hidden" name="key_images" value="\[\]"', page)
    for path in ("templates", "evidence", "delivery", "collab", "critical"):
        assert f'hx-get="/reports/{path}/items/{item.pk}/panel/" hx-trigger="load"' in page
    assert "reports/room.js" in page and "X-CSRFToken" in page
    assert 'id="viewer-window"' in page and "StudyInstanceUIDs" in page


def test_the_reading_room_shows_history_and_priors_reports_in_a_bounded_number_of_queries(
    reading,
):
    from reports import services
    from worklists.models import Prior

    item, preliminary = _preliminary(reading, send_to=False, patient_id="PRIORS1")
    bob = _login(reading.bob, reading.password)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = bob.get(f"/worklist/items/{item.pk}/")
        assert response.status_code == 200
        return len(queries), response.content.decode()

    _, page = count()
    assert "PRELIMINARY" in page and preliminary.content_sha256 in page
    assert 'id="open-finalise"' in page and 'id="open-review"' in page

    def add_priors(first: int, n: int) -> None:
        """Priors of the patient, each with a final report."""
        for rank in range(first, first + n):
            prior_item = reading.item(reading.people.demo, patient_id="PRIORS1")
            _preliminary(reading, prior_item, send_to=False)
            services.finalise(
                preliminary=services.current(prior_item.report), user=reading.bob,
                actor=_actor(reading.bob), password=reading.password,
                sections={"impression": f"Prior impression {rank}."},
            )  # fmt: skip
            Prior.objects.create(item=item, study=prior_item.study, rank=rank)

    add_priors(1, 1)
    few, _ = count()
    add_priors(2, 3)
    final = services.finalise(
        preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password,
    )  # fmt: skip
    services.start_change(
        report=final.report, user=reading.bob, actor=_actor(reading.bob), kind="addendum"
    )
    many, page = count()
    assert many <= few + 1, (few, many)  # not a query per version or per prior
    assert many < 45
    assert all(f"Prior impression {n}." in page for n in range(1, 5))
    assert "FINAL" in page and "an addendum to" in page


def test_a_404_panel_renders_as_nothing_and_another_hospitals_admin_gets_404(reading):
    item = reading.item(reading.people.demo)
    charlie = _login(reading.people.charlie, reading.password)
    assert charlie.get(f"/worklist/items/{item.pk}/").status_code == 404
    assert charlie.get(f"/reports/evidence/items/{item.pk}/panel/").status_code == 404


def test_the_validator_validates_from_the_queue_page(reading):
    from reports.models import ReportVersion
    from tenants.models import AuditAction, AuditEvent

    hugo = make_attending(reading.people)
    item, preliminary = _preliminary(reading, send_to=hugo)
    validator = _login(hugo, reading.password)
    queue = validator.get("/reports/review/").content.decode()
    assert "DOE, JANE" in queue and "Check it." in queue
    (request_id,) = re.findall(r'href="/reports/review/(\d+)/"', queue)
    detail = validator.get(f"/reports/review/{request_id}/").content.decode()
    assert FINDINGS["findings"] in detail and 'id="validate-form"' in detail

    charlie = _login(reading.people.charlie, reading.password)
    assert charlie.get(f"/reports/review/{request_id}/").status_code == 404
    assert charlie.post(f"/reports/review/{request_id}/validate/").status_code == 404
    other = make_attending(reading.people, "olga", reading.people.second)
    assert _login(other, reading.password).get(f"/reports/review/{request_id}/").status_code == 404

    wrong = validator.post(
        f"/reports/review/{request_id}/validate/", {"password": "nope"}, follow=True
    )
    assert "password is not correct" in wrong.content.decode()
    done = validator.post(
        f"/reports/review/{request_id}/validate/", {"password": reading.password}, follow=True
    )
    assert "the report is final" in done.content.decode()
    final = ReportVersion.objects.get(report=preliminary.report, status="final")
    assert (final.author_id, final.signed_by_id) == (reading.bob.pk, hugo.pk)
    actions = set(AuditEvent.objects.filter(actor_user_id=hugo.pk).values_list("action", "outcome"))
    assert (AuditAction.REVIEW_VALIDATE, "success") in actions
    assert (AuditAction.REVIEW_VALIDATE, "failure") in actions


def test_the_hospital_admin_sets_the_rule_on_its_page(reading):
    from reports.models import ReviewPolicy

    alice = _login(reading.people.alice, reading.password)
    page = alice.get("/reports/review/policy/")
    assert page.status_code == 200 and "Demo Hospital" in page.content.decode()
    alice.post("/reports/review/policy/", {"tenant": "demo-hospital", "requires_validation": "on"})
    assert ReviewPolicy.objects.get(tenant=reading.people.demo).requires_validation
    # alice administers no other hospital; bob none at all.
    assert alice.post("/reports/review/policy/", {"tenant": "second-hospital"}).status_code == 404
    assert _login(reading.bob, reading.password).get("/reports/review/policy/").status_code == 404


@pytest.mark.smoke
def test_a_referrer_sees_the_signed_reports_of_their_own_patients_only(reading):
    from reports import services
    from studies.models import Study
    from tenants import services as tenants
    from tenants.models import AuditAction, AuditEvent, Role, User

    welby = User.objects.create_user("welby", password=reading.password, person_name="Wélby^Marcus")
    tenants.add_membership(user=welby, tenant=reading.people.demo, role=Role.REFERRING_PHYSICIAN)
    mine, preliminary = _preliminary(reading, send_to=False)
    Study.objects.filter(pk=mine.study_id).update(
        referring_physician_name="WELBY^MARCUS^^", referring_physician_name_search="WELBY^MARCUS^^"
    )
    others, _ = _preliminary(reading, send_to=False)  # another physician's patient
    drafted = reading.item(reading.people.demo)  # only a draft: never shown
    Study.objects.filter(pk__in=[others.study_id, drafted.study_id]).update(
        referring_physician_name_search="KILDARE^JAMES"
    )

    client = _login(welby, reading.password)
    # Preliminaries reach referrers only where the hospital allows it (tests/reports/
    # test_referrers.py has the default, finals only).
    from studies.sharing.models import SharePolicy

    SharePolicy.objects.create(tenant=reading.people.demo, referrers_see_preliminary=True)
    listing = client.get("/reports/results/").content.decode()
    report_id = preliminary.report_id
    assert f"/reports/results/{report_id}/" in listing and "PRELIMINARY" in listing
    assert f"/reports/results/{others.report.pk}/" not in listing
    page = client.get(f"/reports/results/{report_id}/").content.decode()
    assert FINDINGS["findings"] in page and "may change" in page
    assert client.get(f"/reports/results/{others.report.pk}/").status_code == 404

    final = services.finalise(
        preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password, sections={"impression": "Benign."},
    )  # fmt: skip
    addendum = services.start_change(
        report=final.report, user=reading.bob, actor=_actor(reading.bob), kind="addendum",
        sections={"findings": "Compared with outside CT: stable."},
    )  # fmt: skip
    page = client.get(f"/reports/results/{report_id}/").content.decode()
    assert "FINAL" in page and "Benign." in page and "Compared with outside" not in page
    services.sign(
        version=addendum, user=reading.bob, actor=_actor(reading.bob), status="final",
        password=reading.password,
    )  # fmt: skip
    page = client.get(f"/reports/results/{report_id}/").content.decode()
    assert "Addendum" in page and "Compared with outside CT: stable." in page
    assert "Earlier versions" in page

    # The hospital's admin sees both reports; charlie (another hospital) neither.
    alice = _login(reading.people.alice, reading.password).get("/reports/results/")
    assert f"/reports/results/{others.report.pk}/" in alice.content.decode()
    charlie = _login(reading.people.charlie, reading.password)
    assert charlie.get(f"/reports/results/{report_id}/").status_code == 404
    assert "/reports/results/" not in charlie.get("/reports/results/").content.decode().replace(
        'href="/reports/results/"', ""
    )
    views = AuditEvent.objects.filter(action=AuditAction.RESULT_VIEW, actor_user_id=welby.pk)
    assert views.filter(detail__report=report_id).count() == 3
    assert all("WELBY" not in str(e.detail) for e in views)


def test_a_signed_preliminary_waits_on_the_worklist_as_preliminary_not_to_be_claimed(reading):
    item, _ = _preliminary(reading, send_to=False)
    bob = _login(reading.bob, reading.password)
    rows = bob.get("/worklist/").content.decode()
    row = rows[rows.index(f'data-item="{item.pk}"') :].split("</tr>")[0]
    assert "Preliminary" in row and "Claim" not in row and "Open" in row
    page = bob.get(f"/worklist/items/{item.pk}/").content.decode()
    assert "waits for its final report" in page and 'class="primary claim"' not in page


def test_the_viewer_may_be_framed_beside_the_report_by_our_own_pages_only(reading):
    from worklists import services as worklist

    item = reading.item(reading.people.demo)
    worklist.claim(item, reading.bob, _actor(reading.bob))
    bob = _login(reading.bob, reading.password)
    page = bob.get(f"/worklist/items/{item.pk}/")
    (viewer,) = re.findall(
        r'<iframe title="Viewer of this study" data-src="([^"]+)"', page.content.decode()
    )
    framed = bob.get(viewer.replace("&amp;", "&"))
    assert framed["X-Frame-Options"] == "SAMEORIGIN"
