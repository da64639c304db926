"""The reports REST API at the edge: a report from draft to a validated final, stale saves from a
second tab, the hospital's validation rule, illegal steps with their status codes, and another
hospital's users finding nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.reports.review.conftest import make_attending

FINDINGS = {
    "clinical_information": "Abdominal pain.",
    "technique": "CT abdomen with contrast.",
    "findings": "No free air.",
    "impression": "No acute abnormality.",
}


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _claimed(reading: Any) -> Any:
    item = reading.item(reading.people.demo)
    response = _client(reading.bob).post(f"/api/worklist/items/{item.pk}/claim/")
    assert response.status_code == 200, response.content
    return item


def _put(client: APIClient, item: Any, body: dict[str, Any], etag: str | None = None) -> Any:
    headers = {"HTTP_IF_MATCH": etag} if etag else {}
    return client.put(f"/api/reports/items/{item.pk}/draft/", body, format="json", **headers)


def _sign(client: APIClient, item: Any, password: str, **body: Any) -> Any:
    return client.post(
        f"/api/reports/items/{item.pk}/sign/",
        {"status": "preliminary", "password": password, **body},
        format="json",
    )


@pytest.mark.smoke
def test_a_preliminary_goes_to_a_hospital_radiologist_and_comes_back_final(reading):
    from worklists.models import WorkItem

    hugo = make_attending(reading.people)
    bob = _client(reading.bob)
    item = _claimed(reading)

    empty = bob.get(f"/api/reports/items/{item.pk}/").json()
    assert (empty["report"], empty["status"], empty["versions"]) == (None, None, [])
    assert [r["username"] for r in empty["reviewers"]] == ["hugo"]

    saved = _put(bob, item, FINDINGS)
    assert saved.status_code == 200, saved.content
    etag = saved["ETag"]
    # A second tab saved meanwhile: the first tab's next autosave is refused, not lost silently.
    newer = _put(bob, item, {"findings": "No free air. Liver normal."}, etag)
    assert newer.status_code == 200
    stale = _put(bob, item, {"findings": "Old text from the first tab."}, etag)
    assert stale.status_code == 409 and "another window" in stale.json()["detail"]
    state = bob.get(f"/api/reports/items/{item.pk}/").json()
    assert state["draft"]["sections"]["findings"] == "No free air. Liver normal."
    assert (state["status"], state["fhir_status"], state["hl7_obr25"]) == ("draft", "partial", None)

    wrong = _sign(bob, item, "not-my-password", send_for_review=True, reviewer="hugo")
    assert wrong.status_code == 403 and "password" in wrong.json()["detail"]
    nobody = _sign(bob, item, reading.password, send_for_review=True, reviewer="charlie")
    assert nobody.status_code == 400 and "not a radiologist of Demo Hospital" in nobody.text
    signed = _sign(
        bob, item, reading.password, send_for_review=True, reviewer="hugo", message="Please check."
    )
    assert signed.status_code == 200, signed.content
    body = signed.json()
    assert (body["status"], body["hl7_obr25"], body["fhir_status"]) == (
        "preliminary",
        "P",
        "preliminary",
    )
    assert body["review"]["reviewer"]["username"] == "hugo" and body["draft"] is None
    # Signing the preliminary ended the claim; the item waits as preliminary for its final.
    stored = WorkItem.objects.get(pk=item.pk)
    assert (stored.state, stored.reading_state, stored.holder_id) == (
        "scheduled",
        "preliminary",
        None,
    )

    validator = _client(hugo)
    queue = validator.get("/api/reports/review/queue/").json()
    assert [(r["item"], r["message"]) for r in queue] == [(item.pk, "Please check.")]
    request_id = queue[0]["id"]
    shown = validator.get(f"/api/reports/review/requests/{request_id}/").json()
    assert shown["preliminary"]["sections"]["findings"] == "No free air. Liver normal."
    assert bob.get("/api/reports/review/queue/").json() == []  # not his to validate
    own = bob.post(
        f"/api/reports/review/requests/{request_id}/validate/",
        {"password": reading.password},
        format="json",
    )
    assert own.status_code == 403 and "your own report" in own.json()["detail"]
    charlie = _client(reading.people.charlie)
    for path in ("", "validate/", "return/", "cancel/"):
        call = charlie.get if not path else charlie.post
        assert call(f"/api/reports/review/requests/{request_id}/{path}").status_code == 404

    done = validator.post(
        f"/api/reports/review/requests/{request_id}/validate/",
        {"password": reading.password},
        format="json",
    )
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "validated"
    again = validator.post(
        f"/api/reports/review/requests/{request_id}/validate/",
        {"password": reading.password},
        format="json",
    )
    assert again.status_code == 409

    final = bob.get(f"/api/reports/items/{item.pk}/").json()
    assert (final["status"], final["hl7_obr25"], final["fhir_status"]) == ("final", "F", "final")
    assert final["current"]["author"]["username"] == "bob"
    assert final["current"]["signed_by"]["username"] == "hugo"
    assert [(v["number"], v["status"], v["supersedes"]) for v in final["versions"]] == [
        (1, "preliminary", None),
        (2, "final", 1),
    ]
    stored.refresh_from_db()
    assert (stored.state, stored.reading_state) == ("completed", "final")


def test_a_returned_preliminary_is_revised_and_sent_again(reading):
    hugo = make_attending(reading.people)
    bob, validator = _client(reading.bob), _client(hugo)
    item = _claimed(reading)
    _put(bob, item, FINDINGS)
    assert _sign(bob, item, reading.password, send_for_review=True).status_code == 200
    (request,) = validator.get("/api/reports/review/queue/").json()
    assert request["reviewer"] is None  # sent to all of the hospital's radiologists
    empty = validator.post(
        f"/api/reports/review/requests/{request['id']}/return/", {"comments": " "}, format="json"
    )
    assert empty.status_code == 400
    returned = validator.post(
        f"/api/reports/review/requests/{request['id']}/return/",
        {"comments": "Mention the liver."},
        format="json",
    )
    assert returned.json()["state"] == "returned"

    revised = bob.post(f"/api/reports/items/{item.pk}/revise/")
    assert revised.status_code == 201, revised.content
    draft = revised.json()["draft"]
    assert draft["sections"]["findings"] == "No free air." and draft["supersedes"] == 1
    assert _put(bob, item, {"findings": "No free air. Normal liver."}).status_code == 200
    again = _sign(bob, item, reading.password, send_for_review=True, reviewer="hugo")
    assert again.status_code == 200, again.content
    assert [(v["number"], v["status"]) for v in again.json()["versions"]] == [
        (1, "preliminary"),
        (2, "preliminary"),
    ]
    (second,) = validator.get("/api/reports/review/queue/").json()
    assert second["version"] == 2


def test_when_the_hospital_requires_validation_the_author_cannot_finalise_alone(reading):
    alice, bob = _client(reading.people.alice), _client(reading.bob)
    policy = "/api/reports/review/policy/demo-hospital/"
    assert alice.get(policy).json()["requires_validation"] is False
    assert alice.put(policy, {"requires_validation": True}, format="json").status_code == 200
    assert bob.get(policy).status_code == 404  # not an admin of that hospital
    assert _client(reading.people.charlie).get(policy).status_code == 404

    item = _claimed(reading)
    _put(bob, item, FINDINGS)
    final = _sign(bob, item, reading.password, status="final")
    assert final.status_code == 403 and "validate preliminary reports" in final.json()["detail"]
    state = bob.get(f"/api/reports/items/{item.pk}/").json()
    assert state["needs_validation"] is True and state["draft"] is not None
    assert _sign(bob, item, reading.password).status_code == 200
    alone = bob.post(
        f"/api/reports/items/{item.pk}/finalise/", {"password": reading.password}, format="json"
    )
    assert alone.status_code == 403


def test_illegal_steps_answer_409_and_bad_input_400(reading):
    bob = _client(reading.bob)
    item = _claimed(reading)
    url = f"/api/reports/items/{item.pk}"
    assert (
        bob.post(f"{url}/sign/", {"status": "final", "password": "x"}, format="json").status_code
        == 404
    )
    assert _put(bob, item, {"verdict": "fine"}).status_code == 400
    assert _put(bob, item, FINDINGS, '"not a date"').status_code == 400
    _put(bob, item, FINDINGS)
    bad = bob.post(f"{url}/sign/", {"status": "draft", "password": reading.password}, format="json")
    assert bad.status_code == 400
    assert bob.post(f"{url}/changes/", {"kind": "addendum"}, format="json").status_code == 409
    assert (
        bob.post(f"{url}/finalise/", {"password": reading.password}, format="json").status_code
        == 409
    )
    assert bob.post(f"{url}/revise/").status_code == 409
    signed = bob.post(
        f"{url}/sign/", {"status": "final", "password": reading.password}, format="json"
    )
    assert signed.status_code == 200
    assert (
        bob.post(
            f"{url}/sign/", {"status": "final", "password": reading.password}, format="json"
        ).status_code
        == 409
    )
    assert bob.delete(f"{url}/draft/").status_code == 409
    assert _put(bob, item, FINDINGS).status_code == 409
    change = bob.post(f"{url}/changes/", {"kind": "addendum"}, format="json")
    assert change.status_code == 201 and change.json()["draft"]["kind"] == "addendum"
    assert bob.delete(f"{url}/draft/").status_code == 204


def test_another_hospitals_users_get_404_everywhere(reading):
    bob = _client(reading.bob)
    item = _claimed(reading)
    _put(bob, item, FINDINGS)
    charlie = _client(reading.people.charlie)
    url = f"/api/reports/items/{item.pk}"
    assert charlie.get(f"{url}/").status_code == 404
    assert charlie.put(f"{url}/draft/", FINDINGS, format="json").status_code == 404
    assert charlie.delete(f"{url}/draft/").status_code == 404
    for path, body in (
        ("sign/", {"status": "final", "password": reading.password}),
        ("finalise/", {"password": reading.password}),
        ("changes/", {"kind": "addendum"}),
        ("revise/", {}),
        ("review/", {}),
    ):
        response = charlie.post(f"{url}/{path}", body, format="json")
        assert response.status_code == 404, path
        assert "DOE" not in response.text
    assert _client(reading.people.alice).get(f"{url}/").json()["draft"] is None  # bob's only
