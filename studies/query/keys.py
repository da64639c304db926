"""The attributes the index can match and return, level by level, and where each one lives.

Every attribute answered by QIDO-RS or C-FIND is a column of Patient, Study, Series or Instance
(``studies/models.py``); nothing here ever opens a stored object. An attribute that is a DICOM
keyword but not a column is returned empty when asked for, and ignored (with a warning) when a
value is given to match on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

PATIENT, STUDY, SERIES, IMAGE = "PATIENT", "STUDY", "SERIES", "IMAGE"
LEVELS = (PATIENT, STUDY, SERIES, IMAGE)
DEPTH = {level: depth for depth, level in enumerate(LEVELS)}

# How each level's model reaches the model that owns an attribute ("" is itself).
PATHS: dict[str, dict[str, str]] = {
    PATIENT: {PATIENT: ""},
    STUDY: {PATIENT: "patient__", STUDY: ""},
    SERIES: {PATIENT: "study__patient__", STUDY: "study__", SERIES: ""},
    IMAGE: {PATIENT: "study__patient__", STUDY: "study__", SERIES: "series__", IMAGE: ""},
}


@dataclass(frozen=True)
class Key:
    keyword: str
    owner: str  # the level whose model holds the column
    column: str
    # How a value is matched: "uid", "text", "code", "name", "date", "time", "int", "modalities",
    # or "" for return-only attributes (counts).
    match: str
    # The upper-case, accent-free copy of a person name, for "name" matching.
    search_column: str = ""


_KEYS = [
    Key("PatientName", PATIENT, "patient_name", "name", "patient_name_search"),
    Key("PatientID", PATIENT, "patient_id", "text"),
    Key("IssuerOfPatientID", PATIENT, "issuer_of_patient_id", "text"),
    Key("PatientBirthDate", PATIENT, "patient_birth_date", "date"),
    Key("PatientSex", PATIENT, "patient_sex", "code"),
    Key("StudyInstanceUID", STUDY, "study_instance_uid", "uid"),
    Key("StudyDate", STUDY, "study_date", "date"),
    Key("StudyTime", STUDY, "study_time", "time"),
    Key("AccessionNumber", STUDY, "accession_number", "text"),
    Key("StudyID", STUDY, "study_id", "text"),
    Key("StudyDescription", STUDY, "study_description", "text"),
    Key(
        "ReferringPhysicianName",
        STUDY,
        "referring_physician_name",
        "name",
        "referring_physician_name_search",
    ),
    Key("ModalitiesInStudy", STUDY, "modalities_in_study", "modalities"),
    Key("NumberOfStudyRelatedSeries", STUDY, "number_of_study_related_series", ""),
    Key("NumberOfStudyRelatedInstances", STUDY, "number_of_study_related_instances", ""),
    Key("SeriesInstanceUID", SERIES, "series_instance_uid", "uid"),
    Key("Modality", SERIES, "modality", "code"),
    Key("SeriesNumber", SERIES, "series_number", "int"),
    Key("SeriesDescription", SERIES, "series_description", "text"),
    Key("BodyPartExamined", SERIES, "body_part_examined", "code"),
    Key("SeriesDate", SERIES, "series_date", "date"),
    Key("SeriesTime", SERIES, "series_time", "time"),
    Key("ProtocolName", SERIES, "protocol_name", "text"),
    Key("Manufacturer", SERIES, "manufacturer", "text"),
    Key("StationName", SERIES, "station_name", "text"),
    Key("InstitutionName", SERIES, "institution_name", "text"),
    Key("FrameOfReferenceUID", SERIES, "frame_of_reference_uid", "uid"),
    Key("PerformedProcedureStepStartDate", SERIES, "performed_procedure_step_start_date", "date"),
    Key("PerformedProcedureStepStartTime", SERIES, "performed_procedure_step_start_time", "time"),
    Key("NumberOfSeriesRelatedInstances", SERIES, "number_of_series_related_instances", ""),
    Key("SOPInstanceUID", IMAGE, "sop_instance_uid", "uid"),
    Key("SOPClassUID", IMAGE, "sop_class_uid", "uid"),
    Key("InstanceNumber", IMAGE, "instance_number", "int"),
    Key("ContentDate", IMAGE, "content_date", "date"),
    Key("ContentTime", IMAGE, "content_time", "time"),
    Key("AcquisitionNumber", IMAGE, "acquisition_number", "int"),
    Key("Rows", IMAGE, "rows", "int"),
    Key("Columns", IMAGE, "columns", "int"),
    Key("NumberOfFrames", IMAGE, "number_of_frames", "int"),
    Key("SamplesPerPixel", IMAGE, "samples_per_pixel", "int"),
    Key("PhotometricInterpretation", IMAGE, "photometric_interpretation", "code"),
    Key("BitsAllocated", IMAGE, "bits_allocated", "int"),
    Key("BitsStored", IMAGE, "bits_stored", "int"),
    Key("ImageType", IMAGE, "image_type", "code"),
    Key("AvailableTransferSyntaxUID", IMAGE, "transfer_syntax_uid", "uid"),
]
KEYS: dict[str, Key] = {k.keyword: k for k in _KEYS}

# Returned whether asked for or not (PS3.18 Tables 10.6.3-3 to -5; PS3.4 C.6 unique keys).
REQUIRED: dict[str, tuple[str, ...]] = {
    PATIENT: ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex"),
    STUDY: (
        "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ModalitiesInStudy",
        "ReferringPhysicianName", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
        "StudyInstanceUID", "StudyID", "StudyDescription", "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    SERIES: (
        "StudyInstanceUID", "Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID",
        "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime", "InstanceAvailability",
    ),
    IMAGE: (
        "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID",
        "InstanceAvailability", "InstanceNumber", "Rows", "Columns", "BitsAllocated",
        "NumberOfFrames",
    ),
}  # fmt: skip
# The unique key of each level, always returned so that a result can be retrieved.
UNIQUE = {
    PATIENT: "PatientID",
    STUDY: "StudyInstanceUID",
    SERIES: "SeriesInstanceUID",
    IMAGE: "SOPInstanceUID",
}
# Attributes with a fixed answer: everything indexed is online.
CONSTANT = {"InstanceAvailability": "ONLINE"}
# Never matching keys, whatever their value: they shape the query or the response.
NOT_MATCHED = {"QueryRetrieveLevel", "SpecificCharacterSet", "TimezoneOffsetFromUTC"}

# Matching keys whose values an audit row keeps (with every UID): study and series facts, not
# the patient's. Audit details hold identifiers and codes, never patient data
# (tenants.models.AuditEvent), so other values are recorded as "(value)".
AUDITED_VALUES = frozenset(
    {
        "QueryRetrieveLevel", "AccessionNumber", "Modality", "ModalitiesInStudy", "StudyDate",
        "StudyTime", "SeriesDate", "SeriesTime", "SeriesNumber", "InstanceNumber",
    }
)  # fmt: skip


def keyword_of(name: str) -> str | None:
    """A DICOM keyword from a keyword or an 8-digit hex tag, or None when it is neither."""
    if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
        return keyword_for_tag(Tag(int(name, 16))) or None
    return name if tag_for_keyword(name) is not None else None


def visible_at(key: Key, level: str) -> bool:
    """Whether a level's rows can answer for this attribute (its own or an upper level's)."""
    return DEPTH[key.owner] <= DEPTH[level]


def dicom_value(key: Key, value: Any) -> Any:
    """A column value as pydicom wants it for the attribute's VR."""
    if value is None or value == "":
        return None
    if key.match == "modalities":
        return [m for m in str(value).split("\\") if m] or None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, dt.time):
        text = value.strftime("%H%M%S")
        return f"{text}.{value.microsecond:06d}" if value.microsecond else text
    if isinstance(value, str) and "\\" in value:
        return value.split("\\")
    return value


def add_element(ds: Dataset, keyword: str, value: Any) -> None:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return
    vr = dictionary_VR(tag)
    if vr in ("US or SS", "OB or OW", "US or OW", "US or SS or OW"):
        vr = vr.split(" or ")[0]
    if vr in ("IS", "US", "UL", "SS", "SL") and isinstance(value, str):
        value = int(value) if value.lstrip("-").isdigit() else None
    # Index values were read liberally; pydicom's validation warnings would quote them.
    ds[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)


def audit_keys(identifier: Dataset) -> dict[str, str]:
    """The query keys for an audit row: UIDs and AUDITED_VALUES as given, others as "(value)"."""
    keys: dict[str, str] = {}
    for element in identifier:
        if element.VR == "SQ" or element.tag == 0x00080005:
            continue
        keyword = element.keyword or str(element.tag)
        if element.value in (None, ""):
            keys[keyword] = ""
        elif element.VR == "UI" or keyword in AUDITED_VALUES:
            keys[keyword] = str(element.value)[:200]
        else:
            keys[keyword] = "(value)"
    return keys
