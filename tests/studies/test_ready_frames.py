"""Viewer-ready frames: made at ingest (queue ``derive``), sent when the client accepts them, with
HTTP caching; DICOM JSON gzipped when asked."""

from __future__ import annotations

import copy
import gzip
import io
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import jpeg_ls
import numpy as np
import pydicom
import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, generate_uid

from studies import derive, imaging
from studies.dicom import synthetic
from studies.models import Instance, Series, SeriesDerived
from studies.storage import object_store
from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now
from tests.studies.test_wado import parts

ELE = str(ExplicitVRLittleEndian)
JLS = str(JPEGLSLossless)
# What OHIF (cornerstone dicom-image-loader) sends for each frame.
OHIF_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
ELE_ACCEPT = f'multipart/related; type="application/octet-stream"; transfer-syntax={ELE}'


@pytest.fixture
def scheduled(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Rebuilds are recorded instead of sent: the test builds when it chooses."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(derive, "schedule", lambda **kw: calls.append(kw))
    return calls


def _new_uids(ds: Dataset, *, study: str, series: str) -> Dataset:
    ds = copy.deepcopy(ds)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


def _part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ct_slices(count: int, seed: int = 7) -> list[Dataset]:
    """Synthetic CT: unsigned, 16 bits allocated, 12 stored."""
    spec = synthetic.simple_spec(seed=seed, slices=count, rows=64, columns=64)
    return list(synthetic.iter_study(spec))


def _layouts() -> list[Dataset]:
    """One series of natively stored instances in every layout ready frames cover."""
    study, series = generate_uid(), generate_uid()
    ct = [_new_uids(ds, study=study, series=series) for ds in _ct_slices(2)]
    # Signed 16/16 (pydicom's CT_small).
    signed = _new_uids(
        pydicom.dcmread(get_testdata_file("CT_small.dcm")), study=study, series=series
    )
    # Signed with 12 of 16 bits stored, negative values included.
    signed12 = copy.deepcopy(signed)
    signed12.SOPInstanceUID = signed12.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    values = np.clip(signed.pixel_array.astype(np.int32) - 1500, -2048, 2047).astype("<i2")
    signed12.BitsStored, signed12.HighBit, signed12.PixelData = 12, 11, values.tobytes()
    # 8-bit monochrome, three frames.
    eight = copy.deepcopy(ct[0])
    eight.SOPInstanceUID = eight.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    frames = np.stack([(s.pixel_array >> 4).astype(np.uint8) for s in _ct_slices(3, seed=9)])
    eight.BitsAllocated, eight.BitsStored, eight.HighBit = 8, 8, 7
    eight.NumberOfFrames, eight.PixelData = 3, frames.tobytes()
    # 8-bit RGB, pixel-interleaved (pydicom's tiny RGB file, given a 64 x 64 image).
    rgb = _new_uids(
        pydicom.dcmread(get_testdata_file("SC_rgb_small_odd.dcm")), study=study, series=series
    )
    grey = (ct[0].pixel_array >> 4).astype(np.uint8)
    rgb.Rows, rgb.Columns = grey.shape
    rgb.PixelData = np.stack([grey, grey[::-1], 255 - grey], axis=-1).tobytes()
    # Explicit VR Big Endian (retired, still received): pixel_array is big-endian.
    big = _new_uids(
        pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm")), study=study, series=series
    )
    everything = [*ct, signed, signed12, eight, rgb, big]
    for n, ds in enumerate(everything, start=1):
        ds.InstanceNumber = n
    return everything


def _build(series: Series) -> str:
    row = SeriesDerived.objects.get(series=series)
    later = row.changed_at + timedelta(seconds=3600)
    return derive.build_series(tenant_id=series.tenant_id, series_id=series.pk, now=later)


def _build_and_close(series: Series) -> str:
    try:
        return _build(series)
    finally:
        connection.close()


def _series_of(people: Any, ds: Dataset) -> Series:
    return Series.objects.get(tenant=people.demo, series_instance_uid=ds.SeriesInstanceUID)


def _session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _url(web: Any, ds: Dataset, slug: str = "demo-hospital") -> str:
    return (
        f"{web.dicomweb(slug)}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _frames(ds: Dataset) -> np.ndarray:
    pixels = ds.pixel_array
    return pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[np.newaxis]


def _as_viewer_decodes(ds: Dataset, codestream: bytes) -> np.ndarray:
    """The frame as OHIF 3.13's dicom-image-loader gives it: CharLS's output read as 8- or
    16-bit words (signed when Pixel Representation is 1), then, for signed data, sign-extended
    from Bits Stored (``(v << 32 - BitsStored) >> 32 - BitsStored``)."""
    decoded, info = jpeg_ls.decode_buffer(codestream)
    width = 1 if info["bits_per_sample"] <= 8 else 2
    signed = ds.PixelRepresentation == 1
    pixels = np.frombuffer(bytes(decoded), dtype=f"<{'i' if signed else 'u'}{width}")
    if signed:
        shift = 32 - ds.BitsStored
        pixels = ((pixels.astype(np.int32) << shift) >> shift).astype(pixels.dtype)
    shape = (ds.Rows, ds.Columns) + ((ds.SamplesPerPixel,) if ds.SamplesPerPixel > 1 else ())
    return pixels.reshape(shape)


def _as_dicom_decodes(ds: Dataset, codestreams: list[bytes]) -> np.ndarray:
    """The frames as a DICOM toolkit (pydicom, Bits Stored applied) decodes them."""
    copy_ = copy.deepcopy(ds)
    copy_.file_meta.TransferSyntaxUID = JLS
    copy_.PixelData = encapsulate(codestreams)
    copy_["PixelData"].VR = "OB"
    copy_.NumberOfFrames = len(codestreams)
    pixels = copy_.pixel_array
    return pixels if len(codestreams) > 1 else pixels[np.newaxis]


def test_any_syntax_gets_lossless_ready_frames_and_ele_the_native_bytes(
    web, people, token_for, scheduled
):
    datasets = _layouts()
    ingest_now(people.demo, [_part10(ds) for ds in datasets])
    assert _build(_series_of(people, datasets[0])) == "built"
    session = _session(token_for(people.alice))
    for ds in datasets:
        expected = _frames(ds)
        numbers = list(range(1, len(expected) + 1))
        url = f"{_url(web, ds)}/frames/{','.join(map(str, numbers))}"
        response = session.get(url, headers={"Accept": OHIF_ACCEPT})
        assert response.status_code == 200, response.text[:200]
        got = parts(response)
        assert [h["Content-Type"] for h, _ in got] == [  # noqa
            f"application/octet-stream; transfer-syntax={JLS}"
        ] * len(numbers), ds.InstanceNumber
        codestreams = [body for _, body in got]
        for n, codestream in enumerate(codestreams):
            assert np.array_equal(_as_viewer_decodes(ds, codestream), expected[n]), (
                ds.InstanceNumber
            )
        assert np.array_equal(_as_dicom_decodes(ds, codestreams), expected), ds.InstanceNumber
        # Explicit VR Little Endian asked for: native pixels, as before (little endian: the
        # stored bytes; big endian: swapped).
        native = session.get(url, headers={"Accept": ELE_ACCEPT})
        assert [body for _, body in parts(native)] == [
            frame.astype(frame.dtype.newbyteorder("<")).tobytes() for frame in expected
        ]
        if ds.file_meta.TransferSyntaxUID == ELE:
            assert b"".join(body for _, body in parts(native)) == ds.PixelData
        assert (
            parts(native)[0][0]["Content-Type"]
            == f"application/octet-stream; transfer-syntax={ELE}"
        )
    # One frame of the multi-frame instance alone, by the syntax's own media type or UID.
    eight = datasets[4]
    for accept in (
        "image/jls",
        f"multipart/related; type=application/octet-stream; transfer-syntax={JLS}",
    ):
        [(headers, body)] = parts(
            session.get(f"{_url(web, eight)}/frames/2", headers={"Accept": accept})
        )
        assert headers["Content-Type"].endswith(f"transfer-syntax={JLS}")
        assert np.array_equal(_as_viewer_decodes(eight, body), _frames(eight)[1])
    assert (
        session.get(f"{_url(web, eight)}/frames/4", headers={"Accept": OHIF_ACCEPT}).status_code
        == 404
    )
    # What the viewer downloads for the CT slice: a fraction of the native bytes.
    [(_, ct_frame)] = parts(
        session.get(f"{_url(web, datasets[0])}/frames/1", headers={"Accept": OHIF_ACCEPT})
    )
    assert len(ct_frame) < len(datasets[0].PixelData) / 2


def test_a_rebuilt_series_does_not_encode_current_instances_again(people, scheduled, monkeypatch):
    slices = _ct_slices(3, seed=11)
    ingest_now(people.demo, [_part10(ds) for ds in slices[:2]])
    series = _series_of(people, slices[0])
    assert _build(series) == "built"
    first = {i.pk: i.ready_key for i in Instance.objects.filter(series=series)}
    assert all(first.values())
    encoded: list[int] = []
    real = imaging.ready.encode
    monkeypatch.setattr(imaging.ready, "encode", lambda data: encoded.append(1) or real(data))
    ingest_now(people.demo, [_part10(slices[2])])
    assert _build(series) == "built"
    assert len(encoded) == 1  # the new slice only
    after = {i.pk: i.ready_key for i in Instance.objects.filter(series=series)}
    assert {k: after[k] for k in first} == first and all(after.values())


def test_frames_carry_a_strong_etag_and_a_matching_request_is_a_304_still_audited(
    web, people, token_for, scheduled
):
    [ds] = _ct_slices(1, seed=13)
    ingest_now(people.demo, [_part10(ds)])
    assert _build(_series_of(people, ds)) == "built"
    session = _session(token_for(people.alice))
    url = f"{_url(web, ds)}/frames/1"
    first = session.get(url, headers={"Accept": OHIF_ACCEPT})
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert "Accept" in first.headers["Vary"]
    audited = AuditEvent.objects.filter(
        action=AuditAction.WADO_RETRIEVE, sop_instance_uid=ds.SOPInstanceUID
    )
    before = audited.count()
    again = session.get(url, headers={"Accept": OHIF_ACCEPT, "If-None-Match": etag})
    assert again.status_code == 304 and not again.content and again.headers["ETag"] == etag
    assert audited.count() == before + 1
    # Another representation has another tag: the ready tag does not validate native bytes.
    native = session.get(url, headers={"Accept": ELE_ACCEPT, "If-None-Match": etag})
    assert native.status_code == 200 and native.headers["ETag"] != etag
    assert parts(native)[0][1] == ds.PixelData
    # Another hospital's user gets a 404 with or without the tag, at either hospital's URL.
    other = _session(token_for(people.charlie))
    for slug in ("demo-hospital", "second-hospital"):
        missing = other.get(
            f"{_url(web, ds, slug)}/frames/1",
            headers={"Accept": OHIF_ACCEPT, "If-None-Match": etag},
        )
        assert missing.status_code == 404 and "ETag" not in missing.headers


def test_a_resend_with_other_pixels_never_gets_the_old_frames(web, people, token_for, scheduled):
    [ds] = _ct_slices(1, seed=17)
    ingest_now(people.demo, [_part10(ds)])
    series = _series_of(people, ds)
    assert _build(series) == "built"
    old_key = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID).ready_key
    session = _session(token_for(people.alice))
    url = f"{_url(web, ds)}/frames/1"
    old = session.get(url, headers={"Accept": OHIF_ACCEPT})
    [(_, old_frame)] = parts(old)

    changed = copy.deepcopy(ds)
    pixels = (changed.pixel_array[::-1] ^ 0x0F0).astype("<u2")  # other pixels, same layout
    changed.PixelData = pixels.tobytes()
    ingest_now(people.demo, [_part10(changed)])
    # Before the rebuild: the new native pixels, not the old ready frame, and not a 304.
    response = session.get(
        url, headers={"Accept": OHIF_ACCEPT, "If-None-Match": old.headers["ETag"]}
    )
    assert response.status_code == 200
    [(headers, body)] = parts(response)
    assert headers["Content-Type"] == f"application/octet-stream; transfer-syntax={ELE}"
    assert body == changed.PixelData
    # After it: ready frames of the new pixels; the old object is gone.
    assert _build(series) == "built"
    [(headers, body)] = parts(session.get(url, headers={"Accept": OHIF_ACCEPT}))
    assert headers["Content-Type"].endswith(JLS) and body != old_frame
    assert np.array_equal(_as_viewer_decodes(changed, body), changed.pixel_array)
    assert not object_store().exists(old_key)


def test_frame_requests_cost_the_same_queries_ready_or_native(people, token_for, scheduled):
    [ds] = _ct_slices(1, seed=19)
    ingest_now(people.demo, [_part10(ds)])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(people.alice)}", HTTP_HOST="127.0.0.1")
    url = (
        f"/t/demo-hospital/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1"
    )
    b"".join(client.get(url, HTTP_ACCEPT=OHIF_ACCEPT).streaming_content)  # token use noted once

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, HTTP_ACCEPT=OHIF_ACCEPT)
            b"".join(response.streaming_content)
        return len(queries), response["Content-Type"]

    native, _ = count()
    assert _build(_series_of(people, ds)) == "built"
    ready, content_type = count()
    assert ready == native
    assert Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID).ready_syntax == JLS


def test_dicom_json_is_gzipped_when_asked_and_html_pages_never(web, people, token_for, scheduled):
    slices = _ct_slices(3, seed=23)
    ingest_now(people.demo, [_part10(ds) for ds in slices])
    session = _session(token_for(people.alice))
    base = web.dicomweb("demo-hospital")
    for url in (
        f"{base}/studies?StudyInstanceUID={slices[0].StudyInstanceUID}",
        f"{base}/studies/{slices[0].StudyInstanceUID}/series/{slices[0].SeriesInstanceUID}/metadata",
    ):
        raw = session.get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
        assert raw.headers["Content-Encoding"] == "gzip"
        body = raw.raw.read()
        assert raw.headers["Content-Type"].startswith("application/dicom+json")
        plain = session.get(url, headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers
        assert gzip.decompress(body) == plain.content and len(body) < len(plain.content)
    # The login page carries a CSRF token: never compressed.
    page = requests.get(f"{web.url}/login/", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and "csrfmiddlewaretoken" in page.text
    assert "Content-Encoding" not in page.headers


# A checksum of the viewport canvas's pixels, computed in the page.
CANVAS_SUM = """() => {
  const c = [...document.querySelectorAll('canvas.cornerstone-canvas')]
    .filter(c => c.width > 64 && c.height > 64)[0];
  if (!c) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0;
  for (let i = 0; i < d.length; i++) sum = (sum * 31 + d[i]) >>> 0;
  return [c.width, c.height, sum];
}"""


def test_the_viewer_shows_the_same_pixels_from_ready_frames_as_from_native_ones(
    web, people, scheduled
):
    from tests.browser import chromium, logged_in
    from tests.viewer.test_viewer_browser import CANVAS_STATS

    spec = synthetic.simple_spec(seed=606, slices=12, rows=256, columns=256, patient_id="RDY-1")
    slices = list(synthetic.iter_study(spec))
    ingest_now(people.demo, [synthetic.encode_part10(ds) for ds in slices])
    series = _series_of(people, slices[0])
    launch = f"{web.url}/viewer/viewer?StudyInstanceUIDs={synthetic.study_uid(spec)}"
    with chromium() as browser:
        page = logged_in(browser, web.url, "alice", people.password)
        syntaxes: list[str] = []

        def seen(response: Any) -> None:
            if "/frames/" in response.url and response.status == 200:
                found = re.search(rb"transfer-syntax=([0-9.]+)", response.body()[:400])
                syntaxes.append(found.group(1).decode() if found else "")

        page.on("response", seen)

        def shown() -> list[int]:
            page.goto(launch)
            page.wait_for_function(
                f"() => {{ const s = ({CANVAS_STATS})(); return s && s.mid > 0.05; }}",
                timeout=120_000,
                polling=500,
            )
            # Settled: the same checksum twice in a row.
            previous: list[int] | None = None
            for _ in range(40):
                page.wait_for_timeout(500)
                current = page.evaluate(CANVAS_SUM)
                if current == previous:
                    return current
                previous = current
            raise AssertionError("the viewport kept changing")

        native = shown()
        assert syntaxes and set(syntaxes) == {ELE}, syntaxes
        # In another thread: Playwright's event loop runs in this one, where Django refuses ORM
        # calls.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(_build_and_close, series).result() == "built"
        syntaxes.clear()
        ready = shown()
        assert syntaxes and set(syntaxes) == {JLS}, syntaxes
        assert ready == native
