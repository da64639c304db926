"""Whole objects re-encoded for a receiver that does not take the stored transfer syntax."""

from __future__ import annotations

import io
import warnings

from pydicom import dcmread
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

from .errors import CannotDecode


def to_explicit_le(data: bytes) -> bytes:
    """The Part 10 object in Explicit VR Little Endian, decompressed when it was compressed.

    The SOP Instance UID is kept (``generate_instance_uid=False``), as for C-MOVE/C-GET in
    ``studies/dimse/qr.py``: the receiver asked for this instance, re-encoded.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(io.BytesIO(data), force=True)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    try:
        if syntax.is_compressed:
            ds.decompress(generate_instance_uid=False)
        elif not syntax.is_little_endian and "PixelData" in ds:
            # pydicom writes values as they are: native big-endian pixels must be swapped.
            pixels = ds.pixel_array
            ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    except Exception as exc:  # noqa: BLE001 - any codec failure
        raise CannotDecode(f"Pixel data in {syntax} cannot be decoded here.") from exc
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    dcmwrite(out, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return out.getvalue()
