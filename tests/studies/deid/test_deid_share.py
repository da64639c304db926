"""A de-identified share link over HTTP: a walk through every DICOMweb route of the link, the
viewer's launch and the zip, in which no byte carries the patient's identity or an original UID;
mapped UIDs consistent across QIDO, metadata and instances; burned-in images left out or flagged
as the policy says."""

from __future__ import annotations

import email
import io
import re
import zipfile
from typing import Any

import pydicom
import pytest
from django.test import Client
from pydicom.data import get_testdata_file

from studies.deid.links import UidMap
from studies.deid.models import BurnedIn, DeidPolicy
from studies.models import Instance, Study
from studies.sharing.models import ShareLink
from studies.sharing.services import token_hash
from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now
from tests.studies.test_sharing import PIN, create, staff, unlock
from tests.studies.test_sharing import part10 as shared_part10

CT_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
US_SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.99"
US_SOP = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.99"
DICOM_JSON = "application/dicom+json"
# What names the patient, the hospital or the original objects: never in a byte the link sends.
IDENTITY = [
    "CompressedSamples",
    "1CT1",
    "19600214",
    "ACC12345X",
    "REFERRER^ROBERT",
    "JFK IMAGING",
    "Demo Hospital",
    "demo-hospital",
]


def part10(**changes: str) -> bytes:
    return shared_part10(
        "CT_small.dcm",
        PatientBirthDate="19600214",
        AccessionNumber="ACC12345X",
        ReferringPhysicianName="REFERRER^ROBERT",
        **changes,
    )


@pytest.fixture
def study(people: Any) -> dict[str, str]:
    """The CT, and an ultrasound image in the same study (burned-in text unknown: flagged)."""
    ingest_now(people.demo, [part10()])
    ingest_now(
        people.demo,
        [
            part10(
                Modality="US",
                SOPClassUID="1.2.840.10008.5.1.4.1.1.6.1",
                SeriesInstanceUID=US_SERIES,
                SOPInstanceUID=US_SOP,
                SeriesNumber="2",
            )
        ],
    )
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    return {
        "study": ct.StudyInstanceUID,
        "series": ct.SeriesInstanceUID,
        "sop": ct.SOPInstanceUID,
        "frame": ct.FrameOfReferenceUID,
    }


def open_link(people: Any, **fields: Any) -> tuple[Client, str, ShareLink]:
    response, token = create(
        staff(people.alice), studies=CT_STUDY, deidentified="on", allow_download="on", **fields
    )
    assert response.status_code == 201, response.text[:400]
    holder = Client()
    assert unlock(holder, token).status_code == 302
    return holder, token, ShareLink.objects.get(token_sha256=token_hash(token))


def body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def parts(response: Any, data: bytes) -> list[bytes]:
    """The payloads of a multipart/related answer."""
    message = email.message_from_bytes(
        f"Content-Type: {response['Content-Type']}\r\n\r\n".encode() + data
    )
    return [p.get_payload(decode=True) for p in message.get_payload()]


def test_nothing_of_the_patients_identity_leaves_through_a_deidentified_link(people, study):
    holder, token, link = open_link(people)
    base = f"/s/{token}/dicomweb"
    sent: list[tuple[str, bytes]] = []

    def get(path: str, accept: str = DICOM_JSON, **query: str) -> Any:
        response = holder.get(f"{base}/{path}", query, HTTP_ACCEPT=accept)
        sent.append((path, body(response)))
        return response

    page = holder.get(f"/s/{token}/")
    sent.append(("page", page.content))
    viewer_uids = re.search(r"StudyInstanceUIDs=([^&\"]+)", page.text).group(1)
    [found] = get("studies").json()
    study_uid = found["0020000D"]["Value"][0]
    assert study_uid == viewer_uids and study_uid.startswith("2.25.")
    assert found["00081190"]["Value"][0].endswith(f"{base}/studies/{study_uid}")
    # The counts leave out the ultrasound image the link does not serve.
    assert found["00201208"]["Value"] == [1] and found["00201206"]["Value"] == [1]
    launch = holder.get("/viewer/viewer", {"StudyInstanceUIDs": study_uid, "share": token})
    assert launch.status_code == 200
    sent.append(("viewer", launch.content))
    config = holder.get(f"/s/{token}/app-config.js")
    assert config.status_code == 200 and f"{base}" in config.text
    sent.append(("app-config.js", config.content))

    series = get(f"studies/{study_uid}/series").json()
    assert len(series) == 1  # the ultrasound series is left out whole (burned-in text)
    series_uid = series[0]["0020000E"]["Value"][0]
    assert get("studies", StudyInstanceUID=study_uid).json()[0]["0020000D"] == found["0020000D"]
    assert (
        get("series", SeriesInstanceUID=series_uid).json()[0]["0020000E"] == series[0]["0020000E"]
    )
    instances = get(f"studies/{study_uid}/series/{series_uid}/instances").json()
    sop_uid = instances[0]["00080018"]["Value"][0]
    assert get("instances", SOPInstanceUID=sop_uid).json()[0]["00080018"]["Value"] == [sop_uid]
    # Matching by who the patient is would test a guess: such keys are ignored.
    assert len(get("studies", PatientName="Nobody*").json()) == 1

    metadata = get(f"studies/{study_uid}/metadata").json()
    assert [m["00080018"]["Value"][0] for m in metadata] == [sop_uid]
    [document] = metadata
    assert document["0020000D"]["Value"] == [study_uid]
    assert document["0020000E"]["Value"] == [series_uid]
    assert document["00120062"]["Value"] == ["YES"]
    pixel_uri = document["7FE00010"]["BulkDataURI"]
    assert pixel_uri.endswith(
        f"{base}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/bulkdata/7FE00010"
    )
    assert get(f"studies/{study_uid}/series/{series_uid}/metadata").json() == metadata
    instance_path = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    assert get(f"{instance_path}/metadata").json() == metadata

    retrieved = get(
        instance_path, accept='multipart/related; type="application/dicom"; transfer-syntax=*'
    )
    assert retrieved.status_code == 200
    [file_bytes] = parts(retrieved, sent[-1][1])
    ds = pydicom.dcmread(io.BytesIO(file_bytes))
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == (
        study_uid,
        series_uid,
        sop_uid,
    )
    assert ds.FrameOfReferenceUID == document["00200052"]["Value"][0] != study["frame"]
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert ds.PixelData == original.PixelData  # pixels as they were
    assert (
        get(
            f"studies/{study_uid}",
            accept='multipart/related; type="application/dicom"; transfer-syntax=*',
        ).status_code
        == 200
    )
    assert (
        get(
            f"studies/{study_uid}/series/{series_uid}",
            accept='multipart/related; type="application/dicom"; transfer-syntax=*',
        ).status_code
        == 200
    )

    frames = get(
        f"{instance_path}/frames/1",
        accept='multipart/related; type="application/octet-stream"; transfer-syntax=*',
    )
    assert frames.status_code == 200
    assert (
        get(
            f"{instance_path}/bulkdata/7FE00010",
            accept="multipart/related; type=application/octet-stream",
        ).status_code
        == 200
    )
    for path in (
        f"{instance_path}/rendered",
        f"{instance_path}/thumbnail",
        f"studies/{study_uid}/thumbnail",
        f"{instance_path}/frames/1/rendered",
    ):
        assert get(path, accept="image/jpeg").status_code == 200, path

    # The original UIDs name nothing through the link.
    for path in (
        f"studies/{study['study']}/metadata",
        f"studies/{study_uid}/series/{study['series']}/metadata",
        f"studies/{study_uid}/series/{series_uid}/instances/{study['sop']}/frames/1",
    ):
        assert get(path).status_code == 404

    download = holder.get(f"/s/{token}/download/")
    zipped = zipfile.ZipFile(io.BytesIO(body(download)))
    assert len(zipped.namelist()) == 1  # the ultrasound image is left out here too
    for name in zipped.namelist():
        sent.append((name, zipped.read(name)))
        assert pydicom.dcmread(io.BytesIO(zipped.read(name))).SOPInstanceUID == sop_uid

    forbidden = [*IDENTITY, study["study"], study["series"], study["sop"], study["frame"]]
    for path, data in sent:
        for value in forbidden:
            assert value.encode() not in data, f"{value!r} in the answer to {path}"
    # The hospital's audit log names the real study; the creation is a de-identified export.
    exported = AuditEvent.objects.get(action=AuditAction.DEID_EXPORT)
    assert exported.study_instance_uid == CT_STUDY and exported.detail["share"] == link.pk
    assert AuditEvent.objects.filter(
        action=AuditAction.WADO_RETRIEVE, study_instance_uid=CT_STUDY, detail__via="share"
    ).exists()


def test_the_excluded_ultrasound_image_is_not_found_by_its_mapped_uid(people, study):
    holder, token, link = open_link(people)
    uids = UidMap(link)
    path = f"studies/{uids.uid(CT_STUDY)}/series/{uids.uid(US_SERIES)}/instances/{uids.uid(US_SOP)}"
    for suffix in ("/metadata", "/frames/1", ""):
        response = holder.get(f"/s/{token}/dicomweb/{path}{suffix}", HTTP_ACCEPT=DICOM_JSON)
        assert response.status_code == 404
    assert "left out" in holder.get(f"/s/{token}/").text


def test_a_policy_that_includes_burned_in_images_warns_the_sender_and_the_holder(people, study):
    DeidPolicy.objects.create(tenant=people.demo, burned_in=BurnedIn.WARN)
    response, token = create(
        staff(people.alice), studies=CT_STUDY, deidentified="on", allow_download="on"
    )
    assert response.status_code == 201 and "burned into the pixels" in response.text
    holder = Client()
    unlock(holder, token, PIN)
    assert "burned into the pixels" in holder.get(f"/s/{token}/").text
    link = ShareLink.objects.get()
    study_uid = UidMap(link).uid(CT_STUDY)
    metadata = holder.get(
        f"/s/{token}/dicomweb/studies/{study_uid}/metadata", HTTP_ACCEPT=DICOM_JSON
    )
    modalities = sorted(m["00080060"]["Value"][0] for m in metadata.json())
    assert modalities == ["CT", "US"]
    us = next(m for m in metadata.json() if m["00080060"]["Value"] == ["US"])
    assert us["00080018"]["Value"] == [UidMap(link).uid(US_SOP)]


def test_two_links_to_the_same_study_map_it_to_different_uids(people, study):
    first, first_token, _ = open_link(people)
    second, second_token, _ = open_link(people)
    one = first.get(f"/s/{first_token}/dicomweb/studies", HTTP_ACCEPT=DICOM_JSON).json()
    two = second.get(f"/s/{second_token}/dicomweb/studies", HTTP_ACCEPT=DICOM_JSON).json()
    assert one[0]["0020000D"] != two[0]["0020000D"]
    assert Study.objects.filter(study_instance_uid=CT_STUDY).count() == 1
    assert Instance.objects.filter(tenant=people.demo).count() == 2  # nothing new was stored


def test_a_frame_through_the_link_costs_the_same_queries_whatever_the_series_size(people, study):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    holder, token, link = open_link(people)
    uids = UidMap(link)
    path = (
        f"/s/{token}/dicomweb/studies/{uids.uid(CT_STUDY)}/series/{uids.uid(study['series'])}"
        f"/instances/{uids.uid(study['sop'])}/frames/1"
    )
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'

    def frame_queries() -> int:
        assert holder.get(path, HTTP_ACCEPT=accept).status_code == 200  # checks new instances
        with CaptureQueriesContext(connection) as queries:
            assert holder.get(path, HTTP_ACCEPT=accept).status_code == 200
        return len(queries)

    few = frame_queries()
    ingest_now(
        people.demo,
        [part10(SOPInstanceUID=f"{study['sop']}.{n}", InstanceNumber=str(n)) for n in range(2, 7)],
    )
    assert frame_queries() == few
