"""Copies of one synthetic CT series for the viewer's browser tests: the same pixels and geometry
stored in another transfer syntax, under UIDs of their own (study, series, instances, frame of
reference), each copy checked to decode to exactly the pixels it was made from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from studies.dicom import synthetic

# The transfer syntaxes the viewer must render alike, by the name used for screenshots.
SYNTAXES: dict[str, UID] = {
    "native": ExplicitVRLittleEndian,
    "jpeg2000": JPEG2000Lossless,
    "jpegls": JPEGLSLossless,
    "rle": RLELossless,
}


@dataclass(frozen=True)
class Copy:
    name: str
    syntax: UID
    study_uid: str
    payloads: list[bytes]  # Part 10 files, in slice order


def _uid(*parts: object) -> str:
    name = "/".join(["skylight-viewer-test", *map(str, parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def series(seed: int, slices: int, size: int, patient_id: str) -> list[pydicom.Dataset]:
    """The phantom chest CT, ``slices`` axial images of ``size``², as Explicit VR Little Endian."""
    spec = synthetic.simple_spec(
        seed=seed, slices=slices, rows=size, columns=size, patient_id=patient_id
    )
    return list(synthetic.iter_study(spec))


def stored_as(name: str, originals: list[pydicom.Dataset], seed: int) -> Copy:
    """The series re-encoded in SYNTAXES[name] under new UIDs; raises if a copy's decoded pixels
    differ from the original's by a single value."""
    syntax = SYNTAXES[name]
    study = _uid(seed, name, "study")
    payloads = []
    for original in originals:
        expected = original.pixel_array
        ds = pydicom.Dataset(dict(original.items()))
        ds.file_meta = pydicom.dataset.FileMetaDataset(original.file_meta)
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = _uid(seed, name, "series", original.SeriesNumber)
        ds.FrameOfReferenceUID = _uid(seed, name, "frame-of-reference")
        ds.SOPInstanceUID = _uid(seed, name, "instance", original.InstanceNumber)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if syntax != ExplicitVRLittleEndian:
            ds.compress(syntax, expected)
        data = synthetic.encode_part10(ds)
        decoded = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
        assert decoded.file_meta.TransferSyntaxUID == syntax, decoded.file_meta
        assert np.array_equal(decoded.pixel_array, expected), f"{name}: lossy copy"
        payloads.append(data)
    return Copy(name=name, syntax=syntax, study_uid=study, payloads=payloads)
