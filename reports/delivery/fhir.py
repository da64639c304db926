"""The report as a FHIR R4 DiagnosticReport (http://hl7.org/fhir/R4/diagnosticreport.html).

One resource per report (its id is the report's), in versions: ``meta.versionId`` is the version
number, so a receiver updates the report it already has when an addendum or correction arrives.
The study is a contained ImagingStudy identified by its Study Instance UID (``urn:dicom:uid``,
``urn:oid:…``, as R4 ImagingStudy.identifier prescribes), so the receiver needs no other resource.
The PDF travels as the presented form, next to the text.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from ..models import FHIR_STATUS, ReportStatus
from .content import Document, person

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
DIAGNOSTIC_IMAGING_STUDY = {
    "system": LOINC,
    "code": "18748-4",
    "display": "Diagnostic imaging study",
}


def _instant(doc: Document) -> str:
    assert doc.version.signed_at is not None
    return doc.version.signed_at.astimezone().isoformat(timespec="seconds")


def _subject(doc: Document) -> dict[str, Any]:
    assert doc.patient is not None
    subject: dict[str, Any] = {"type": "Patient"}
    if doc.patient.patient_id:
        identifier: dict[str, Any] = {"value": doc.patient.patient_id}
        if doc.patient.issuer_of_patient_id:
            identifier["assigner"] = {"display": doc.patient.issuer_of_patient_id}
        subject["identifier"] = identifier
    if doc.patient.patient_name:
        subject["display"] = doc.patient.patient_name.replace("^", " ").strip()
    return subject


def diagnostic_report(doc: Document, pdf: bytes) -> dict[str, Any]:
    """The DiagnosticReport of a signed version, as a JSON-ready dict."""
    version, study = doc.version, doc.study
    assert study is not None and doc.tenant is not None
    signer = {"display": person(version.signed_by)}
    imaging_study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": "study",
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study.study_instance_uid}"}],
        "status": "available",
        "subject": _subject(doc),
    }
    if study.study_description:
        imaging_study["description"] = study.study_description
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(version.report_id),
        "meta": {"versionId": str(version.number), "lastUpdated": _instant(doc)},
        "contained": [imaging_study],
        "identifier": [
            {"system": f"urn:skylight:{doc.tenant.slug}:report", "value": str(version.report_id)}
        ],
        "status": FHIR_STATUS[ReportStatus(doc.report_status)],
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                        "code": "RAD",
                        "display": "Radiology",
                    }
                ]
            }
        ],
        "code": {"coding": [DIAGNOSTIC_IMAGING_STUDY], "text": "Diagnostic imaging study"},
        "subject": _subject(doc),
        "issued": _instant(doc),
        "performer": [signer],
        "resultsInterpreter": [signer],
        "imagingStudy": [{"reference": "#study"}],
        "presentedForm": [
            {
                "contentType": "application/pdf",
                "language": "en",
                "data": base64.b64encode(pdf).decode("ascii"),
                "size": len(pdf),
                "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),  # noqa: S324 - FHIR Attachment.hash is SHA-1
                "title": f"Radiology report ({doc.banner.lower()})",
                "creation": _instant(doc),
            },
            {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64.b64encode(doc.plain_text().encode("utf-8")).decode("ascii"),
            },
        ],
    }
    if study.accession_number:
        resource["basedOn"] = [
            {
                "type": "ServiceRequest",
                "identifier": {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "ACSN",
                            }
                        ]
                    },
                    "value": study.accession_number,
                },
            }
        ]
    if study.study_date:
        resource["effectiveDateTime"] = study.study_date.isoformat()
    if doc.base.impression.strip():
        resource["conclusion"] = doc.base.impression
    return resource


def encode(resource: dict[str, Any]) -> bytes:
    """Canonical JSON: the same resource is always the same bytes (and the same signature)."""
    return json.dumps(resource, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
