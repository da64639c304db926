"""Pixel data for WADO-RS and derived data: locate, frames, decode, transcode, metadata, render.

Public interface (everything reads through a seekable file, so S3 objects are fetched by range):

- ``read_frames(store, key, size, numbers, *, decoded) -> Frames(syntax, payloads)``
- ``to_explicit_le(data) -> bytes``: a Part 10 object decompressed to Explicit VR Little Endian
- ``metadata_json(ds, *, has_pixel_data, bulk_root) -> bytes``; ``absolute(document, base)``;
  ``instance_path(study, series, sop)``; ``bulk_value(fp, tag_path) -> bytes | None``
- ``RenderOptions.from_query(query, *, thumbnail)``; ``render(fp, frame, options, media) -> bytes``
- ``locate(fp) -> PixelLocation``; ``decoded_frames(fp, numbers) -> list[ndarray]``
- errors: ``CannotDecode``, ``FrameOutOfRange``; ``FRAME_MEDIA_TYPES``
- ``ready``: viewer-ready frames (JPEG-LS lossless) made at ingest; ``ready.encode(data)``
"""

from __future__ import annotations

from . import ready
from .decode import PixelLocation, decoded_frames, locate
from .errors import CannotDecode, FrameOutOfRange
from .frames import FRAME_MEDIA_TYPES, Frames, NativeLayout, read_frames
from .metadata import BULK_THRESHOLD, absolute, bulk_value, instance_path, metadata_json
from .render import THUMBNAIL_SIZE, RenderOptions, render
from .transcode import to_explicit_le

__all__ = [
    "BULK_THRESHOLD",
    "FRAME_MEDIA_TYPES",
    "THUMBNAIL_SIZE",
    "CannotDecode",
    "FrameOutOfRange",
    "Frames",
    "PixelLocation",
    "RenderOptions",
    "absolute",
    "bulk_value",
    "decoded_frames",
    "instance_path",
    "locate",
    "metadata_json",
    "NativeLayout",
    "read_frames",
    "ready",
    "render",
    "to_explicit_le",
]
