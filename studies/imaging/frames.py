"""Frames of a stored object for WADO-RS ``/frames``: as stored, or decoded to native pixels.

Only the bytes needed are read: the header, then one ranged read for a native frame, or the
fragments of the frame asked for when the encapsulated data has an offset table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian

from ..dicom.reader import open_stored
from .decode import decoded_frames, little_endian_bytes, locate
from .errors import CannotDecode

# The media type of a compressed frame asked for by its own type (PS3.18 Table 8.7.3-2).
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}


@dataclass
class Frames:
    syntax: str  # the transfer syntax the payloads are in
    payloads: list[bytes]


def read_frames(store: Any, key: str, size: int, numbers: list[int], *, decoded: bool) -> Frames:
    """Frames ``numbers`` (1-based) of a stored object.

    ``decoded=False``: as stored (the encapsulated frame's bytes, or the native frame's slice).
    ``decoded=True``: native little-endian pixels as pydicom's ``pixel_array`` gives them; a
    native little-endian frame is already that, and is sent as stored.
    Raises FrameOutOfRange and CannotDecode.
    """
    with open_stored(store, key, size) as fp:
        where = locate(fp)
        where.check(numbers)
        syntax = str(where.syntax)
        if where.offset >= 0 and (where.native_little_endian or not decoded):
            if where.encapsulated:
                extended = None
                ds = where.dataset
                if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
                    extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
                payloads = []
                for n in numbers:
                    fp.seek(where.offset)
                    try:
                        payloads.append(
                            get_frame(
                                fp,
                                n - 1,
                                extended_offsets=extended,
                                number_of_frames=where.frame_count,
                            )
                        )
                    except (ValueError, KeyError) as exc:
                        raise CannotDecode("The encapsulated pixel data is malformed.") from exc
                return Frames(syntax, payloads)
            frame_size = where.frame_size() or where.length // where.frame_count
            if where.native_little_endian:
                syntax = ExplicitVRLittleEndian
            return Frames(
                syntax,
                [
                    store.read_range(key, where.offset + (n - 1) * frame_size, frame_size)
                    for n in numbers
                ],
            )
        # Here: decoding asked for, or a deflated object, whose frames are native pixels once
        # inflated (sent as Explicit VR Little Endian either way).
        arrays = decoded_frames(fp, numbers, where.dataset if where.offset < 0 else None)
    return Frames(ExplicitVRLittleEndian, [little_endian_bytes(a) for a in arrays])
