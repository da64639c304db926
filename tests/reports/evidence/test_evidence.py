"""Measurements and key images for the report editor (issue 6, point 6).

A CT is stored, then what the viewer saves into it: a TID 1500 Measurement Report (a Length on
one slice, built with highdicom as a viewer would send it) and a Key Object Selection naming
another slice. The editor's panel and API list the measurement with the sentence it inserts, and
both images as key image candidates with working thumbnails; nobody else sees any of it; a draft
keeps key images of its own study only.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import highdicom as hd
import numpy as np
import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from reports import services as reports
from reports.evidence import sr
from studies import services as study_services
from studies.dicom import synthetic
from studies.models import Study
from tenants import audit
from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now
from tests.worklists.test_pages import Browser
from worklists import services as worklist
from worklists.models import WorkItem


def measurement_report(image: Dataset) -> Dataset:
    """A Length of 97 mm drawn on ``image``, tracked as "Lesion 1"."""
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array([[10.0, 10.0], [40.0, 40.0]]),
        source_image=hd.sr.SourceImageForRegion.from_source_image(image),
    )
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier="Lesion 1", uid=hd.UID()),
        referenced_region=region,
        measurements=[
            hd.sr.Measurement(name=codes.SCT.Length, value=97.0, unit=codes.UCUM.Millimeter)
        ],
    )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_person_context=hd.sr.ObserverContext(
                observer_type=codes.DCM.Person,
                observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                    name="Reader^Bob"
                ),
            )
        ),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group],
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[image],
        content=content[0],
        series_instance_uid=hd.UID(),
        series_number=90,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Skylight tests",
    )


def key_object_selection(image: Dataset) -> Dataset:
    return hd.ko.KeyObjectSelectionDocument(
        evidence=[image],
        content=hd.ko.KeyObjectSelection(
            document_title=codes.DCM.OfInterest, referenced_objects=[image]
        ),
        series_instance_uid=hd.UID(),
        series_number=91,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Skylight tests",
    )


@pytest.fixture
def measured(reading: Any) -> Any:
    """A ready 3-slice CT of demo-hospital with a measurement SR and a KOS, and its work item."""
    tenant = reading.people.demo
    spec = synthetic.simple_spec(seed=606, slices=3, rows=64, columns=64, patient_id="EVID-1")
    images = list(synthetic.iter_study(spec))
    documents = [measurement_report(images[1]), key_object_selection(images[2])]
    ingest_now(tenant, [synthetic.encode_part10(ds) for ds in images + documents])
    study = Study.objects.get(tenant=tenant, study_instance_uid=synthetic.study_uid(spec))
    study_services.sweep_ready_studies(now=study.last_instance_at + timedelta(seconds=61))
    worklist.ensure_item(study.pk)
    reading.measured_item = WorkItem.objects.get(study=study)
    reading.images = images
    return reading


def test_the_panel_lists_the_measurement_and_key_images_and_only_to_those_who_may_read(
    web, measured
):
    item, images = measured.measured_item, measured.images
    bob = Browser(web, "bob", measured.password)
    panel = bob.get(f"/reports/evidence/items/{item.pk}/panel/")
    assert panel.status_code == 200, panel.text[:300]
    html = panel.text
    # The measurement, where it was drawn, and the sentence the editor inserts.
    assert "Lesion 1" in html and "Length <strong>97.0 mm</strong>" in html
    assert 'data-text="Lesion 1: Length 97.0 mm (series 1, image 2)"' in html
    # Key image candidates: the KOS's slice and the measured slice, with thumbnails that render.
    keyed = set(re.findall(r'data-instance="([\d.]+)"', html))
    assert keyed == {images[1].SOPInstanceUID, images[2].SOPInstanceUID}
    for src in re.findall(r'<img src="([^"]+)"', html):
        thumbnail = bob.get(src)
        assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"  # JPEG

    events = AuditEvent.objects.filter(action=AuditAction.EVIDENCE_VIEW, actor_user=measured.bob)
    assert [e.detail["measurements"] for e in events] == [1]
    assert events[0].study_instance_uid == item.study.study_instance_uid

    # Another hospital's admin, and a reader of another group, find nothing: 404, not 403.
    for username in ("charlie", "erin"):
        other = Browser(web, username, measured.password)
        response = other.get(f"/reports/evidence/items/{item.pk}/panel/")
        assert response.status_code == 404
        assert "Lesion" not in response.text and "EVID" not in response.text


def test_the_api_gives_the_same_evidence_and_404_to_another_tenant(web, measured, token_for):
    item, images = measured.measured_item, measured.images
    url = f"{web.url}/api/reports/evidence/items/{item.pk}/"
    response = requests.get(
        url, headers={"Authorization": f"Bearer {token_for(measured.bob)}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    [length] = body["measurements"]
    assert (length["name"], length["value"], length["unit"], length["label"]) == (
        "Length", "97.0", "mm", "Lesion 1",
    )  # fmt: skip
    assert length["text"] == "Lesion 1: Length 97.0 mm (series 1, image 2)"
    assert length["image"]["instance"] == images[1].SOPInstanceUID
    assert [c["instance"] for c in body["key_image_candidates"]] == [
        images[2].SOPInstanceUID,  # named by the key object selection
        images[1].SOPInstanceUID,  # measured
    ]
    assert body["unreadable_documents"] == 0
    other = requests.get(
        url, headers={"Authorization": f"Bearer {token_for(measured.people.charlie)}"}, timeout=30
    )
    assert other.status_code == 404 and "Lesion" not in other.text


def test_a_draft_keeps_key_images_of_its_own_study_only(measured):
    item, images = measured.measured_item, measured.images
    actor = audit.Actor.for_user(measured.bob)
    worklist.claim(item, measured.bob, actor)
    key = {
        "series": images[1].SeriesInstanceUID,
        "instance": images[1].SOPInstanceUID,
        "frame": 1,
        "caption": "series 1, image 2",
    }
    draft = reports.save_draft(
        item=item, user=measured.bob, actor=actor, sections={"findings": "x"},
        key_images=[key, dict(key)],
    )  # fmt: skip
    assert draft.key_images == [key]  # a repeat is kept once
    other = measured.item(measured.people.demo)  # another study of the same hospital
    foreign = {**key, "instance": "1.2.3.4", "series": "1.2.3"}
    for bad, message in (
        ([foreign], "not an image of this study"),
        ([{**key, "frame": 0}], "frame"),
        ("not a list", "list"),
    ):
        with pytest.raises(reports.ReportError, match=message):
            reports.save_draft(
                item=item, user=measured.bob, actor=actor, sections={}, key_images=bad
            )
    assert other.study_id != item.study_id
    draft.refresh_from_db()
    assert draft.key_images == [key]
    # Signed, they are part of what the hash covers.
    signed = reports.sign(
        version=draft, user=measured.bob, actor=actor, status="final", password=measured.password
    )
    assert signed.key_images == [key]
    assert signed.content_sha256 == signed.compute_sha256()
    signed.key_images = []
    assert signed.compute_sha256() != signed.content_sha256


def test_a_viewer_style_measurement_reads_with_its_image_under_the_num():
    """OHIF (dcmjs) nests SCOORD and IMAGE under each NUM; a multi-frame reference keeps its
    frame; a NUM without a value (not measured) is skipped."""

    def code(value: str, scheme: str, meaning: str) -> Dataset:
        c = Dataset()
        c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
        return c

    def node(value_type: str, concept: Dataset, **attrs: Any) -> Dataset:
        d = Dataset()
        d.ValueType = value_type
        d.ConceptNameCodeSequence = [concept]
        for key, value in attrs.items():
            setattr(d, key, value)
        return d

    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    reference.ReferencedSOPInstanceUID = "1.2.3.4.5"
    reference.ReferencedFrameNumber = [7, 8]
    image = node(
        "IMAGE", code("111040", "DCM", "Original Source"), ReferencedSOPSequence=[reference]
    )
    scoord = node("SCOORD", code("111030", "DCM", "Image Region"), ContentSequence=[image])
    value = Dataset()
    value.NumericValue = "12.50"
    value.MeasurementUnitsCodeSequence = [code("cm", "UCUM", "centimeter")]
    num = node(
        "NUM", code("G-D7FE", "SRT", "Long Axis"),
        MeasuredValueSequence=[value], ContentSequence=[scoord],
    )  # fmt: skip
    empty = node("NUM", code("G-A185", "SRT", "Short Axis"))
    label = node("TEXT", code(sr.TRACKING_IDENTIFIER, "DCM", "Tracking Identifier"))
    label.TextValue = "Node A"
    group = node(
        "CONTAINER", code(sr.MEASUREMENT_GROUP, "DCM", "Measurement Group"),
        ContentSequence=[label, num, empty],
    )  # fmt: skip
    document = Dataset()
    document.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    document.ContentSequence = [group]
    found = sr.read([document, None])
    [measurement] = found.measurements
    assert (measurement.name, measurement.value_text(), measurement.unit) == (
        "Long Axis", "12.5", "cm",
    )  # fmt: skip
    assert measurement.label == "Node A"
    assert measurement.image == sr.ImageRef("1.2.3.4.5", 7)
    assert found.unreadable == 1


def test_in_the_reading_room_a_measurement_goes_into_the_findings_and_a_key_image_is_kept(
    web, measured
):
    """The panel inside the real reading room (Chromium): "Insert" writes the sentence into the
    findings, "Key image" marks the slice; both reach the draft through the editor's autosave."""
    from reports.models import ReportVersion
    from tests.browser import artefacts, chromium, logged_in

    item, images = measured.measured_item, measured.images
    worklist.claim(item, measured.bob, audit.Actor.for_user(measured.bob))
    with chromium() as browser:
        page = logged_in(
            browser, web.url, "bob", measured.password, then=f"/worklist/items/{item.pk}/"
        )
        page.wait_for_selector("#reading-room[data-ready=true] #report-editor")
        page.fill("#section-findings", "Lungs clear")
        page.get_by_role("button", name="Insert Length 97.0 mm into findings").click()
        findings = page.locator("#section-findings")
        expected = "Lungs clear. Lesion 1: Length 97.0 mm (series 1, image 2)."
        assert findings.input_value() == expected
        measured_slice = page.locator(
            f'#evidence-panel button.evidence-key[data-instance="{images[1].SOPInstanceUID}"]'
        )
        measured_slice.click()
        assert measured_slice.get_attribute("aria-pressed") == "true"
        page.screenshot(path=str(artefacts() / "reading-room-evidence.png"), full_page=True)

        # The draft as the API gives it to its author, once the autosave has sent both.
        # (page.evaluate awaits the fetch; the ORM cannot be used inside Playwright's loop.)
        draft_now = """async (item) => {
            const answer = await fetch(`/api/reports/items/${item}/`);
            return answer.ok ? (await answer.json()).draft : null;
        }"""
        for _ in range(60):
            draft = page.evaluate(draft_now, item.pk)
            if draft and draft["sections"]["findings"] == expected and draft["key_images"]:
                break
            page.wait_for_timeout(500)
        else:
            raise AssertionError("the autosave did not send the findings and the key image")
    draft = ReportVersion.objects.get(report__work_item=item, status="draft")
    assert [k["instance"] for k in draft.key_images] == [images[1].SOPInstanceUID]
