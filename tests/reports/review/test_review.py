"""Co-sign at the service level: who may validate, the hospital's rule, returning and revising,
the audit, and two validators pressing at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from tests.reports.review.conftest import make_attending
from tests.reports.review.test_pages import FINDINGS, _actor, _preliminary


def test_only_a_radiologist_of_the_hospital_other_than_the_author_validates(reading, attending):
    from reports import services
    from reports.review import services as review

    item, preliminary = _preliminary(reading, send_to=False)
    outsider = make_attending(reading.people, "olga", reading.people.second)
    with pytest.raises(services.ReportError, match="radiologist of the hospital"):
        review.request_review(
            version=preliminary, user=reading.bob, actor=_actor(reading.bob), reviewer=outsider
        )
    request = review.request_review(
        version=preliminary, user=reading.bob, actor=_actor(reading.bob), reviewer=attending
    )
    # Another hospital's radiologist finds nothing; another attending of this hospital sees it
    # but it is not theirs to decide; the author cannot validate their own report.
    with pytest.raises(services.NotFound):
        review.visible_request(outsider, request.pk)
    assert review.queue(outsider) == []
    colleague = make_attending(reading.people, "carl")
    assert review.queue(colleague) == []
    with pytest.raises(services.NotAllowed, match="another radiologist"):
        review.validate(
            request=request, user=colleague, actor=_actor(colleague), password=reading.password
        )
    with pytest.raises(services.NotAllowed, match="your own report"):
        review.validate(
            request=request, user=reading.bob, actor=_actor(reading.bob), password=reading.password
        )
    assert review.queue(attending) == [request]
    final = review.validate(
        request=request, user=attending, actor=_actor(attending), password=reading.password
    )
    assert (final.status, final.author_id, final.signed_by_id) == (
        "final",
        reading.bob.pk,
        attending.pk,
    )
    assert final.content_sha256 == final.compute_sha256()
    assert final.findings == FINDINGS["findings"] and final.supersedes_id == preliminary.pk
    item.refresh_from_db()
    assert (item.state, item.reading_state) == ("completed", "final")


def test_the_hospital_rule_stops_the_author_finalising_but_not_its_own_radiologists(reading):
    from reports import services
    from reports.review import services as review
    from worklists import services as worklist
    from worklists.models import Licence, Privilege

    review.set_policy(
        tenant=reading.people.demo, user=reading.people.alice,
        actor=_actor(reading.people.alice), requires_validation=True,
    )  # fmt: skip
    with pytest.raises(services.NotFound):  # charlie administers another hospital
        review.set_policy(
            tenant=reading.people.demo, user=reading.people.charlie,
            actor=_actor(reading.people.charlie), requires_validation=False,
        )  # fmt: skip
    _, preliminary = _preliminary(reading, send_to=False)
    with pytest.raises(services.NotAllowed, match="validate preliminary reports"):
        services.finalise(
            preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
            password=reading.password,
        )  # fmt: skip

    # The hospital's own radiologist, credentialed to read, signs final directly.
    hugo = make_attending(reading.people)
    Licence.objects.create(user=hugo, jurisdiction="US-CA", number="H1", valid_from="2020-01-01")
    Privilege.objects.create(
        user=hugo, tenant=reading.people.demo, modalities=["CT"], valid_from="2020-01-01"
    )
    item = reading.item(reading.people.demo)
    worklist.claim(item, hugo, _actor(hugo))
    draft = services.save_draft(item=item, user=hugo, actor=_actor(hugo), sections=FINDINGS)
    final = services.sign(
        version=draft, user=hugo, actor=_actor(hugo), status="final", password=reading.password
    )
    assert final.status == "final"


def test_a_returned_preliminary_is_revised_signed_again_and_validated(reading, attending):
    from reports import services
    from reports.review import services as review
    from tenants.models import AuditAction, AuditEvent

    item, first = _preliminary(reading, send_to=attending)
    request = review.queue(attending)[0]
    with pytest.raises(services.ReportError, match="Say what"):
        review.return_to_author(
            request=request, user=attending, actor=_actor(attending), comments="  "
        )
    review.return_to_author(
        request=request, user=attending, actor=_actor(attending), comments="Size the nodule."
    )
    with pytest.raises(services.Conflict, match="returned"):
        review.validate(
            request=request, user=attending, actor=_actor(attending), password=reading.password
        )
    revision = services.start_revision(
        report=first.report, user=reading.bob, actor=_actor(reading.bob)
    )
    assert (revision.kind, revision.supersedes_id, revision.findings) == (
        "report", first.pk, FINDINGS["findings"],
    )  # fmt: skip
    services.save_draft(
        item=item, user=reading.bob, actor=_actor(reading.bob),
        sections={"findings": "Nodule 6 mm, right upper lobe."},
    )  # fmt: skip
    second = services.sign(
        version=revision, user=reading.bob, actor=_actor(reading.bob), status="preliminary",
        password=reading.password,
    )  # fmt: skip
    again = review.request_review(
        version=second, user=reading.bob, actor=_actor(reading.bob), reviewer=attending
    )
    final = review.validate(
        request=again, user=attending, actor=_actor(attending), password=reading.password
    )
    assert (final.number, final.supersedes_id, final.findings) == (
        3, second.pk, "Nodule 6 mm, right upper lobe.",
    )  # fmt: skip
    actions = list(
        AuditEvent.objects.filter(action__startswith="report.re")
        .order_by("id")
        .values_list("action", "outcome")
    )
    assert (AuditAction.REVIEW_RETURN, "success") in actions
    assert (AuditAction.REVIEW_RETURN, "failure") in actions
    assert (AuditAction.REPORT_REVISE, "success") in actions
    assert [a for a, o in actions if o == "success"].count(AuditAction.REVIEW_REQUEST) == 2


def test_two_validators_at_once_make_one_final_version(reading):
    """Two attendings press "validate" on a request sent to all of them, on two connections."""
    from reports import services
    from reports.models import ReportVersion, ReviewRequest
    from reports.review import services as review

    hugo, carl = make_attending(reading.people), make_attending(reading.people, "carl")
    _, preliminary = _preliminary(reading)  # to any radiologist of the hospital
    request = ReviewRequest.objects.get(version=preliminary)
    start = threading.Barrier(2)

    def validate(user: Any) -> str:
        try:
            copy = ReviewRequest.objects.select_related("report__work_item", "version").get(
                pk=request.pk
            )
            start.wait()
            review.validate(request=copy, user=user, actor=_actor(user), password=reading.password)
            return user.username
        except services.Conflict as refused:
            assert refused.status == 409
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(validate, [hugo, carl]))
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1, outcomes
    finals = ReportVersion.objects.filter(report=preliminary.report, status="final")
    assert finals.count() == 1 and finals.get().signed_by.username == winners[0]
    request.refresh_from_db()
    assert (request.state, request.decided_by.username) == ("validated", winners[0])
