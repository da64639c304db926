"""WADO-RS against the live server: instances, metadata, frames, bulk data, rendered images."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian

from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now

ELE = str(ExplicitVRLittleEndian)
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
MULTIPART_OCTETS = 'multipart/related; type="application/octet-stream"'


def parts(response: requests.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related body: (headers, payload)."""
    boundary = re.search(r"boundary=\"?([^\";]+)", response.headers["Content-Type"]).group(1)
    out = []
    for chunk in response.content.split(f"--{boundary}".encode())[1:-1]:
        head, _, body = chunk[2:].partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        out.append((headers, body[:-2]))
    return out


def _decodable(path: Path) -> np.ndarray | None:
    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        return None
    try:
        return ds.pixel_array
    except Exception:  # noqa: BLE001 - no codec here for this one: not part of the claim
        return None


@pytest.fixture
def decodable(pydicom_files) -> list[Path]:
    """pydicom's files whose pixel data pydicom decodes on this machine."""
    return [path for path in pydicom_files if _decodable(path) is not None]


def _session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _url(web: Any, slug: str, ds: pydicom.Dataset) -> str:
    return (
        f"{web.dicomweb(slug)}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def test_frames_decoded_equal_pydicom_for_every_transfer_syntax(web, people, token_for, decodable):
    session = _session(token_for(people.alice))
    syntaxes = set()
    for path in decodable:
        # One at a time: several of these files share a SOP Instance UID, and a newer copy
        # replaces the older one (docs/conformance.md), so each is checked while it is current.
        ingest_now(people.demo, [path.read_bytes()])
        ds = pydicom.dcmread(path)
        expected = ds.pixel_array
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        first = expected[0] if frames > 1 else expected
        response = session.get(
            f"{_url(web, 'demo-hospital', ds)}/frames/1",
            headers={"Accept": f"{MULTIPART_OCTETS}; transfer-syntax={ELE}"},
            timeout=60,
        )
        assert response.status_code == 200, (path.name, response.text[:200])
        [(headers, body)] = parts(response)
        assert headers["Content-Type"] == f"application/octet-stream; transfer-syntax={ELE}"
        syntax = ds.file_meta.TransferSyntaxUID
        if syntax.is_little_endian and not syntax.is_compressed and not syntax.is_deflated:
            # Native little endian is already the decoded form: the frame as stored (YBR_422
            # stays subsampled, two bytes a pixel; pixel_array would have converted it).
            size = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8
            if ds.PhotometricInterpretation == "YBR_FULL_422":
                size = size * 2 // 3
            assert body == ds.PixelData[:size], path.name
            if frames > 1 and ds.BitsAllocated % 8 == 0:
                # The last frame too: it is read at the offset recorded at ingest.
                last = session.get(
                    f"{_url(web, 'demo-hospital', ds)}/frames/{frames}",
                    headers={"Accept": f"{MULTIPART_OCTETS}; transfer-syntax={ELE}"},
                    timeout=60,
                )
                [(_, tail)] = parts(last)
                assert tail == ds.PixelData[(frames - 1) * size : frames * size], path.name
        else:
            little = first.astype(first.dtype.newbyteorder("<"), copy=False)
            assert body == little.tobytes(), path.name
        if syntax.is_encapsulated:
            # As stored: the encapsulated frame's bytes, labelled with the stored syntax.
            stored = session.get(
                f"{_url(web, 'demo-hospital', ds)}/frames/1",
                headers={"Accept": f"{MULTIPART_OCTETS}; transfer-syntax=*"},
                timeout=60,
            )
            [(headers, body)] = parts(stored)
            assert headers["Content-Type"] == f"application/octet-stream; transfer-syntax={syntax}"
            assert body == get_frame(ds.PixelData, 0, number_of_frames=frames), path.name
        syntaxes.add(str(ds.file_meta.TransferSyntaxUID))
    # The claim covers every syntax pydicom decodes here; make sure the big ones were in it.
    for uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80",
                "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1.99"):  # fmt: skip
        assert uid in syntaxes, uid


def test_instances_come_back_as_stored_or_decompressed_and_406_when_impossible(
    web, people, token_for
):
    jpeg2000 = Path(get_testdata_file("MR_small_jp2klossless.dcm"))
    ct = Path(get_testdata_file("CT_small.dcm"))
    ingest_now(people.demo, [jpeg2000.read_bytes(), ct.read_bytes()])
    session = _session(token_for(people.alice))
    ds = pydicom.dcmread(jpeg2000)
    url = _url(web, "demo-hospital", ds)
    as_stored = session.get(url, headers={"Accept": f"{MULTIPART_DICOM}; transfer-syntax=*"})
    [(headers, body)] = parts(as_stored)
    assert body == jpeg2000.read_bytes()
    assert headers["Content-Type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90"
    # Explicit VR Little Endian asked for: decompressed.
    client = DICOMwebClient(url=web.dicomweb("demo-hospital"), headers=dict(session.headers))
    got = client.retrieve_instance(
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        media_types=(("application/dicom", ELE),),
    )
    assert got.file_meta.TransferSyntaxUID == ELE and got.SOPInstanceUID == ds.SOPInstanceUID
    assert np.array_equal(got.pixel_array, ds.pixel_array)
    impossible = session.get(
        url, headers={"Accept": f"{MULTIPART_DICOM}; transfer-syntax=1.2.840.10008.1.2.4.80"}
    )
    assert impossible.status_code == 406
    assert "1.2.840.10008.1.2.4.90" in impossible.json()["error"]
    # Series level: every instance of the series, one part each.
    series = session.get(
        f"{web.dicomweb('demo-hospital')}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}",
        headers={"Accept": f"{MULTIPART_DICOM}; transfer-syntax=*"},
    )
    assert [body for _, body in parts(series)] == [jpeg2000.read_bytes()]


def test_metadata_is_the_stored_data_set_with_bulk_data_by_reference(web, people, token_for):
    path = Path(get_testdata_file("CT_small.dcm"))
    ingest_now(people.demo, [path.read_bytes()])
    session = _session(token_for(people.alice))
    ds = pydicom.dcmread(path)
    url = _url(web, "demo-hospital", ds)
    response = session.get(f"{url}/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/dicom+json"
    [document] = response.json()
    pixel_uri = document["7FE00010"]["BulkDataURI"]
    assert pixel_uri == f"{url}/bulkdata/7FE00010"

    def without_bulk(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if "BulkDataURI" not in v and "InlineBinary" not in v}

    expected = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda e: "x")
    assert without_bulk(document) == without_bulk(expected)
    bulk = session.get(pixel_uri)
    [(headers, body)] = parts(bulk)
    assert body == ds.PixelData and headers["Content-Type"] == "application/octet-stream"
    study = session.get(f"{web.dicomweb('demo-hospital')}/studies/{ds.StudyInstanceUID}/metadata")
    assert [d["00080018"]["Value"][0] for d in study.json()] == [ds.SOPInstanceUID]
    events = AuditEvent.objects.filter(action=AuditAction.WADO_RETRIEVE, actor_user=people.alice)
    assert [e.detail["kind"] for e in events.order_by("id")] == ["metadata", "bulkdata", "metadata"]
    assert all(e.study_instance_uid == ds.StudyInstanceUID for e in events)


def test_rendered_and_thumbnails_are_images_of_the_right_size(web, people, token_for):
    path = Path(get_testdata_file("CT_small.dcm"))  # 128 × 128
    ingest_now(people.demo, [path.read_bytes()])
    session = _session(token_for(people.alice))
    ds = pydicom.dcmread(path)
    url = _url(web, "demo-hospital", ds)
    study = f"{web.dicomweb('demo-hospital')}/studies/{ds.StudyInstanceUID}"
    cases = [
        (f"{url}/rendered", {}, "image/jpeg", (128, 128)),
        (f"{url}/rendered?viewport=64,32&window=40,400,linear&quality=50", {}, "image/jpeg", (32, 32)),
        (f"{url}/frames/1/rendered?viewport=300,300", {"Accept": "image/png"}, "image/png", (300, 300)),
        (f"{url}/thumbnail", {}, "image/jpeg", (128, 128)),
        (f"{study}/thumbnail?viewport=50,50", {}, "image/jpeg", (50, 50)),
        (f"{study}/series/{ds.SeriesInstanceUID}/rendered", {}, "image/jpeg", (128, 128)),
    ]  # fmt: skip
    for url_, headers, media, size in cases:
        response = session.get(url_, headers=headers)
        assert response.status_code == 200, (url_, response.text[:200])
        assert response.headers["Content-Type"] == media
        image = Image.open(io.BytesIO(response.content))
        assert image.size == size and image.format == media.split("/")[1].upper()
    bad = session.get(f"{url}/rendered?window=40,-5")
    assert bad.status_code == 400 and "window" in bad.json()["error"]
    assert session.get(f"{url}/frames/2/rendered").status_code == 404
    assert session.get(f"{url}/frames/2").status_code == 404
    assert session.get(f"{url}/rendered", headers={"Accept": "image/gif"}).status_code == 406
    # Every retrieve is audited with its kind, the UIDs and the outcome.
    events = AuditEvent.objects.filter(action=AuditAction.WADO_RETRIEVE, actor_user=people.alice)
    kinds = [(e.detail["kind"], e.outcome) for e in events.order_by("id")]
    assert kinds[:6] == [
        ("rendered", "success"), ("rendered", "success"), ("rendered", "success"),
        ("thumbnail", "success"), ("thumbnail", "success"), ("rendered", "success"),
    ]  # fmt: skip
    assert kinds[-2:] == [("rendered", "failure"), ("frames", "failure")]
    assert all(e.sop_instance_uid == ds.SOPInstanceUID for e in events)


def test_accept_is_parsed_tolerantly_and_a_study_comes_back_byte_identical(web, people, token_for):
    jpeg2000 = Path(get_testdata_file("MR_small_jp2klossless.dcm"))
    ingest_now(people.demo, [jpeg2000.read_bytes()])
    session = _session(token_for(people.alice))
    ds = pydicom.dcmread(jpeg2000)
    study = f"{web.dicomweb('demo-hospital')}/studies/{ds.StudyInstanceUID}"
    # Unquoted type, several ranges: the first cannot be produced, the second can.
    accept = (
        "multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80, "
        'multipart/related; type="application/dicom"; transfer-syntax=*'
    )
    response = session.get(study, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(MULTIPART_DICOM)
    assert [body for _, body in parts(response)] == [jpeg2000.read_bytes()]
    # */* and no transfer-syntax: Explicit VR Little Endian (PS3.18 8.7.3.5.2).
    for accept in ("*/*", "multipart/related; type=application/dicom"):
        [(headers, body)] = parts(session.get(study, headers={"Accept": accept}))
        assert headers["Content-Type"] == f"application/dicom; transfer-syntax={ELE}"
        assert pydicom.dcmread(io.BytesIO(body)).file_meta.TransferSyntaxUID == ELE
    # Frames by the compressed syntax's own media type.
    frame = session.get(
        f"{_url(web, 'demo-hospital', ds)}/frames/1",
        headers={"Accept": 'multipart/related; type="image/jp2"'},
    )
    [(headers, body)] = parts(frame)
    assert headers["Content-Type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    assert body == get_frame(ds.PixelData, 0)
    # Nothing acceptable for frames or instances: 406 naming what is available.
    refused = session.get(
        f"{_url(web, 'demo-hospital', ds)}/frames/1", headers={"Accept": "image/jls"}
    )
    assert refused.status_code == 406 and "1.2.840.10008.1.2.4.90" in refused.json()["error"]
    assert session.get(study, headers={"Accept": "text/html"}).status_code == 406
    # A malformed frame list is a 400 that says what is expected.
    bad = session.get(f"{_url(web, 'demo-hospital', ds)}/frames/1,x")
    assert bad.status_code == 400 and "Frame numbers" in bad.json()["error"]
    # Another hospital's reader does not see the study at all.
    other = _session(token_for(people.charlie))
    missing = other.get(f"{web.dicomweb('second-hospital')}/studies/{ds.StudyInstanceUID}")
    assert missing.status_code == 404 and ds.StudyInstanceUID not in missing.text


def test_large_objects_are_streamed_in_chunks_byte_identical(people, token_for, monkeypatch):
    from django.test import Client

    from studies.dicomweb import wado

    path = Path(get_testdata_file("CT_small.dcm"))
    ingest_now(people.demo, [path.read_bytes()])
    ds = pydicom.dcmread(path)
    # Every object counts as large here, read from storage 1 KiB at a time as it is sent.
    monkeypatch.setattr(wado, "WHOLE_READ_LIMIT", 0)
    monkeypatch.setattr(wado, "STREAM_CHUNK", 1024)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(people.alice)}", HTTP_HOST="127.0.0.1")
    response = client.get(
        f"/t/demo-hospital/dicomweb/studies/{ds.StudyInstanceUID}",
        HTTP_ACCEPT=f"{MULTIPART_DICOM}; transfer-syntax=*",
    )
    chunks = list(response.streaming_content)
    assert len(chunks) > path.stat().st_size // 1024
    body = b"".join(chunks)
    boundary = response["Content-Type"].rsplit("boundary=", 1)[1]
    [part] = body.split(f"--{boundary}".encode())[1:-1]
    head, _, payload = part[2:].partition(b"\r\n\r\n")
    assert payload[:-2] == path.read_bytes()
    assert f"Content-Length: {path.stat().st_size}".encode() in head
