"""What the index keeps of a data set, read liberally: odd values become warnings, not failures.

Warnings are short codes naming the attribute (``bad-date:StudyDate``), never its value, because
values are patient data.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName


@dataclass
class IndexAttributes:
    # Patient
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: dt.date | None = None
    patient_sex: str = ""
    # Study
    study_instance_uid: str = ""
    study_date: dt.date | None = None
    study_time: dt.time | None = None
    accession_number: str = ""
    issuer_of_accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    referring_physician_name: str = ""
    # Series
    series_instance_uid: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    body_part_examined: str = ""
    series_date: dt.date | None = None
    series_time: dt.time | None = None
    protocol_name: str = ""
    manufacturer: str = ""
    station_name: str = ""
    institution_name: str = ""
    frame_of_reference_uid: str = ""
    performed_procedure_step_start_date: dt.date | None = None
    performed_procedure_step_start_time: dt.time | None = None
    # Instance
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    instance_number: int | None = None
    content_date: dt.date | None = None
    content_time: dt.time | None = None
    acquisition_number: int | None = None
    image_type: str = ""
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int | None = None
    samples_per_pixel: int | None = None
    photometric_interpretation: str = ""
    bits_allocated: int | None = None
    bits_stored: int | None = None
    pixel_representation: int | None = None
    pixel_spacing: str = ""
    slice_thickness: float | None = None
    slice_location: float | None = None
    image_position_patient: str = ""
    image_orientation_patient: str = ""
    window_center: str = ""
    window_width: str = ""
    rescale_intercept: float | None = None
    rescale_slope: float | None = None
    has_pixel_data: bool = False
    # Where the native Pixel Data value lies in the stored object (studies/imaging/frames.py).
    pixel_data_offset: int | None = None
    pixel_data_length: int | None = None
    warnings: list[str] = field(default_factory=list)


def search_form(name: str) -> str:
    """Upper-case, accent-free form of a person name, for case- and accent-insensitive matching."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def parse_da(value: str) -> dt.date | None:
    value = value.strip().replace(".", "")  # ACR-NEMA "YYYY.MM.DD" still turns up
    if len(value) != 8 or not value.isdigit():
        raise ValueError("bad date")
    return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def parse_tm(value: str) -> dt.time | None:
    value = value.strip().replace(":", "")
    main, _, fraction = value.partition(".")
    if not main.isdigit() or len(main) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        raise ValueError("bad time")
    hour = int(main[0:2])
    minute = int(main[2:4]) if len(main) >= 4 else 0
    second = int(main[4:6]) if len(main) >= 6 else 0
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return dt.time(hour, minute, min(second, 59), micro)


class _Reader:
    def __init__(self, ds: Dataset, warnings: list[str]):
        self.ds = ds
        self.warnings = warnings

    def raw(self, keyword: str) -> Any:
        try:
            element = self.ds.get(keyword)
        except Exception:  # noqa: BLE001 - a broken element is a warning, not a failure
            self.warnings.append(f"unreadable:{keyword}")
            return None
        if element is None:
            return None
        return element

    def text(self, keyword: str, limit: int = 64) -> str:
        value = self.raw(keyword)
        if value is None or value == "":
            return ""
        if isinstance(value, (list, MultiValue)):
            text = "\\".join(str(v) for v in value)
        elif isinstance(value, PersonName):
            text = str(value)
        elif isinstance(value, bytes):
            text = value.decode("latin-1", "replace")
        else:
            text = str(value)
        text = text.strip().replace("\x00", "")
        if len(text) > limit:
            self.warnings.append(f"truncated:{keyword}")
            text = text[:limit]
        return text

    def integer(self, keyword: str) -> int | None:
        value = self.raw(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, (list, MultiValue)):
            value = value[0] if len(value) else None
            if value is None:
                return None
        try:
            number = int(float(str(value)))
        except (TypeError, ValueError):
            self.warnings.append(f"bad-number:{keyword}")
            return None
        if abs(number) > 2**31 - 1:
            self.warnings.append(f"out-of-range:{keyword}")
            return None
        return number

    def decimal(self, keyword: str) -> float | None:
        value = self.raw(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, (list, MultiValue)):
            value = value[0] if len(value) else None
            if value is None:
                return None
        try:
            return float(str(value))
        except (TypeError, ValueError):
            self.warnings.append(f"bad-number:{keyword}")
            return None

    def date(self, keyword: str) -> dt.date | None:
        text = self.text(keyword, limit=32)
        if not text:
            return None
        try:
            return parse_da(text)
        except ValueError:
            self.warnings.append(f"bad-date:{keyword}")
            return None

    def time(self, keyword: str) -> dt.time | None:
        text = self.text(keyword, limit=32)
        if not text:
            return None
        try:
            return parse_tm(text)
        except ValueError:
            self.warnings.append(f"bad-time:{keyword}")
            return None


def extract(ds: Dataset, *, has_pixel_data: bool) -> IndexAttributes:
    """Read everything QIDO-RS, C-FIND and the viewer need from one data set."""
    warnings: list[str] = []
    r = _Reader(ds, warnings)
    attrs = IndexAttributes(
        patient_id=r.text("PatientID"),
        issuer_of_patient_id=r.text("IssuerOfPatientID"),
        patient_name=r.text("PatientName", limit=324),
        patient_birth_date=r.date("PatientBirthDate"),
        patient_sex=r.text("PatientSex", limit=16),
        study_instance_uid=r.text("StudyInstanceUID"),
        study_date=r.date("StudyDate"),
        study_time=r.time("StudyTime"),
        accession_number=r.text("AccessionNumber"),
        study_id=r.text("StudyID", limit=16),
        study_description=r.text("StudyDescription"),
        referring_physician_name=r.text("ReferringPhysicianName", limit=324),
        series_instance_uid=r.text("SeriesInstanceUID"),
        modality=r.text("Modality", limit=16),
        series_number=r.integer("SeriesNumber"),
        series_description=r.text("SeriesDescription"),
        body_part_examined=r.text("BodyPartExamined"),
        series_date=r.date("SeriesDate"),
        series_time=r.time("SeriesTime"),
        protocol_name=r.text("ProtocolName"),
        manufacturer=r.text("Manufacturer"),
        station_name=r.text("StationName", limit=16),
        institution_name=r.text("InstitutionName"),
        frame_of_reference_uid=r.text("FrameOfReferenceUID"),
        performed_procedure_step_start_date=r.date("PerformedProcedureStepStartDate"),
        performed_procedure_step_start_time=r.time("PerformedProcedureStepStartTime"),
        sop_instance_uid=r.text("SOPInstanceUID"),
        sop_class_uid=r.text("SOPClassUID"),
        instance_number=r.integer("InstanceNumber"),
        content_date=r.date("ContentDate"),
        content_time=r.time("ContentTime"),
        acquisition_number=r.integer("AcquisitionNumber"),
        image_type=r.text("ImageType", limit=200),
        rows=r.integer("Rows"),
        columns=r.integer("Columns"),
        number_of_frames=r.integer("NumberOfFrames"),
        samples_per_pixel=r.integer("SamplesPerPixel"),
        photometric_interpretation=r.text("PhotometricInterpretation", limit=16),
        bits_allocated=r.integer("BitsAllocated"),
        bits_stored=r.integer("BitsStored"),
        pixel_representation=r.integer("PixelRepresentation"),
        pixel_spacing=r.text("PixelSpacing"),
        slice_thickness=r.decimal("SliceThickness"),
        slice_location=r.decimal("SliceLocation"),
        image_position_patient=r.text("ImagePositionPatient", limit=100),
        image_orientation_patient=r.text("ImageOrientationPatient", limit=200),
        window_center=r.text("WindowCenter"),
        window_width=r.text("WindowWidth"),
        rescale_intercept=r.decimal("RescaleIntercept"),
        rescale_slope=r.decimal("RescaleSlope"),
        has_pixel_data=has_pixel_data,
    )
    accession_issuer = r.raw("IssuerOfAccessionNumberSequence")
    if accession_issuer:
        try:
            attrs.issuer_of_accession_number = str(
                accession_issuer[0].get("LocalNamespaceEntityID", "")
            )[:64]
        except Exception:  # noqa: BLE001
            warnings.append("unreadable:IssuerOfAccessionNumberSequence")
    if has_pixel_data and attrs.number_of_frames is None:
        attrs.number_of_frames = 1
    attrs.warnings = sorted(set(warnings))
    return attrs
