"""Find an object's pixel data without reading it, and decode chosen frames with pydicom.

pydicom decodes every transfer syntax its installed plugins handle (pylibjpeg with openjpeg and
libjpeg, pyjpegls, pylibjpeg-rle): JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K,
RLE, deflate and big endian. Decoding reads the object through a seekable file, so from S3 only
the header and the frames asked for are fetched (for encapsulated data with an offset table).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.pixels import get_decoder, iter_pixels
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, ExplicitVRLittleEndian

from .errors import CannotDecode, FrameOutOfRange

PIXEL_DATA = Tag(0x7FE0, 0x0010)
UNDEFINED_LENGTH = 0xFFFFFFFF


def native_frame_size(
    rows: int, columns: int, samples: int, bits_allocated: int, photometric: str
) -> int:
    """Bytes per native frame; 0 when frames do not start on byte boundaries (1-bit data).
    YBR_FULL_422 stores two luminance and one pair of chrominance samples per two pixels."""
    if bits_allocated % 8:
        return 0
    size = rows * columns * samples * bits_allocated // 8
    return size * 2 // 3 if photometric == "YBR_FULL_422" and samples == 3 else size


@dataclass
class PixelLocation:
    """An object's header (everything before Pixel Data) and where its pixel data value is."""

    dataset: Dataset
    syntax: UID
    offset: int  # of the Pixel Data value in the stored object; -1 when unknown (deflated)
    length: int  # the value's length field; UNDEFINED_LENGTH when encapsulated
    frame_count: int

    @property
    def encapsulated(self) -> bool:
        return self.length == UNDEFINED_LENGTH

    @property
    def native_little_endian(self) -> bool:
        return not self.syntax.is_encapsulated and self.syntax in (
            ExplicitVRLittleEndian,
            "1.2.840.10008.1.2",  # Implicit VR Little Endian
        )

    def frame_size(self) -> int:
        """Bytes per native frame; 0 when not a whole number of bytes (1-bit data)."""
        ds = self.dataset
        try:
            return native_frame_size(
                int(ds.Rows),
                int(ds.Columns),
                int(ds.get("SamplesPerPixel", 1) or 1),
                int(ds.BitsAllocated),
                str(ds.get("PhotometricInterpretation", "") or ""),
            )
        except (AttributeError, TypeError, ValueError):
            return 0

    def check(self, numbers: list[int]) -> None:
        if self.offset < 0 and self.length == 0:
            raise FrameOutOfRange("This instance has no pixel data.")
        bad = [n for n in numbers if not 1 <= n <= self.frame_count]
        if bad:
            raise FrameOutOfRange(
                f"Frame {bad[0]} does not exist: the instance has {self.frame_count}."
            )


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def locate(fp: IO[bytes]) -> PixelLocation:
    """Read a Part 10 object up to its Pixel Data; raise FrameOutOfRange when it has none."""
    found: dict[str, int] = {}

    def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
        if tag == PIXEL_DATA:
            found["offset"], found["length"] = fp.tell(), length
            return True
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings may quote values
        ds = read_partial(fp, stop_when=stop, force=True)  # type: ignore[arg-type]
    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", "") or "")) if meta is not None else UID("")
    if syntax.is_deflated:
        # The stream was inflated on the fly: offsets in it mean nothing in the stored object.
        fp.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = dcmread(fp, force=True)
        if "PixelData" not in full:
            raise FrameOutOfRange("This instance has no pixel data.")
        return PixelLocation(full, syntax, -1, len(full.PixelData), frame_count(full))
    if "offset" not in found:
        raise FrameOutOfRange("This instance has no pixel data.")
    return PixelLocation(ds, syntax, found["offset"], found["length"], frame_count(ds))


# JPEG-LS: pydicom tries pylibjpeg (libjpeg) first, which takes 17 ms on a 512² CT slice where
# CharLS (pyjpegls) takes 5 ms; both decode exactly, so CharLS is asked for when installed.
_PREFERRED_PLUGIN = {
    "1.2.840.10008.1.2.4.80": "pyjpegls",
    "1.2.840.10008.1.2.4.81": "pyjpegls",
}


def _plugin_for(syntax: str) -> dict[str, str]:
    plugin = _PREFERRED_PLUGIN.get(syntax)
    if plugin is None:
        return {}
    try:
        available = get_decoder(UID(syntax)).available_plugins
    except (NotImplementedError, ValueError):
        return {}
    return {"decoding_plugin": plugin} if plugin in available else {}


def decoded_frames(
    fp: IO[bytes], numbers: list[int], dataset: Dataset | None = None, *, syntax: str = ""
) -> list[np.ndarray]:
    """Frames (1-based) decoded as pydicom's ``pixel_array`` gives them (colour as RGB).

    Decoded from the file frame by frame when pydicom can (only those frames are read); from the
    whole data set otherwise: deflated objects (``dataset`` is the one ``locate`` read), and
    odd encapsulations that pydicom's data set path tolerates but its frame reader does not.
    """
    wanted = sorted(set(numbers))
    arrays: dict[int, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dataset is None:
            fp.seek(0)
            try:
                indices = [n - 1 for n in wanted]
                frames = iter_pixels(fp, indices=indices, **_plugin_for(syntax))  # type: ignore[arg-type]
                arrays = dict(zip(wanted, frames, strict=True))
            except Exception:  # noqa: BLE001 - retried below from the whole data set
                arrays = {}
        if not arrays:
            try:
                if dataset is None:
                    fp.seek(0)
                    dataset = dcmread(fp, force=True)
                everything = dataset.pixel_array
                if frame_count(dataset) == 1:
                    everything = everything[np.newaxis, ...]
                arrays = {n: everything[n - 1] for n in wanted}
            except Exception as exc:  # noqa: BLE001 - any codec failure, whatever the plugin
                raise CannotDecode("The pixel data cannot be decoded here.") from exc
    return [arrays[n] for n in numbers]


def little_endian_bytes(pixels: np.ndarray) -> bytes:
    return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


def first_number(value: Any) -> float | None:
    """The first value of a possibly multi-valued numeric attribute, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if not value:
            return None
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
