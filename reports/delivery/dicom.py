"""The report as a DICOM object in its study, and its C-STORE to the hospital's PACS.

Encapsulated PDF Storage (PS3.3 A.45.1) rather than Basic Text SR: it carries exactly what the
PDF shows (letterhead, status banner, signatures, key images), every PACS viewer displays it, and
so the hospital's archive holds the same document its referrers read. pydicom builds it (highdicom
has no encapsulated-document class); ``build`` fills every Type 1 and Type 2 attribute of the IOD's
modules, checked by its test.

The SOP Instance UID is derived from the version (and the Series Instance UID from the report), so
storing it again is the same instance — the indexer records the copy as a duplicate — never a
second report in the study.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from studies import services as ingest
from studies.dicom.part10 import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from studies.models import Instance, Receipt, ReceiptSource, ReceiptStatus
from studies.storage import object_store
from tenants import audit
from tenants.models import AuditAction, DicomDestination

from .content import Document

log = logging.getLogger(__name__)

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
REPORT_SERIES_NUMBER = 9900  # far above a modality's own series numbers
# Study-level attributes copied as they are from the study's own stored instances.
COPIED = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDescription",
)


def sop_instance_uid(doc: Document) -> str:
    """The same UID for the same version, whoever builds it and however often."""
    v = doc.version
    # The content hash (which covers the signing time) makes it unique beyond this installation.
    sources = ["skylight-report-pdf", str(v.tenant_id), str(v.pk), v.content_sha256]
    return str(generate_uid(entropy_srcs=sources))


def series_instance_uid(doc: Document) -> str:
    """One series of reports per report: its final, addenda and corrections sit together."""
    v, report = doc.version, doc.version.report
    sources = ["skylight-report-series", str(v.tenant_id), str(report.pk)]
    return str(generate_uid(entropy_srcs=[*sources, report.created_at.isoformat()]))


def _study_header(doc: Document) -> Dataset:
    """Patient and study attributes as the modality wrote them, from one stored instance;
    from the index when the study has none stored (nothing else to copy from)."""
    assert doc.study is not None and doc.patient is not None
    instance = (
        Instance.objects.filter(tenant_id=doc.study.tenant_id, study=doc.study)
        .exclude(sop_class_uid=ENCAPSULATED_PDF_STORAGE)
        .order_by("id")
        .first()
    )
    header = Dataset()
    if instance is not None:
        with object_store().open(instance.storage_key, "rb") as f:
            stored = pydicom.dcmread(
                f, stop_before_pixels=True, specific_tags=list(COPIED) + ["SpecificCharacterSet"]
            )
        for keyword in ("SpecificCharacterSet", *COPIED):
            if keyword in stored:
                header[keyword] = stored[keyword]
        return header
    study, patient = doc.study, doc.patient
    header.SpecificCharacterSet = "ISO_IR 192"
    header.PatientName = patient.patient_name
    header.PatientID = patient.patient_id
    if patient.issuer_of_patient_id:
        header.IssuerOfPatientID = patient.issuer_of_patient_id
    header.PatientBirthDate = (
        patient.patient_birth_date.strftime("%Y%m%d") if patient.patient_birth_date else ""
    )
    header.PatientSex = patient.patient_sex
    header.StudyInstanceUID = study.study_instance_uid
    header.StudyDate = study.study_date.strftime("%Y%m%d") if study.study_date else ""
    header.StudyTime = study.study_time.strftime("%H%M%S") if study.study_time else ""
    header.AccessionNumber = study.accession_number
    header.ReferringPhysicianName = study.referring_physician_name
    header.StudyID = study.study_id
    header.StudyDescription = study.study_description
    return header


def _da_tm(moment: datetime) -> tuple[str, str]:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y%m%d"), utc.strftime("%H%M%S")


def build(doc: Document, pdf: bytes) -> bytes:
    """The Encapsulated PDF object as Part 10 bytes. Deterministic for a version and its PDF."""
    version = doc.version
    assert version.signed_at is not None
    header = _study_header(doc)
    ds = Dataset()
    ds.update(header)
    if "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                    "StudyTime", "AccessionNumber", "ReferringPhysicianName", "StudyID"):  # fmt: skip
        if keyword not in ds:
            setattr(ds, keyword, "")  # Type 2: present, maybe empty
    signed_date, signed_time = _da_tm(version.signed_at)
    uid = sop_instance_uid(doc)
    # SOP Common
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.SOPInstanceUID = uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = signed_date, signed_time
    ds.TimezoneOffsetFromUTC = "+0000"
    # Encapsulated Document Series
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_instance_uid(doc)
    ds.SeriesNumber = REPORT_SERIES_NUMBER
    ds.SeriesDescription = "Radiology report"
    # General Equipment and SC Equipment
    ds.Manufacturer = "Skylight"
    ds.SoftwareVersions = IMPLEMENTATION_VERSION_NAME
    ds.ConversionType = "WSD"  # workstation: the document was made, not scanned
    # Encapsulated Document
    ds.InstanceNumber = version.number
    ds.ContentDate, ds.ContentTime = signed_date, signed_time
    ds.AcquisitionDateTime = signed_date + signed_time
    ds.BurnedInAnnotation = "YES"  # the PDF names the patient
    ds.RecognizableVisualFeatures = "NO"
    ds.DocumentTitle = f"Radiology report ({doc.banner.lower()})"
    concept = Dataset()
    concept.CodeValue = "18748-4"
    concept.CodingSchemeDesignator = "LN"
    concept.CodeMeaning = "Diagnostic imaging study"
    ds.ConceptNameCodeSequence = [concept]
    ds.VerificationFlag = "VERIFIED"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf if len(pdf) % 2 == 0 else pdf + b"\x00"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ENCAPSULATED_PDF_STORAGE)
    meta.MediaStorageSOPInstanceUID = UID(uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def store_in_study(doc: Document, data: bytes) -> str:
    """Store the object through the normal ingest path (durable, receipt, indexing), once:
    an object already received under this UID is not stored again. Returns the storage key."""
    uid = sop_instance_uid(doc)
    tenant = doc.version.report.tenant
    known = (
        Receipt.objects.filter(tenant=tenant, sop_instance_uid=uid)
        .exclude(
            status__in=[ReceiptStatus.UNREADABLE, ReceiptStatus.DUPLICATE, ReceiptStatus.SUPERSEDED]
        )
        .values_list("storage_key", flat=True)
        .first()
    )
    if known:
        return known
    stored = ingest.store_bytes(tenant=tenant, data=data)
    stored.sop_class_uid = ENCAPSULATED_PDF_STORAGE
    stored.sop_instance_uid = uid
    stored.transfer_syntax_uid = ExplicitVRLittleEndian
    assert doc.study is not None
    stored.study_instance_uid = doc.study.study_instance_uid
    ingest.record_receipts(
        tenant=tenant,
        context=ingest.ReceiptContext(
            source=ReceiptSource.INTERNAL,
            actor=audit.Actor.system(),
            audit_action=AuditAction.DELIVERY_SEND,
        ),
        objects=[stored],
    )
    return stored.storage_key


# ---------------------------------------------------------------------------------------------
# C-STORE to the hospital's PACS
# ---------------------------------------------------------------------------------------------


class StoreFailed(Exception):
    """The PACS could not be reached or refused the object; the message is safe to show."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


def calling_ae_title(destination: DicomDestination) -> str:
    """The hospital's own AE title, as its C-MOVEs to the same destination use."""
    title = (
        destination.tenant.called_ae_titles.order_by("ae_title")
        .values_list("ae_title", flat=True)
        .first()
    )
    return title or "SKYLIGHT"


def c_store(destination: DicomDestination, data: bytes) -> None:
    """Send one stored object to the destination; raises StoreFailed unless it says Success."""
    from pynetdicom import AE

    ds = pydicom.dcmread(io.BytesIO(data))
    ae = AE(ae_title=calling_ae_title(destination))
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(
        ENCAPSULATED_PDF_STORAGE, [ExplicitVRLittleEndian, "1.2.840.10008.1.2"]
    )
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        raise StoreFailed(
            f"The PACS {destination.ae_title} at {destination.host}:{destination.port} did not "
            "accept an association; check that it is up and knows this AE title.",
            transient=True,
        )
    try:
        status: Any = assoc.send_c_store(ds)
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code is None:
        raise StoreFailed(
            f"The PACS {destination.ae_title} did not answer the C-STORE; it will be retried.",
            transient=True,
        )
    if code in (0x0000, 0xB000, 0xB006, 0xB007):  # success, or stored with warnings
        return
    transient = (code & 0xFF00) == 0xA700  # out of resources: may pass
    raise StoreFailed(
        f"The PACS {destination.ae_title} refused the report object (status 0x{code:04X}).",
        transient=transient,
    )
