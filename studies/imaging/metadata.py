"""DICOM JSON of stored instances for WADO-RS ``/metadata``, with bulk data by reference.

Documents are built with *relative* BulkDataURIs (``studies/…/instances/…/bulkdata/<tag>``) so
that one document serves every host name; ``absolute`` prefixes the base URL when sending.
"""

from __future__ import annotations

import json
import warnings
from typing import IO

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

BULK_THRESHOLD = 1024  # bytes: larger binary values are sent by reference (BulkDataURI)
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_URI_KEY = b'"BulkDataURI":"'


def instance_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    return f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


def metadata_json(ds: Dataset, *, has_pixel_data: bool, bulk_root: str) -> bytes:
    """A data set read up to its pixel data, as DICOM JSON without File Meta, binary values over
    BULK_THRESHOLD and Pixel Data replaced by ``{bulk_root}<tag>`` URIs.

    Only top-level elements are addressable by the bulkdata route; a large binary value nested in
    a sequence gets a URI with its own tag (which answers 404).
    """

    def bulk(element: DataElement) -> str:
        return f"{bulk_root}{element.tag:08X}"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings may quote values
        document = ds.to_json_dict(
            bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=bulk
        )
    if has_pixel_data:
        meta = getattr(ds, "file_meta", None)
        syntax = UID(str(meta.get("TransferSyntaxUID", "") or "")) if meta is not None else None
        compressed = bool(syntax and syntax.is_compressed)
        vr = "OB" if compressed or int(ds.get("BitsAllocated", 16) or 16) <= 8 else "OW"
        document["7FE00010"] = {"vr": vr, "BulkDataURI": f"{bulk_root}7FE00010"}
    return json.dumps(document, separators=(",", ":")).encode()


def absolute(document: bytes, base: str) -> bytes:
    """Make a document's relative BulkDataURIs absolute under ``base`` (no trailing slash).

    The key cannot occur inside a JSON string value: its quotes would be escaped there.
    """
    return document.replace(_URI_KEY, _URI_KEY + base.encode() + b"/")


def bulk_value(fp: IO[bytes], path: str) -> bytes | None:
    """The value of a top-level binary element named by its 8-digit hex tag, or None."""
    try:
        tag = int(path.strip("/").split("/")[0], 16)
    except ValueError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(fp, force=True, specific_tags=[tag])
    element = ds.get(tag)
    if element is None or element.VR not in BINARY_VRS or element.value is None:
        return None
    value = element.value
    return bytes(value) if isinstance(value, (bytes, bytearray)) else None
