"""The templates API (/api/reports/templates/) with bearer tokens: the offer for an item, one
template, its MRRT export; 404 for another hospital's or another group's; no N+1 queries."""

from __future__ import annotations

from typing import Any

from django.test import Client

from tests.reports.templating.conftest import CT_CHEST, actor, template


def _api(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_the_offer_for_an_item_is_best_fit_first_with_its_text_blocks(reading, library, token_for):
    from reports.templating import services

    people = reading.people
    for owner, text in ((people.demo, "hospital"), (people.group, "group"), (reading.bob, "own")):
        services.create_block(
            owner=owner, actor=actor(people.alice), data={"shortcut": ".same", "text": text}
        )
    services.create_block(
        owner=people.demo, actor=actor(people.alice), data={"shortcut": "nochest", "text": "Ok."}
    )
    item = reading.item(modality="CT", body_part="CHEST")
    response = _api(token_for(reading.bob)).get(f"/api/reports/templates/items/{item.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(t["name"], t["fit"]) for t in body["templates"]] == [
        ("CT chest", "modality and body part"),
        ("CT any", "modality"),
        ("Readers CT", "modality"),
        ("Generic", "any study"),
    ]
    assert body["templates"][2]["owner"] == {
        "kind": "group", "id": people.group.pk, "name": "Demo Readers"
    }  # fmt: skip
    # One block per shortcut: the radiologist's own over the group's over the hospital's.
    assert {b["shortcut"]: b["text"] for b in body["text_blocks"]} == {
        ".nochest": "Ok.", ".same": "own"
    }  # fmt: skip


def test_listing_the_offer_costs_the_same_queries_for_many_templates(
    reading, library, token_for, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    item = reading.item(modality="CT", body_part="CHEST")
    client = _api(token_for(reading.bob))
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/api/reports/templates/items/{item.pk}/").status_code == 200
    for n in range(12):
        template(reading.people.group, reading.people.alice, name=f"More {n}", findings="x")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(f"/api/reports/templates/items/{item.pk}/")
    assert len(response.json()["templates"]) == 16


def test_a_template_reads_with_its_sections_and_fields(reading, library, token_for):
    response = _api(token_for(reading.bob)).get(f"/api/reports/templates/{library.ct_chest.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["sections"]["findings"] == CT_CHEST["findings"]
    assert body["fields"] == [
        {"name": "contrast", "label": "Contrast", "kind": "choice",
         "options": ["with", "without"], "default": ["with"]},
        {"name": "lungs", "label": "Lungs", "kind": "text", "options": [], "default": ["Clear."]},
        {"name": "nodule_size", "label": "Nodule size", "kind": "number", "options": [],
         "default": []},
        {"name": "side", "label": "Side", "kind": "choice",
         "options": ["left", "right", "bilateral"], "default": []},
        {"name": "impression", "label": "Impression", "kind": "text", "options": [],
         "default": []},
    ]  # fmt: skip


def test_another_hospitals_and_another_groups_templates_are_404(reading, library, token_for):
    charlie = _api(token_for(reading.people.charlie))
    for t in (library.ct_chest, library.group_ct, library.night_ct):
        response = charlie.get(f"/api/reports/templates/{t.pk}/")
        assert response.status_code == 404 and response.json() == {"detail": "No such template."}
        assert charlie.get(f"/api/reports/templates/{t.pk}/export/").status_code == 404
    erin = _api(token_for(reading.erin))  # night-readers, reads for second-hospital only
    assert erin.get(f"/api/reports/templates/{library.group_ct.pk}/").status_code == 404
    assert erin.get(f"/api/reports/templates/{library.ct_chest.pk}/").status_code == 404
    assert erin.get(f"/api/reports/templates/{library.night_ct.pk}/").status_code == 200
    assert erin.get(f"/api/reports/templates/{library.second_ct.pk}/").status_code == 200
    bob = _api(token_for(reading.bob))
    assert bob.get(f"/api/reports/templates/{library.night_ct.pk}/").status_code == 404
    assert bob.get("/api/reports/templates/999999/").status_code == 404


def test_the_offer_for_another_hospitals_item_is_404(reading, library, token_for):
    item: Any = reading.item(modality="CT", body_part="CHEST")
    response = _api(token_for(reading.people.charlie)).get(
        f"/api/reports/templates/items/{item.pk}/"
    )
    assert response.status_code == 404


def test_the_export_is_mrrt_html_that_reads_back_to_the_same_template(reading, library, token_for):
    from reports.templating import mrrt

    response = _api(token_for(reading.bob)).get(
        f"/api/reports/templates/{library.ct_chest.pk}/export/"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "sandbox" in response["Content-Security-Policy"]
    document = response.content
    assert b'<section id="findings" class="level1" data-section-name="Findings">' in document
    assert b'data-field-type="SELECTION"' in document and b'data-field-type="NUMBER"' in document
    back = mrrt.read_template(document)
    assert (back.name, back.modality, back.body_part) == ("CT chest", "CT", "CHEST")
    assert back.sections == library.ct_chest.sections()


def test_filling_a_template_writes_values_defaults_and_marks_what_is_missing(
    reading, library, token_for
):
    api = _api(token_for(reading.bob))
    url = f"/api/reports/templates/{library.ct_chest.pk}/fill/"
    response = api.post(
        url, {"values": {"nodule_size": "8", "side": "left"}}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["sections"] == {
        "clinical_information": "",
        "technique": "CT of the chest with intravenous contrast.",
        "comparison": "",
        "findings": "Lungs: Clear.\nLargest nodule 8 mm, left.",
        "impression": "***",
    }
    wrong = api.post(url, {"values": {"size": "8"}}, content_type="application/json")
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "This template has no field named size."}
    bad = api.post(url, {"values": {"side": 3}}, content_type="application/json")
    assert bad.status_code == 400 and "text or a list of texts" in bad.json()["detail"]
    other = _api(token_for(reading.people.charlie)).post(
        url, {"values": {}}, content_type="application/json"
    )
    assert other.status_code == 404
