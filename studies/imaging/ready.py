"""Viewer-ready frames: the frames of a natively stored instance compressed losslessly, made once
on the ``derive`` queue so that a viewer on a home link downloads a third of the bytes.

JPEG-LS lossless (CharLS through ``jpeg_ls``): no HTJ2K encoder is usable from Python here
(pydicom 3.0.2 has none, openjpeg 2.6 only decodes HT), and JPEG-LS encodes and decodes faster
than JPEG 2000 at a similar ratio; the viewer decodes it in its CharLS WebAssembly codec.

Lossless always: each frame is decoded back and compared with pydicom's ``pixel_array`` of the
original, and an instance with one frame that does not round-trip gets no ready frames at all.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import jpeg_ls
import numpy as np
import pydicom
from pydicom.uid import JPEGLSLossless

from .errors import FrameOutOfRange
from .frames import NativeLayout

READY_SYNTAX = str(JPEGLSLossless)
READY_MEDIA_TYPE = "image/jls"
_MONOCHROME = {"MONOCHROME1", "MONOCHROME2"}
# Larger objects (long cine loops) are left native: encoding reads the whole object and its
# pixel array into the derive worker's memory.
MAX_OBJECT_SIZE = 512 * 1024 * 1024


@dataclass(frozen=True)
class ReadyFrames:
    syntax: str
    data: bytes  # the frames' codestreams, concatenated
    offsets: list[int]  # frame N is data[offsets[N-1]:offsets[N]]


def _layout_fits(
    photometric: str, samples: int, bits_allocated: int, bits_stored: int, planar: int = 0
) -> bool:
    """A pixel layout JPEG-LS takes losslessly and viewers decode to the same sample width:
    monochrome 8 or 16 bits, or RGB 8 bits interleaved by pixel. 16-bit data with 8 or fewer
    bits stored would come back as 8-bit samples, which a viewer reads differently: skipped."""
    if not 0 < bits_stored <= bits_allocated:
        return False
    if photometric in _MONOCHROME and samples == 1:
        return bits_allocated == 8 or (bits_allocated == 16 and bits_stored > 8)
    return photometric == "RGB" and samples == 3 and bits_allocated == 8 and planar == 0


def is_candidate(instance: Any) -> bool:
    """From the indexed fields alone: worth reading the instance to make ready frames."""
    if instance.size > MAX_OBJECT_SIZE or NativeLayout.of(instance) is None:
        return False
    return _layout_fits(
        instance.photometric_interpretation,
        instance.samples_per_pixel or 1,
        instance.bits_allocated or 0,
        instance.bits_stored or 0,
    )


def _precision(frame: np.ndarray, signed: bool, bits_allocated: int, bits_stored: int) -> int:
    """The JPEG-LS sample precision. Signed samples are encoded as their full two's complement
    pattern (pixel_array has already sign-extended them from Bits Stored): a viewer that
    reinterprets the decoded words as signed, with or without sign-extending from Bits Stored
    again, then shows pydicom's values. Unsigned samples use Bits Stored when they fit in it."""
    if signed or int(frame.max(initial=0)) >= 1 << bits_stored:
        return bits_allocated
    return bits_stored


def encode(data: bytes) -> ReadyFrames | None:
    """Ready frames of a Part 10 object stored natively, or None when its layout is not one we
    take or a frame does not decode back to the original pixels."""
    ds = pydicom.dcmread(io.BytesIO(data))
    bits_allocated = int(ds.get("BitsAllocated", 0))
    bits_stored = int(ds.get("BitsStored", bits_allocated) or bits_allocated)
    samples = int(ds.get("SamplesPerPixel", 1))
    if not _layout_fits(
        str(ds.get("PhotometricInterpretation", "")),
        samples,
        bits_allocated,
        bits_stored,
        int(ds.get("PlanarConfiguration", 0) or 0),
    ):
        return None
    pixels = ds.pixel_array
    frame_count = int(ds.get("NumberOfFrames", 1) or 1)
    frames = pixels if frame_count > 1 else pixels[np.newaxis]
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    size = 1 if bits_allocated == 8 else 2
    # Little-endian words, as CharLS takes them and as the viewer reads its output (pixel_array
    # of a big-endian object is big-endian).
    unsigned_type, value_type = np.dtype(f"<u{size}"), np.dtype(f"<{'i' if signed else 'u'}{size}")
    rows, columns = int(ds.Rows), int(ds.Columns)
    chunks: list[bytes] = []
    offsets = [0]
    for frame in frames:
        words = np.ascontiguousarray(frame, dtype=value_type).view(unsigned_type)
        precision = _precision(words, signed, bits_allocated, bits_stored)
        try:
            encoded = bytes(
                jpeg_ls.encode_buffer(
                    words.tobytes(),
                    rows,
                    columns,
                    samples,
                    precision,
                    interleave_mode=2 if samples > 1 else 0,
                )
            )
        except RuntimeError:
            # CharLS refuses some tiny or incompressible frames ("destination buffer is too
            # small"): nothing to gain from compressing them anyway.
            return None
        decoded, info = jpeg_ls.decode_buffer(encoded)
        # The viewer reads 8-bit samples for a precision up to 8 and 16-bit words above, signed
        # when Pixel Representation is 1: compare those values with the original's.
        width = 1 if info["bits_per_sample"] <= 8 else 2
        if width != size or not np.array_equal(
            np.frombuffer(decoded, dtype=value_type).reshape(frame.shape), frame
        ):
            return None
        chunks.append(encoded)
        offsets.append(offsets[-1] + len(encoded))
    return ReadyFrames(READY_SYNTAX, b"".join(chunks), offsets)


def attempted(instance: Any) -> bool:
    """Ready frames were made (or found impossible) for the object the instance is stored as."""
    return bool(instance.ready_sha256) and instance.ready_sha256 == instance.sha256


def current(instance: Any) -> bool:
    """The instance has ready frames made from the object it is stored as now."""
    return bool(
        attempted(instance)
        and instance.ready_key
        and instance.ready_syntax
        and len(instance.ready_offsets or ()) >= 2
    )


def read(store: Any, instance: Any, numbers: list[int]) -> list[bytes]:
    """Ready frames ``numbers`` (1-based) of a ``current`` instance, one ranged read each.
    Raises FrameOutOfRange."""
    offsets: list[int] = instance.ready_offsets
    count = len(offsets) - 1
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise FrameOutOfRange(f"Frame {bad[0]} does not exist: the instance has {count}.")
    return [
        store.read_range(instance.ready_key, offsets[n - 1], offsets[n] - offsets[n - 1])
        for n in numbers
    ]
