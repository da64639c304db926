"""Unit tests of studies.imaging: frames read by range, decoding, transcoding, rendering."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian

from studies import imaging


class RangeStore:
    """An object store holding one object in memory that records every ranged read."""

    def __init__(self, data: bytes):
        self.data = data
        self.reads: list[tuple[int, int]] = []

    def read_range(self, key: str, start: int, length: int) -> bytes:
        self.reads.append((start, length))
        return self.data[start : start + length]


def _file(name: str) -> tuple[bytes, pydicom.Dataset]:
    path = Path(get_testdata_file(name))
    return path.read_bytes(), pydicom.dcmread(path)


def test_a_native_frame_is_one_ranged_read_of_its_own_bytes():
    data, ds = _file("rtdose.dcm")  # 15 frames, 10 × 10, 32 bits, implicit VR LE
    store = RangeStore(data)
    frames = imaging.read_frames(store, "k", len(data), [3], decoded=False)
    size = 10 * 10 * 4
    assert frames.syntax == ExplicitVRLittleEndian
    assert frames.payloads == [ds.PixelData[2 * size : 3 * size]]
    # One read for the header (a 64 KiB block), one for exactly the frame.
    [_, (start, length)] = store.reads
    assert length == size and data[start : start + length] == frames.payloads[0]


def test_an_encapsulated_frame_is_the_stored_fragment_and_decodes_like_pydicom():
    data, ds = _file("SC_rgb_rle_16bit_2frame.dcm")
    store = RangeStore(data)
    raw = imaging.read_frames(store, "k", len(data), [2], decoded=False)
    assert raw.syntax == ds.file_meta.TransferSyntaxUID
    assert raw.payloads == [get_frame(ds.PixelData, 1, number_of_frames=2)]
    decoded = imaging.read_frames(RangeStore(data), "k", len(data), [2, 1], decoded=True)
    expected = ds.pixel_array.astype("<u2")
    assert decoded.syntax == ExplicitVRLittleEndian
    assert decoded.payloads == [expected[1].tobytes(), expected[0].tobytes()]


def test_frames_out_of_range_and_objects_without_pixels_are_refused():
    data, _ = _file("CT_small.dcm")
    with pytest.raises(imaging.FrameOutOfRange, match="Frame 2 does not exist"):
        imaging.read_frames(RangeStore(data), "k", len(data), [2], decoded=True)
    no_pixels, _ = _file("rtplan.dcm")
    with pytest.raises(imaging.FrameOutOfRange, match="no pixel data"):
        imaging.read_frames(RangeStore(no_pixels), "k", len(no_pixels), [1], decoded=True)


def test_big_endian_and_compressed_objects_transcode_to_explicit_little_endian():
    for name in ("MR_small_bigendian.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_rle.dcm"):
        data, ds = _file(name)
        out = pydicom.dcmread(io.BytesIO(imaging.to_explicit_le(data)))
        assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert out.SOPInstanceUID == ds.SOPInstanceUID
        assert np.array_equal(out.pixel_array, ds.pixel_array), name


def test_rendering_windows_inverts_and_fits_the_viewport():
    data, ds = _file("CT_small.dcm")
    options = imaging.RenderOptions.from_query(
        {"viewport": "64,32", "window": "40,400,linear", "quality": "80"}, thumbnail=False
    )
    image = Image.open(io.BytesIO(imaging.render(io.BytesIO(data), 1, options, "image/jpeg")))
    assert image.format == "JPEG" and image.size == (32, 32)
    # A window far below the data makes everything white; MONOCHROME1 would make it black.
    white = imaging.RenderOptions(window=(-5000.0, 10.0))
    png = Image.open(io.BytesIO(imaging.render(io.BytesIO(data), 1, white, "image/png")))
    assert png.format == "PNG" and np.asarray(png).min() == 255
    ds.PhotometricInterpretation = "MONOCHROME1"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    buffer.seek(0)
    inverted = Image.open(io.BytesIO(imaging.render(buffer, 1, white, "image/png")))
    assert np.asarray(inverted).max() == 0
    for bad in ({"viewport": "0,10"}, {"window": "1,0"}, {"quality": "101"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            imaging.RenderOptions.from_query(bad, thumbnail=True)


def test_metadata_uris_are_relative_until_sent():
    data, _ = _file("CT_small.dcm")
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    document = imaging.metadata_json(ds, has_pixel_data=True, bulk_root="studies/1/bulkdata/")
    assert b'"BulkDataURI":"studies/1/bulkdata/7FE00010"' in document
    sent = imaging.absolute(document, "https://pacs.example/t/x/dicomweb")
    assert b'"BulkDataURI":"https://pacs.example/t/x/dicomweb/studies/1/bulkdata/7FE00010"' in sent
