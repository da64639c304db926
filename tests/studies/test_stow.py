"""STOW-RS against a real gunicorn process, with dicomweb-client and with hand-made bodies."""

from __future__ import annotations

import hashlib
import io
import json

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from studies.models import Instance, Receipt, ReceiptStatus
from studies.storage import object_store
from tenants.models import AuditAction, AuditEvent
from tests.conftest import wait_for

FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILURE_REASON = "00081197"
REFERENCED_SOP_INSTANCE_UID = "00081155"


def _client(web, slug: str, token: str) -> DICOMwebClient:
    return DICOMwebClient(url=web.dicomweb(slug), headers={"Authorization": f"Bearer {token}"})


def _multipart(
    parts: list[tuple[str, bytes]], boundary: str = "skylight-test-boundary"
) -> tuple[bytes, str]:
    body = io.BytesIO()
    for content_type, payload in parts:
        body.write(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode())
        body.write(payload)
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), f'multipart/related; type="application/dicom"; boundary={boundary}'


def _post(
    web,
    slug: str,
    token: str,
    body: bytes,
    content_type: str,
    study: str | None = None,
    **headers: str,
) -> requests.Response:
    url = f"{web.dicomweb(slug)}/studies" + (f"/{study}" if study else "")
    return requests.post(
        url,
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": content_type,
            "Accept": "application/dicom+json",
            **headers,
        },
        timeout=120,
    )


def _indexed(tenant, n: int) -> bool:  # noqa: ANN001
    return (
        not Receipt.objects.filter(tenant=tenant, status=ReceiptStatus.PENDING).exists()
        and Instance.objects.filter(tenant=tenant).count() >= n
    )


def test_dicomweb_client_stores_every_pydicom_file_byte_exact(
    web, people, token_for, pydicom_files
):
    client = _client(web, "demo-hospital", token_for(people.alice))
    datasets = [pydicom.dcmread(p) for p in pydicom_files]
    # dicomweb-client re-encodes datasets; send the files' own bytes too, to check byte equality.
    response = client.store_instances(datasets=datasets)
    referenced = response.get("ReferencedSOPSequence", [])
    assert len(referenced) == len(datasets)
    assert "FailedSOPSequence" not in response
    unique = {str(ds.SOPInstanceUID) for ds in datasets}
    wait_for(lambda: _indexed(people.demo, len(unique)), timeout=180, what="indexing")
    assert (
        set(Instance.objects.filter(tenant=people.demo).values_list("sop_instance_uid", flat=True))
        == unique
    )
    assert not Instance.objects.filter(tenant=people.second).exists()


@pytest.mark.smoke
def test_stored_bytes_are_the_bytes_of_each_part(web, people, token_for, pydicom_files):
    files = [
        p
        for p in pydicom_files
        if p.name in ("CT_small.dcm", "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm")
    ]
    body, content_type = _multipart([("application/dicom", p.read_bytes()) for p in files])
    response = _post(web, "demo-hospital", token_for(people.alice), body, content_type)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/dicom+json")
    wait_for(lambda: _indexed(people.demo, len(files)), what="indexing")
    for path in files:
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        instance = Instance.objects.get(tenant=people.demo, sop_instance_uid=uid)
        with object_store().open(instance.storage_key, "rb") as f:
            assert f.read() == path.read_bytes()
        assert instance.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_mixed_request_stores_the_good_parts_and_reports_each_bad_one(
    web, people, token_for, pydicom_files
):
    good = next(p for p in pydicom_files if p.name == "CT_small.dcm")
    other_study = next(p for p in pydicom_files if p.name == "MR_small.dcm")
    target = str(pydicom.dcmread(good, stop_before_pixels=True).StudyInstanceUID)
    truncated = good.read_bytes()[:-4000]
    no_uid = pydicom.dcmread(good)
    del no_uid.SOPInstanceUID
    buffer = io.BytesIO()
    no_uid.save_as(buffer, enforce_file_format=False)
    body, content_type = _multipart(
        [
            ("application/dicom", good.read_bytes()),
            ("text/plain", b"this is not a DICOM file"),
            ("application/dicom", truncated),
            ("application/dicom", buffer.getvalue()),
            ("application/dicom", other_study.read_bytes()),
        ]
    )
    response = _post(
        web, "demo-hospital", token_for(people.alice), body, content_type, study=target
    )
    assert response.status_code == 202, response.text
    payload = response.json()
    stored = payload[REFERENCED_SOP_SEQUENCE]["Value"]
    assert [item[REFERENCED_SOP_INSTANCE_UID]["Value"][0] for item in stored] == [
        str(pydicom.dcmread(good, stop_before_pixels=True).SOPInstanceUID)
    ]
    reasons = [item[FAILURE_REASON]["Value"][0] for item in payload[FAILED_SOP_SEQUENCE]["Value"]]
    # not DICOM, truncated, no SOP Instance UID, another study than the URL's
    assert reasons == [0xC000, 0xC000, 0xA900, 0xC409]
    warning = response.headers["Warning"]
    assert "part 2 is text/plain" in warning and "part 3 is truncated" in warning
    wait_for(lambda: _indexed(people.demo, 1), what="indexing")
    assert Instance.objects.filter(tenant=people.demo).count() == 1
    failures = AuditEvent.objects.filter(
        tenant=people.demo, action=AuditAction.STOW_STORE, outcome="failure"
    )
    assert failures.count() == 4


def test_a_request_where_every_part_fails_answers_409(web, people, token_for):
    body, content_type = _multipart([("application/dicom", b"\x00" * 300)])
    response = _post(web, "demo-hospital", token_for(people.alice), body, content_type)
    assert response.status_code == 409
    assert response.json()[FAILED_SOP_SEQUENCE]["Value"][0][FAILURE_REASON]["Value"] == [0xC000]
    assert not Receipt.objects.exists()


@pytest.mark.smoke
def test_wrong_media_types_answer_415_with_what_to_send(web, people, token_for, pydicom_files):
    token = token_for(people.alice)
    body = pydicom_files[0].read_bytes()
    plain = _post(web, "demo-hospital", token, body, "application/dicom")
    assert plain.status_code == 415 and "multipart/related" in plain.json()["error"]
    xml_parts = _post(
        web,
        "demo-hospital",
        token,
        b"--b\r\n\r\n--b--",
        'multipart/related; type="application/dicom+xml"; boundary=b',
    )
    assert xml_parts.status_code == 415 and "application/dicom" in xml_parts.json()["error"]


def test_a_body_over_the_configured_limit_answers_413_before_storing_anything(
    web, people, token_for
):
    import http.client
    from urllib.parse import urlsplit

    from django.conf import settings

    limit = settings.SKYLIGHT["STOW_MAX_BODY_BYTES"]
    url = urlsplit(web.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("POST", "/t/demo-hospital/dicomweb/studies")
    conn.putheader("Authorization", f"Bearer {token_for(people.alice)}")
    conn.putheader("Content-Type", 'multipart/related; type="application/dicom"; boundary=b')
    conn.putheader("Content-Length", str(limit + 1))
    conn.endheaders()
    conn.send(b"--b\r\n")  # the server answers without waiting for the other 8 GB
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 413
    assert "larger than" in body["error"] and "split it" in body["error"]
    assert not Receipt.objects.exists()


@pytest.mark.smoke
def test_bad_or_missing_tokens_answer_401(web, people, pydicom_files):
    body, content_type = _multipart([("application/dicom", pydicom_files[0].read_bytes())])
    url = f"{web.dicomweb('demo-hospital')}/studies"
    missing = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = requests.post(
        url,
        data=body,
        headers={"Content-Type": content_type, "Authorization": "Bearer sky_nope_nope"},
        timeout=30,
    )
    assert bad.status_code == 401 and "Invalid" in bad.json()["error"]
    assert not Receipt.objects.exists()


@pytest.mark.smoke
def test_another_hospitals_tenant_is_not_found_for_charlie(web, people, token_for, pydicom_files):
    body, content_type = _multipart([("application/dicom", pydicom_files[0].read_bytes())])
    response = _post(web, "demo-hospital", token_for(people.charlie), body, content_type)
    assert response.status_code == 404
    assert response.json() == {"error": "No such tenant."}
    unknown = _post(web, "no-such-hospital", token_for(people.charlie), body, content_type)
    assert unknown.status_code == 404 and unknown.json() == response.json()
    assert not Receipt.objects.exists()


def test_session_login_can_store_with_a_csrf_token_and_not_without(web, people, pydicom_files):
    session = requests.Session()
    login_page = session.get(f"{web.url}/login/", timeout=30)
    csrf = session.cookies["csrftoken"]
    session.post(
        f"{web.url}/login/",
        data={"username": "alice", "password": people.password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{web.url}/login/"},
        timeout=30,
    )
    assert login_page.status_code == 200 and "sessionid" in session.cookies
    body, content_type = _multipart([("application/dicom", pydicom_files[0].read_bytes())])
    url = f"{web.dicomweb('demo-hospital')}/studies"
    refused = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    accepted = session.post(
        url,
        data=body,
        timeout=30,
        headers={
            "Content-Type": content_type,
            "X-CSRFToken": session.cookies["csrftoken"],
            "Referer": f"{web.url}/",
        },
    )
    assert accepted.status_code == 200, accepted.text


def test_xml_response_when_the_client_asks_for_it(web, people, token_for, pydicom_files):
    body, content_type = _multipart([("application/dicom", pydicom_files[0].read_bytes())])
    response = _post(
        web,
        "demo-hospital",
        token_for(people.alice),
        body,
        content_type,
        Accept="application/dicom+xml",
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/dicom+xml")
    assert '<DicomAttribute tag="00081199" vr="SQ"' in response.text


def test_memory_stays_bounded_for_a_large_body(tmp_path, people, token_for, transactional_db):
    """The parser holds at most a few spool buffers, whatever the body size (50 MB here)."""
    import tracemalloc

    from studies.dicom import synthetic
    from studies.dicomweb import stow

    spec = synthetic.StudySpec(
        seed=7,
        patient=synthetic.PatientSpec("MEM1", "MEMORY^TEST", "19700101", "F"),
        modality="CT",
        description="memory",
        accession_number="MEM",
        study_date="20260101",
        study_time="080000",
        referring_physician="",
        body_part="CHEST",
        slices=100,
    )
    parts = [synthetic.encode_part10(ds) for ds in synthetic.iter_study(spec)]
    body, content_type = _multipart([("application/dicom", p) for p in parts])
    del parts
    assert len(body) > 50_000_000
    stream = io.BytesIO(body)
    from studies.storage import object_store

    object_store().exists("warm-up")  # boto3 loads its service models (~60 MB) once per process
    tracemalloc.start()
    outcome = stow.receive(
        chunks=stow.read_chunks(stream.read, len(body) + 1),
        boundary="skylight-test-boundary",
        content_length=len(body),
        tenant=people.demo,
        target_study_uid=None,
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(outcome.stored) == 100 and not outcome.failed
    assert peak < 20_000_000, f"peak {peak} bytes while streaming a {len(body)}-byte body"


def _stored_keys(tenant) -> set[str]:  # noqa: ANN001
    from studies.storage import S3ObjectStorage

    store = object_store()
    prefix = f"tenants/{tenant.id}/"
    if isinstance(store, S3ObjectStorage):
        pages = store.client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket_name, Prefix=prefix
        )
        return {o["Key"] for page in pages for o in page.get("Contents", [])}
    import os

    root = store.path(prefix)
    return (
        {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}
        if os.path.isdir(root)
        else set()
    )


def test_a_malformed_body_stores_nothing_and_leaves_no_objects_behind(
    web, people, token_for, pydicom_files
):
    good = [p for p in pydicom_files if p.name in ("CT_small.dcm", "MR_small.dcm")]
    body, content_type = _multipart([("application/dicom", p.read_bytes()) for p in good])
    cut = (
        body[: -len(b"--skylight-test-boundary--\r\n")]
        + b"--skylight-test-boundary\r\nContent-Type: application/dicom\r\n\r\n\x00\x01"
    )
    before = _stored_keys(people.demo)
    response = _post(web, "demo-hospital", token_for(people.alice), cut, content_type)
    assert response.status_code == 400 and "malformed" in response.json()["error"]
    assert not Receipt.objects.exists()
    wait_for(
        lambda: _stored_keys(people.demo) == before, timeout=30, what="uploaded parts to be removed"
    )


def test_a_study_uid_that_is_not_a_uid_and_unknown_paths_get_json_errors(
    web, people, token_for, pydicom_files
):
    token = token_for(people.alice)
    body, content_type = _multipart([("application/dicom", pydicom_files[0].read_bytes())])
    bad_uid = _post(web, "demo-hospital", token, body, content_type, study="1.2.abc")
    assert bad_uid.status_code == 400 and "not a valid DICOM UID" in bad_uid.json()["error"]
    unknown = requests.get(
        f"{web.dicomweb('demo-hospital')}/workitems",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert unknown.status_code == 404 and "No such DICOMweb resource" in unknown.json()["error"]
    assert not Receipt.objects.exists()
