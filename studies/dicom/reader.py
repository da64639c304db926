"""Read a stored object's header without fetching its pixels.

From S3 the object is read through ranged GETs in 64 KiB blocks, so indexing a 500 KB CT slice
costs one small request instead of a full download; local files are read directly.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO, Any

from django.core.files.storage import FileSystemStorage
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag, Tag

BLOCK = 64 * 1024
PIXEL_DATA = Tag(0x7FE0, 0x0010)
PIXEL_TAGS = {PIXEL_DATA, Tag(0x7FE0, 0x0008), Tag(0x7FE0, 0x0009)}


class RangeReader(io.RawIOBase):
    """A seekable, read-only file over ``store.read_range``."""

    def __init__(self, store: Any, key: str, size: int, head: bytes = b""):
        self._store = store
        self._key = key
        self._size = size
        self._head = head  # the object's first bytes, already at hand: no request for them
        self._pos = 0
        self.name = key  # pydicom records a name for every file it reads

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        self._pos = max(0, self._pos)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        length = min(len(buffer), self._size - self._pos)
        if self._pos < len(self._head):
            data = self._head[self._pos : self._pos + length]
        else:
            data = self._store.read_range(self._key, self._pos, length)
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n


# How much of each object's start the receipt keeps until it is indexed: enough for the header of
# a typical CT or MR slice, so indexing needs no request to object storage at all.
HEAD_BYTES = 16 * 1024


def open_stored(store: Any, key: str, size: int, head: bytes = b"") -> IO[bytes]:
    if isinstance(store, FileSystemStorage):
        return open(store.path(key), "rb")  # noqa: SIM115 - the caller closes it
    # Small buffer while the head serves the reads; past it, 64 KiB ranged GETs.
    return io.BufferedReader(
        RangeReader(store, key, size, head), buffer_size=BLOCK if not head else 4096
    )


DEFLATED = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"}
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


@dataclass
class Header:
    dataset: Dataset
    has_pixel_data: bool
    transfer_syntax_uid: str
    # Set only when the caller gave the stream size: an element (or the pixel data) runs past the
    # end of the stream, i.e. the file was cut short.
    truncated: bool = False
    # The Pixel Data element's length field (0xFFFFFFFF when encapsulated), if it has one.
    pixel_data_length: int | None = None
    # Where the Pixel Data (7FE0,0010) value starts in the stored object; None when the object has
    # none, or is deflated (positions in the inflated stream mean nothing in the stored bytes).
    pixel_data_offset: int | None = None


class UnreadableObject(Exception):
    """The object cannot be read as DICOM at all. The message is a code, never a value."""


def _encapsulated_complete(fp: IO[bytes], start: int) -> bool:
    """Whether an undefined-length pixel data value ends with its sequence delimiter."""
    fp.seek(start)
    tail = b""
    while chunk := fp.read(1024 * 1024):
        window = tail + chunk
        if _SEQUENCE_DELIMITER in window:
            return True
        tail = window[-(len(_SEQUENCE_DELIMITER) - 1) :]
    return False


def read_header(fp: IO[bytes], *, size: int | None = None) -> Header:
    """Parse a Part 10 stream up to (not including) its pixel data.

    Truncated files give what could be read (pydicom stops at the break); only a stream with no
    recognisable DICOM structure raises UnreadableObject. With ``size``, also tell whether the
    stream was cut short, checking the pixel data's extent without reading it into memory.
    """
    seen_pixels = False
    overruns = 0
    pixel_value_at = -1
    pixel_length = 0
    pixel_tag: BaseTag | None = None

    def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
        nonlocal seen_pixels, overruns, pixel_value_at, pixel_length, pixel_tag
        if size is not None and length != 0xFFFFFFFF and fp.tell() + length > size:
            overruns += 1
        if tag in PIXEL_TAGS:
            seen_pixels = True
            pixel_value_at, pixel_length, pixel_tag = fp.tell(), length, tag
            return True
        return False

    with warnings.catch_warnings(record=True) as caught:
        # pydicom's warnings quote element values; they are recorded here, never logged.
        warnings.simplefilter("always")
        try:
            ds = read_partial(fp, stop_when=stop, force=True)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - any parse failure means "unreadable"
            raise UnreadableObject(f"parse-error:{type(exc).__name__}") from None
    if len(ds) == 0:
        raise UnreadableObject("no-data-elements")
    ts = ""
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        ts = str(meta.get("TransferSyntaxUID", "") or "")
    truncated = False
    if size is not None and ts not in DEFLATED:
        eof_warning = any("end of file" in str(w.message).lower() for w in caught)
        truncated = overruns > 0 or eof_warning
        if not truncated and seen_pixels and pixel_length == 0xFFFFFFFF:
            truncated = not _encapsulated_complete(fp, pixel_value_at)
    return Header(
        dataset=ds,
        has_pixel_data=seen_pixels,
        transfer_syntax_uid=ts,
        truncated=truncated,
        pixel_data_length=pixel_length if seen_pixels else None,
        pixel_data_offset=pixel_value_at
        if pixel_tag == PIXEL_DATA and ts not in DEFLATED
        else None,
    )
