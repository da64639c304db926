"""How large a decoded frame may be, checked before any decoder allocates it.

A compressed frame is small on the wire and may declare any size: a JPEG 2000 codestream of a
few hundred bytes can claim 60,000 × 60,000 pixels, and the decoder would allocate gigabytes
before noticing the data is missing. Both the data set (Rows, Columns, Samples per Pixel, Bits
Allocated) and each JPEG 2000 codestream's own SIZ marker (ISO/IEC 15444-1 A.5.1) are checked
against one limit; the stored bytes can still be retrieved as they are.
"""

from __future__ import annotations

import struct
from typing import IO

from pydicom.dataset import Dataset

from .errors import CannotDecode

# The largest real single frames (a 16-bit 4096 × 5120 mammogram, a 8192² RGB photograph) are
# a few hundred MB at most once decoded; whole-slide images come tiled.
MAX_DECODED_FRAME_BYTES = 512 * 1024 * 1024

JPEG_2000_SYNTAXES = {
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
}
_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_END = b"\xfe\xff\xdd\xe0"
_CODESTREAM_START = b"\xff\x4f\xff\x51"  # SOC, then SIZ


def _refuse(size: int) -> CannotDecode:
    return CannotDecode(
        f"A frame of this instance would take {size // (1024 * 1024)} MB decoded, more than this "
        f"server decodes ({MAX_DECODED_FRAME_BYTES // (1024 * 1024)} MB): retrieve it in its "
        "stored transfer syntax instead."
    )


def declared_frame_bytes(ds: Dataset) -> int:
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return 0
    return rows * columns * samples * max(1, (bits + 7) // 8)


def _codestream_bytes(head: bytes) -> int:
    """Decoded bytes a JPEG 2000 codestream declares in its SIZ marker; 0 if none is there."""
    if len(head) < 42 or not head.startswith(_CODESTREAM_START):
        return 0
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">4I", head[8:24])
    (components,) = struct.unpack(">H", head[40:42])
    depth = head[42] & 0x7F if len(head) > 42 else 15
    width, height = max(0, xsiz - xosiz), max(0, ysiz - yosiz)
    return width * height * max(1, components) * (2 if depth >= 8 else 1)


def check_decoded_size(fp: IO[bytes], ds: Dataset, syntax: str, offset: int) -> None:
    """Raise CannotDecode if decoding a frame would allocate more than the limit.

    ``offset`` is where the Pixel Data value starts in ``fp`` (negative when unknown); for
    JPEG 2000 every fragment that starts a codestream is looked at (a seek and 64 bytes each).
    """
    declared = declared_frame_bytes(ds)
    if declared > MAX_DECODED_FRAME_BYTES:
        raise _refuse(declared)
    if syntax not in JPEG_2000_SYNTAXES or offset < 0:
        return
    fp.seek(offset)
    while True:
        header = fp.read(8)
        if len(header) < 8 or header[:4] != _ITEM:
            return  # the sequence delimiter, or the end of what is there
        (length,) = struct.unpack("<I", header[4:])
        head = fp.read(min(length, 64))
        size = _codestream_bytes(head)
        if size > MAX_DECODED_FRAME_BYTES:
            raise _refuse(size)
        fp.seek(length - len(head), 1)
