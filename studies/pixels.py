"""Stored objects turned into what WADO-RS sends: little-endian copies, metadata, frames, images.

pydicom decodes every transfer syntax its installed plugins handle (pylibjpeg with openjpeg and
libjpeg, pyjpegls, pylibjpeg-rle: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K,
RLE, deflate). Nothing here logs or raises with patient data in the message.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

BULK_THRESHOLD = 1024  # bytes: larger binary values are sent by reference (BulkDataURI)
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
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
}


class CannotDecode(Exception):
    """The pixel data cannot be decoded here (no codec, or a corrupt stream)."""


class FrameOutOfRange(Exception):
    pass


def _dataset(data: bytes, *, pixels: bool = True) -> Dataset:
    return dcmread(io.BytesIO(data), force=True, stop_before_pixels=not pixels)


def to_explicit_le(data: bytes) -> bytes:
    """The object as Part 10 in Explicit VR Little Endian, decompressed when it was compressed."""
    ds = _dataset(data)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    try:
        if syntax.is_compressed:
            ds.decompress(generate_instance_uid=False)
    except Exception as exc:  # noqa: BLE001 - any codec failure
        raise CannotDecode(f"Pixel data in {syntax} cannot be decoded here.") from exc
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    dcmwrite(out, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return out.getvalue()


def metadata_json(ds: Dataset, *, has_pixel_data: bool, bulk_root: str) -> bytes:
    """A data set read up to its pixel data, as DICOM JSON with large binary values replaced by
    ``{bulk_root}<tag>`` URIs (and Pixel Data, when the object has it).

    Only top-level elements are addressable by the bulkdata route; a large binary value nested in
    a sequence gets a URI with its own tag (which answers 404).
    """

    def bulk(element: DataElement) -> str:
        return f"{bulk_root}{element.tag:08X}"

    document = ds.to_json_dict(bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=bulk)
    if has_pixel_data:
        meta = getattr(ds, "file_meta", None)
        syntax = UID(meta.get("TransferSyntaxUID", "") or "") if meta is not None else None
        compressed = bool(syntax and syntax.is_compressed)
        vr = "OB" if compressed or int(ds.get("BitsAllocated", 16) or 16) <= 8 else "OW"
        document["7FE00010"] = {"vr": vr, "BulkDataURI": f"{bulk_root}7FE00010"}
    return json.dumps(document, separators=(",", ":")).encode()


def bulk_value(data: bytes, path: str) -> bytes | None:
    """The value of a top-level binary element named by its 8-digit hex tag."""
    try:
        tag = int(path.strip("/").split("/")[0], 16)
    except ValueError:
        return None
    element = _dataset(data).get(tag)
    if element is None or element.VR not in BINARY_VRS or element.value is None:
        return None
    value = element.value
    return bytes(value) if isinstance(value, (bytes, bytearray)) else None


def _frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _check(numbers: list[int], count: int) -> None:
    bad = [n for n in numbers if n > count]
    if bad:
        raise FrameOutOfRange(f"Frame {bad[0]} does not exist: the instance has {count}.")


def frames(data: bytes, numbers: list[int], *, decoded: bool) -> list[bytes]:
    """Frames as stored (an encapsulated fragment set, or a slice of native pixel data), or
    decoded to native little-endian pixels."""
    ds = _dataset(data)
    if "PixelData" not in ds:
        raise FrameOutOfRange("This instance has no pixel data.")
    count = _frame_count(ds)
    _check(numbers, count)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if not decoded and syntax.is_encapsulated:
        stored = list(generate_frames(ds.PixelData, number_of_frames=count))
        return [stored[n - 1] for n in numbers]
    if not decoded and syntax.is_little_endian and not syntax.is_deflated:
        size = _native_frame_size(ds) or len(ds.PixelData) // count
        return [bytes(ds.PixelData[(n - 1) * size : n * size]) for n in numbers]
    pixels = _pixels(ds, syntax)
    if count == 1:
        pixels = pixels[np.newaxis, ...]
    little = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    return [little[n - 1].tobytes() for n in numbers]


def _native_frame_size(ds: Dataset) -> int:
    """Bytes per native frame (trailing padding is not part of the last frame)."""
    try:
        bits = int(ds.BitsAllocated)
        pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return 0
    return pixels * bits // 8 if bits % 8 == 0 else 0


def _pixels(ds: Dataset, syntax: UID) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - any codec failure
        raise CannotDecode(f"Pixel data in {syntax} cannot be decoded here.") from exc


@dataclass
class RenderOptions:
    viewport: tuple[int, int] | None = None
    window: tuple[float, float] | None = None
    quality: int = 90

    @classmethod
    def from_query(cls, query: Mapping[str, Any], *, thumbnail: bool) -> RenderOptions:
        options = cls(viewport=(128, 128) if thumbnail else None)
        try:
            if query.get("viewport"):
                vw, vh = (int(v) for v in str(query["viewport"]).split(",")[:2])
                if not (0 < vw <= 4096 and 0 < vh <= 4096):
                    raise ValueError
                options.viewport = (vw, vh)
        except ValueError:
            raise ValueError("viewport is vw,vh in pixels (1-4096).") from None
        try:
            if query.get("window"):
                parts = str(query["window"]).split(",")
                centre, width = float(parts[0]), float(parts[1])
                if len(parts) > 2 and parts[2].strip().lower() not in ("", "linear"):
                    raise ValueError
                if width <= 0:
                    raise ValueError
                options.window = (centre, width)
        except (ValueError, IndexError):
            raise ValueError("window is center,width[,linear] with a positive width.") from None
        try:
            if query.get("quality"):
                options.quality = int(query["quality"])
                if not 1 <= options.quality <= 100:
                    raise ValueError
        except ValueError:
            raise ValueError("quality is a whole number from 1 to 100.") from None
        return options


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def render(data: bytes, frame: int, options: RenderOptions, media_type: str) -> bytes:
    """One frame as a JPEG or PNG: rescaled, windowed, MONOCHROME1 inverted, fitted to the
    viewport with its aspect ratio kept."""
    ds = _dataset(data)
    if "PixelData" not in ds:
        raise FrameOutOfRange("This instance has no pixel data.")
    count = _frame_count(ds)
    _check([frame], count)
    pixels = _pixels(ds, UID(ds.file_meta.TransferSyntaxUID))
    if count > 1:
        pixels = pixels[frame - 1]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3:  # colour: scale to 8 bits if need be
        top = float(2 ** int(ds.get("BitsStored", 8) or 8) - 1)
        image = Image.fromarray(np.clip(pixels / top * 255, 0, 255).astype(np.uint8), "RGB")
    else:
        values = pixels.astype(np.float64)
        slope, intercept = _first(ds.get("RescaleSlope")), _first(ds.get("RescaleIntercept"))
        values = values * (slope if slope is not None else 1.0) + (intercept or 0.0)
        if options.window:
            centre, width = options.window
        else:
            centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))  # type: ignore[assignment]
            if centre is None or not width or width <= 0:
                low, high = float(values.min()), float(values.max())
                centre, width = (low + high) / 2, max(high - low, 1.0)
        low = centre - width / 2
        scaled = np.clip((values - low) / width * 255.0, 0, 255)
        if photometric == "MONOCHROME1":
            scaled = 255 - scaled
        image = Image.fromarray(scaled.astype(np.uint8), "L")
    if options.viewport:
        vw, vh = options.viewport
        ratio = min(vw / image.width, vh / image.height)
        size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if media_type == "image/png":
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=options.quality)
    return out.getvalue()
