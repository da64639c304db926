"""DICOM Part 10 framing: the preamble and File Meta Information around a received data set.

A C-STORE carries only the data set; to keep the original bytes exactly as received we store them
unchanged after a File Meta header we write ourselves. The header is encoded by hand (eight fixed
elements, Explicit VR Little Endian per PS3.10 7.1) because pydicom's general writer costs more
than the rest of the C-STORE path at hundreds of instances per second; a test checks it against
pydicom's reader.
"""

from __future__ import annotations

import struct

# A UUID-derived UID (PS3.5 B.2), minted once for Skylight.
IMPLEMENTATION_CLASS_UID = "2.25.222862973095728102246891015972287048362"
IMPLEMENTATION_VERSION_NAME = "SKYLIGHT_010"
PREAMBLE = b"\x00" * 128 + b"DICM"


def _even(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def _short(tag: tuple[int, int], vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH", *tag) + vr + struct.pack("<H", len(value)) + value


def file_meta(
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    source_ae_title: str = "",
) -> bytes:
    """Return preamble + 'DICM' + File Meta Information for a data set that follows it."""
    elements = [
        struct.pack("<HH", 0x0002, 0x0001) + b"OB\x00\x00" + struct.pack("<I", 2) + b"\x00\x01",
        _short((0x0002, 0x0002), b"UI", _even(sop_class_uid.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0003), b"UI", _even(sop_instance_uid.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0010), b"UI", _even(transfer_syntax_uid.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0012), b"UI", _even(IMPLEMENTATION_CLASS_UID.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0013), b"SH", _even(IMPLEMENTATION_VERSION_NAME.encode("ascii"), b" ")),
    ]
    source = source_ae_title.strip()
    if source:
        elements.append(
            _short((0x0002, 0x0016), b"AE", _even(source.encode("ascii", "replace"), b" "))
        )
    body = b"".join(elements)
    group_length = struct.pack("<HH", 0x0002, 0x0000) + b"UL" + struct.pack("<HI", 4, len(body))
    return PREAMBLE + group_length + body


def data_set_offset(data: bytes) -> int:
    """Offset of the data set in a Part 10 stream (after preamble and File Meta), or 0 if the
    stream has no Part 10 header."""
    if len(data) < 144 or data[128:132] != b"DICM":
        return 0
    offset = 132
    while offset + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, offset)
        if group != 0x0002:
            break
        vr = data[offset + 4 : offset + 6]
        if vr in (
            b"OB",
            b"OW",
            b"OF",
            b"SQ",
            b"UT",
            b"UN",
            b"UC",
            b"UR",
            b"OD",
            b"OL",
            b"OV",
            b"SV",
            b"UV",
        ):
            (length,) = struct.unpack_from("<I", data, offset + 8)
            offset += 12 + length
        else:
            (length,) = struct.unpack_from("<H", data, offset + 6)
            offset += 8 + length
    return offset
