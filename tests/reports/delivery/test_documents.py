"""Acceptance of the documents a final report is delivered as, end to end: signed through the
services, delivered by the real Celery worker, read back through the real web server (DICOMweb)
and the Django pages and API.

- the PDF renders to non-blank pages with pdftoppm;
- the Encapsulated PDF reads back with pydicom and QIDO/WADO find it in its study, once;
- the FHIR JSON validates as a DiagnosticReport; the HL7 ORU^R01 parses back with python-hl7;
- another hospital's admin gets 404 for each.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import hl7
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from tests.conftest import wait_for

from .helpers import FINDINGS, delivery, real_item, sign_final, status_of

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


@pytest.fixture
def final(reading: Any, web: Any) -> tuple[Any, Any, Any]:
    item, ds = real_item(reading)
    key = {
        "series": str(ds.SeriesInstanceUID),
        "instance": str(ds.SOPInstanceUID),
        "frame": 1,
        "caption": "Liver",
    }
    version = sign_final(reading, item, key_images=[key])
    wait_for(
        lambda: status_of(version, "pdf") == "sent" and status_of(version, "dicom") == "sent",
        timeout=120,
        what="the PDF and DICOM deliveries",
    )
    return item, ds, version


def _pages(pdf: bytes, tmp_path: Path) -> list[Image.Image]:
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", str(tmp_path / "report.pdf"), str(tmp_path / "page")],
        check=True,
    )
    return [Image.open(p).convert("L") for p in sorted(tmp_path.glob("page*.png"))]


def test_the_pdf_renders_to_non_blank_pages_for_its_readers_only(
    final: Any, reading: Any, client: Any, tmp_path: Path
) -> None:
    from tenants.models import AuditAction, AuditEvent

    _, _, version = final
    url = f"/reports/delivery/versions/{version.pk}/report.pdf"
    client.force_login(reading.people.alice)
    response = client.get(url)
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"] == "application/pdf"
    pdf = response.content
    assert pdf.startswith(b"%PDF")
    pages = _pages(pdf, tmp_path)
    assert pages
    for page in pages:
        low, high = page.getextrema()
        assert low < 128 and high > 128, "a blank page"
    # The key image is drawn: the first page holds a block of mid-grey CT pixels, not only text.
    histogram = pages[0].histogram()
    assert sum(histogram[30:200]) > 2000
    assert AuditEvent.objects.filter(
        action=AuditAction.REPORT_EXPORT, actor_user=reading.people.alice, detail__format="pdf"
    ).exists()
    # The stored PDF is the delivered one: the same bytes each time.
    assert client.get(url).content == pdf

    client.force_login(reading.people.charlie)
    assert client.get(url).status_code == 404


def test_the_dicom_report_object_is_found_in_its_study_through_qido_and_wado(
    final: Any, reading: Any, web: Any, token_for: Any
) -> None:
    from reports.delivery import services
    from studies.models import Instance

    item, ds, version = final
    row = delivery(version, "dicom")
    uid = row.artefact_uid
    wait_for(
        lambda: Instance.objects.filter(sop_instance_uid=uid).exists(),
        timeout=60,
        what="the report object to be indexed",
    )
    dicomweb = DICOMwebClient(
        url=web.dicomweb("demo-hospital"),
        headers={"Authorization": f"Bearer {token_for(reading.people.alice)}"},
    )
    study_uid = str(ds.StudyInstanceUID)
    found = dicomweb.search_for_instances(
        study_instance_uid=study_uid, search_filters={"SOPClassUID": ENCAPSULATED_PDF}
    )
    assert [f["00080018"]["Value"][0] for f in found] == [uid]
    series_uid = found[0]["0020000E"]["Value"][0]
    obj = dicomweb.retrieve_instance(study_uid, series_uid, uid)
    assert obj.SOPClassUID == ENCAPSULATED_PDF
    assert obj.StudyInstanceUID == study_uid
    assert obj.PatientID == ds.PatientID and obj.PatientName == ds.PatientName
    assert obj.SeriesInstanceUID != ds.SeriesInstanceUID and obj.Modality == "DOC"
    assert obj.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert obj.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    document = bytes(obj.EncapsulatedDocument)[: int(obj.EncapsulatedDocumentLength)]
    assert document.startswith(b"%PDF") and document.rstrip().endswith(b"%%EOF")

    # Delivered again (a redelivered task, the signal sent twice): still one instance.
    services.start(version)
    assert services.deliver(tenant_id=version.tenant_id, delivery_id=row.pk) == "sent"
    row.status = "failed"
    row.save(update_fields=["status"])  # as if its task had failed after storing
    assert services.deliver(tenant_id=version.tenant_id, delivery_id=row.pk) == "sent"
    assert Instance.objects.filter(sop_instance_uid=uid).count() == 1
    assert len(dicomweb.search_for_instances(study_instance_uid=study_uid)) == 2

    charlie = DICOMwebClient(
        url=web.dicomweb("second-hospital"),
        headers={"Authorization": f"Bearer {token_for(reading.people.charlie)}"},
    )
    assert charlie.search_for_instances(study_instance_uid=study_uid) == []


def test_the_fhir_diagnostic_report_validates_and_names_its_imaging_study(
    final: Any, reading: Any, client: Any
) -> None:
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    _, ds, version = final
    client.force_login(reading.people.alice)
    url = f"/api/reports/delivery/fhir/DiagnosticReport/{version.report_id}"
    response = client.get(url, HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/fhir+json")
    body = json.loads(response.content)
    report = DiagnosticReport.model_validate(body)  # raises on anything R4(B) does not allow
    assert report.status == "final"
    assert body["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "18748-4",
        "display": "Diagnostic imaging study",
    }
    [study] = body["contained"]
    assert study["resourceType"] == "ImagingStudy"
    assert study["identifier"][0]["value"] == f"urn:oid:{ds.StudyInstanceUID}"
    assert body["imagingStudy"] == [{"reference": "#study"}]
    assert body["subject"]["identifier"]["value"] == ds.PatientID
    assert body["conclusion"] == FINDINGS["impression"]
    pdf = base64.b64decode(body["presentedForm"][0]["data"])
    assert pdf.startswith(b"%PDF")
    history = client.get(f"{url}/_history/{version.number}", HTTP_ACCEPT="application/fhir+json")
    assert json.loads(history.content)["meta"]["versionId"] == str(version.number)

    client.force_login(reading.people.charlie)
    assert client.get(url).status_code == 404


def test_the_hl7_message_parses_back_with_every_delimiter_escaped(
    final: Any, reading: Any, client: Any
) -> None:
    _, ds, version = final
    client.force_login(reading.people.alice)
    url = f"/api/reports/delivery/versions/{version.pk}/hl7"
    response = client.get(url)
    assert response.status_code == 200
    text = response.content.decode("utf-8")
    assert "\n" not in text and text.count("\r") >= 8
    message = hl7.parse(text)
    assert str(message.segment("MSH")[9]) == "ORU^R01^ORU_R01"
    assert str(message.segment("MSH")[12]) == "2.5.1"
    assert str(message.segment("PID")[3]) == ds.PatientID
    obr = message.segment("OBR")
    assert str(obr[25]) == "F" and str(obr[4][0][0]) == "18748-4"
    findings = [s for s in message.segments("OBX") if str(s[3][0][0]) == "59776-5"]
    lines = [message.unescape(str(s[5])) for s in findings]
    assert lines == FINDINGS["findings"].splitlines()
    assert {str(s[11]) for s in message.segments("OBX")} == {"F"}

    client.force_login(reading.people.charlie)
    assert client.get(url).status_code == 404


def test_the_panel_shows_each_channel_and_hides_from_other_hospitals(
    final: Any, reading: Any, client: Any
) -> None:
    item, _, version = final
    client.force_login(reading.bob)
    response = client.get(f"/reports/delivery/items/{item.pk}/panel/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-channel="pdf" data-status="sent"' in html
    assert 'data-channel="dicom" data-status="sent"' in html
    assert 'data-channel="pacs" data-status="skipped"' in html  # no PACS destination set
    client.force_login(reading.people.charlie)
    assert client.get(f"/reports/delivery/items/{item.pk}/panel/").status_code == 404
    assert client.get(f"/api/reports/delivery/versions/{version.pk}/deliveries").status_code == 404
