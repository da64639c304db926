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
from .decode import decoded_frames, little_endian_bytes, locate, native_frame_size
from .errors import CannotDecode, FrameOutOfRange
from .limits import check_decoded_size

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


NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
}
LITTLE_ENDIAN_NATIVE = NATIVE_SYNTAXES - {"1.2.840.10008.1.2.2"}


@dataclass(frozen=True)
class NativeLayout:
    """Where the native frames of a stored object lie, as recorded at ingest: enough to read a
    frame with one ranged read and no header parse."""

    syntax: str
    offset: int  # of the Pixel Data value in the stored object
    frame_size: int
    frame_count: int

    @classmethod
    def of(cls, instance: Any) -> NativeLayout | None:
        """The layout of an indexed instance, or None when it is not plainly native (encapsulated,
        deflated, 1-bit, indexed before offsets were recorded, or inconsistent)."""
        offset, length = instance.pixel_data_offset, instance.pixel_data_length
        syntax = instance.transfer_syntax_uid
        if offset is None or length is None or syntax not in NATIVE_SYNTAXES:
            return None
        if not (instance.rows and instance.columns and instance.bits_allocated):
            return None
        size = native_frame_size(
            instance.rows,
            instance.columns,
            instance.samples_per_pixel or 1,
            instance.bits_allocated,
            instance.photometric_interpretation,
        )
        count = max(1, instance.number_of_frames or 1)
        if size == 0 or size * count > length or offset + length > instance.size:
            return None
        return cls(syntax, offset, size, count)


@dataclass
class Frames:
    syntax: str  # the transfer syntax the payloads are in
    payloads: list[bytes]


def read_frames(
    store: Any,
    key: str,
    size: int,
    numbers: list[int],
    *,
    decoded: bool,
    layout: NativeLayout | None = None,
) -> Frames:
    """Frames ``numbers`` (1-based) of a stored object.

    ``decoded=False``: as stored (the encapsulated frame's bytes, or the native frame's slice).
    ``decoded=True``: native little-endian pixels as pydicom's ``pixel_array`` gives them; a
    native little-endian frame is already that, and is sent as stored.
    With the ``layout`` recorded at ingest, native frames are read without parsing the header.
    Raises FrameOutOfRange and CannotDecode.
    """
    little_endian = layout is not None and layout.syntax in LITTLE_ENDIAN_NATIVE
    if layout is not None and (little_endian or not decoded):
        bad = [n for n in numbers if not 1 <= n <= layout.frame_count]
        if bad:
            raise FrameOutOfRange(
                f"Frame {bad[0]} does not exist: the instance has {layout.frame_count}."
            )
        return Frames(
            ExplicitVRLittleEndian if little_endian else layout.syntax,
            [
                store.read_range(
                    key, layout.offset + (n - 1) * layout.frame_size, layout.frame_size
                )
                for n in numbers
            ],
        )
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
        check_decoded_size(fp, where.dataset, str(where.syntax), where.offset)
        arrays = decoded_frames(
            fp, numbers, where.dataset if where.offset < 0 else None, syntax=str(where.syntax)
        )
    return Frames(ExplicitVRLittleEndian, [little_endian_bytes(a) for a in arrays])
