"""The PS3.15 basic profile on pydicom's own test files: identity gone, private attributes gone,
UIDs remapped consistently (references included), the options, burned-in annotation."""

from __future__ import annotations

import datetime

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from studies.deid.profile import (
    DATES_KEEP,
    DATES_SHIFT,
    Options,
    Recipe,
    burned_in_reason,
    deidentify,
)

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def recipe(options: Options | None = None, scope: str = "1|share-a", offset: int = 0) -> Recipe:
    return Recipe(
        options=options or Options(), secret=b"test secret", scope=scope, date_offset_days=offset
    )


def ct(**changes: object) -> Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientBirthDate = "19600214"
    ds.AccessionNumber = "ACC12345X"
    ds.ReferringPhysicianName = "REFERRER^ROBERT"
    ds.StudyDescription = "CT CHEST for CompressedSamples"
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return ds


def all_values(ds: Dataset) -> str:
    """Every value in the data set, sequences included, as one text to search."""
    out = []
    for element in ds.iterall():
        if element.VR != "SQ" and element.VR not in ("OB", "OW", "UN"):
            out.append(str(element.value))
    return "|".join(out)


def test_the_basic_profile_leaves_no_identity_and_no_private_attribute():
    ds = ct()
    original = {
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "sop": ds.SOPInstanceUID,
        "frame": ds.FrameOfReferenceUID,
    }
    assert any(e.tag.is_private for e in ds)
    deidentify(ds, recipe())
    text = all_values(ds)
    for value in (
        "CompressedSamples",
        "1CT1",
        "19600214",
        "ACC12345X",
        "REFERRER",
        "JFK IMAGING",
        *original.values(),
    ):
        assert value not in text
    assert not any(e.tag.is_private for e in ds.iterall())
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.PatientID.startswith("DEID-") and ds.PatientName == f"Anonymized^{ds.PatientID}"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert not ds.StudyDate and "StudyDescription" not in ds
    assert ds.SOPClassUID == CT_IMAGE_STORAGE  # a well-known UID names nobody: kept
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert uid.startswith("2.25.") and len(uid) <= 64
    assert "PixelData" in ds and ds.PixelData == ct().PixelData  # pixels untouched


def test_uids_map_the_same_within_a_share_and_differently_in_another():
    first, again, other = ct(), ct(), ct()
    deidentify(first, recipe())
    deidentify(again, recipe())
    deidentify(other, recipe(scope="1|share-b"))
    assert first.StudyInstanceUID == again.StudyInstanceUID
    assert first.FrameOfReferenceUID == again.FrameOfReferenceUID
    assert first.PatientID == again.PatientID
    assert other.StudyInstanceUID != first.StudyInstanceUID
    assert other.PatientID != first.PatientID


def test_references_in_an_sr_point_at_the_remapped_images():
    image = ct()
    report = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    evidence = Dataset()
    evidence.StudyInstanceUID = image.StudyInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = image.SeriesInstanceUID
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = image.SOPClassUID
    referenced.ReferencedSOPInstanceUID = image.SOPInstanceUID
    series.ReferencedSOPSequence = Sequence([referenced])
    evidence.ReferencedSeriesSequence = Sequence([series])
    report.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])
    report.StudyInstanceUID = image.StudyInstanceUID
    report.ContentSequence[0].TextValue = "Findings for Test S R (MRN 1234567): none"
    shared = recipe()
    deidentify(image, shared)
    deidentify(report, shared)
    item = report.CurrentRequestedProcedureEvidenceSequence[0]
    assert item.StudyInstanceUID == image.StudyInstanceUID == report.StudyInstanceUID
    assert item.ReferencedSeriesSequence[0].SeriesInstanceUID == image.SeriesInstanceUID
    ref = item.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == image.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == CT_IMAGE_STORAGE
    # The observer's name in the SR's sequences is gone; the content stays (D: recursed into)
    # with its person names removed and the patient's name taken out of its free text.
    text = all_values(report)
    assert "Test^S R" not in text and "Test S R" not in text and "Findings for" in text
    predecessor = report.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert predecessor.ReferencedSOPSequence[0].ReferencedSOPInstanceUID.startswith("2.25.")


def test_names_and_private_attributes_nested_in_sequences_are_removed():
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6"
    item.add_new(0x00091010, "LO", "SECRET PRIVATE")
    item.add_new(0x00081070, "PN", "OPERATOR^OLIVIA")  # Operators' Name
    ds.ReferencedImageSequence = Sequence([item])
    deidentify(ds, recipe())
    nested = ds.ReferencedImageSequence[0]
    assert "SECRET PRIVATE" not in all_values(ds) and "OPERATOR" not in all_values(ds)
    assert nested.ReferencedSOPInstanceUID == recipe().uid("1.2.3.4.5.6")
    assert ds.Manufacturer == "_MEC"  # the manufacturer identifies no one: kept
    assert "TOSHIBA" not in all_values(ds)  # the institution's name does
    assert not ds.InstanceCreationDate  # a date the table does not list follows the option


def test_the_options_keep_what_they_name_and_say_so_in_the_codes():
    options = Options(
        retain_patient_characteristics=True,
        retain_device_identity=True,
        retain_institution_identity=True,
        clean_descriptors=True,
        dates=DATES_SHIFT,
    )
    ds = ct(PatientSex="F", PatientAge="044Y", StationName="CT01", DeviceSerialNumber="SN-77")
    deidentify(ds, recipe(options, offset=-400))
    assert ds.PatientSex == "F" and ds.PatientAge == "044Y"
    assert ds.StationName == "CT01" and ds.DeviceSerialNumber == "SN-77"
    assert ds.InstitutionName == "JFK IMAGING CENTER"
    assert ds.StudyDescription == "CT CHEST for"  # the patient's name taken out
    original = datetime.date(2004, 1, 19)
    assert ds.StudyDate == (original - datetime.timedelta(days=400)).strftime("%Y%m%d")
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = {c.CodeValue for c in ds.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113105", "113107", "113108", "113109", "113112"}
    assert "19600214" not in all_values(ds)  # a birth date is never a longitudinal date

    kept = ct()
    deidentify(kept, recipe(Options(dates=DATES_KEEP)))
    assert (
        kept.StudyDate == "20040119"
        and kept.LongitudinalTemporalInformationModified == "UNMODIFIED"
    )
    assert "StationName" not in kept or not kept.StationName


def test_burned_in_annotation_flags_what_may_show_text_in_the_pixels():
    plain_ct = ct()
    assert burned_in_reason(plain_ct) == ""
    assert "YES" in burned_in_reason(ct(BurnedInAnnotation="YES"))
    assert "unknown" in burned_in_reason(ct(BurnedInAnnotation="MAYBE"))
    us = ct(Modality="US", SOPClassUID=US_IMAGE_STORAGE)
    assert "US" in burned_in_reason(us)
    assert (
        burned_in_reason(ct(Modality="US", SOPClassUID=US_IMAGE_STORAGE, BurnedInAnnotation="NO"))
        == ""
    )
    secondary = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm"))
    del secondary.Modality
    assert burned_in_reason(secondary) != ""
