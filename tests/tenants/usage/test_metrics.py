"""/metrics: operators only, and every counter and histogram moves with real requests, from this
process and from the separate SCP, web and worker processes."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import requests
from django.test import Client
from pydicom import dcmread

from studies.models import Instance, Receipt, ReceiptStatus
from tests.conftest import (
    ROOT,
    Worker,
    database_url_for_subprocess,
    free_port,
    ingest_now,
    start_web,
    stop_process,
    wait_for,
)
from worklists.models import WorkItem

from .conftest import CT, c_find_studies, c_store, samples, value


def _scrape(client: Client, **headers: str) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def test_metrics_answer_loopback_only_when_no_token_is_set(people, settings):
    settings.SKYLIGHT_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 200  # the test client calls from 127.0.0.1
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 404
    # A signed-in hospital admin off the host is no operator.
    admin = Client(REMOTE_ADDR="192.0.2.7")
    admin.force_login(people.alice)
    assert admin.get("/metrics").status_code == 404


def test_with_a_token_only_its_bearer_gets_metrics_from_anywhere(people, settings):
    settings.SKYLIGHT_METRICS_TOKEN = "s3cret-metrics-token"
    assert Client().get("/metrics").status_code == 404  # loopback is not enough any more
    wrong = {"HTTP_AUTHORIZATION": "Bearer not-the-token"}
    assert Client().get("/metrics", **wrong).status_code == 404
    right = {"HTTP_AUTHORIZATION": "Bearer s3cret-metrics-token"}
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics", **right).status_code == 200
    assert Client().post("/metrics", **right).status_code == 405


def test_queries_worklist_requests_and_claims_move_the_counters_of_this_process(reading):
    people = reading.people
    before = _scrape(Client())
    ingest_now(people.demo, [Path(CT).read_bytes()])  # indexed in this process
    item = reading.item()
    bob = Client()
    bob.force_login(reading.bob)
    assert bob.get("/worklist/").status_code == 200
    assert bob.get("/api/worklist/items/").status_code == 200
    assert bob.post(f"/api/worklist/items/{item.pk}/claim/").status_code == 200
    alice = Client()
    alice.force_login(people.alice)
    qido = alice.get(
        f"/t/{people.demo.slug}/dicomweb/studies", HTTP_ACCEPT="application/dicom+json"
    )
    assert qido.status_code == 200
    after = _scrape(Client())

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("skylight_worklist_list_requests_total", surface="page") == 1
    assert moved("skylight_worklist_list_requests_total", surface="api") == 1
    assert moved("skylight_worklist_list_seconds_count", surface="api") == 1
    assert moved("skylight_worklist_list_seconds_bucket", surface="api", le="+Inf") == 1
    assert moved("skylight_worklist_claims_total", surface="api") == 1
    assert moved("skylight_query_requests_total", service="qido", tenant="demo-hospital") == 1
    assert moved("skylight_query_seconds_count", service="qido") == 1
    assert moved("skylight_index_receipts_total", tenant="demo-hospital") == 1
    assert moved("skylight_index_lag_seconds_count", queue="ingest") == 1
    assert moved("skylight_index_batch_seconds_count", queue="ingest") == 1
    # Gauges read from the database at the scrape: the claimed item is open (in progress).
    open_now = value(after, "skylight_work_items_open", tenant="demo-hospital")
    assert open_now == WorkItem.objects.filter(tenant=people.demo, final_at=None).count() >= 1
    # Operators' data only: no patient name, ID or UID of the work item.
    body = Client().get("/metrics").content.decode()
    assert item.patient_name not in body and item.study.study_instance_uid not in body


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "metrics"
    directory.mkdir()
    return directory


def test_counters_of_the_scp_web_and_worker_processes_add_up_at_metrics(
    people, production, token_for, metrics_dir, tmp_path
):
    """A real SCP (``manage.py runscp``), gunicorn and a Celery worker, each its own process,
    sharing one multiprocess directory; /metrics on gunicorn shows what each of them counted."""
    import os

    # A broker database of their own (the base one: the shared test worker uses base + 1), so
    # only this worker, which writes into the directory, takes their indexing tasks.
    broker = os.environ.get("SKYLIGHT_TEST_BROKER_URL", "redis://127.0.0.1:6379/12")
    token = "operators-only-token"
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SKYLIGHT_METRICS_TOKEN": token,
        "CELERY_BROKER_URL": broker,
    }
    worker = Worker(tmp_path / "celery.log", concurrency=1, queues="ingest", extra_env=env)
    worker.start()
    web = start_web(tmp_path / "gunicorn.log", workers=2, extra_env=env)
    port = free_port()
    scp_log = open(tmp_path / "scp.log", "ab")  # noqa: SIM115 - closed below
    scp = subprocess.Popen(
        [sys.executable, "manage.py", "runscp", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url_for_subprocess(), **env},
        stdout=scp_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: b"listening" in (tmp_path / "scp.log").read_bytes(), what="SCP start")
        assert c_store(port, "DEMOHOSP") == 0
        assert c_find_studies(port, "DEMOHOSP") >= 0
        stow, size = _stow(web.url, token_for(people.alice))
        assert stow.status_code == 200, stow.text[:300]
        wait_for(
            lambda: (
                not Receipt.objects.filter(status=ReceiptStatus.PENDING).exists()
                and Instance.objects.filter(tenant=people.demo).exists()
            ),
            what="indexing by the worker",
        )
        wait_for(lambda: len(list(metrics_dir.glob("*.db"))) >= 3, what="files of 3 processes")
        request = urllib.request.Request(  # noqa: S310 - our own server
            f"{web.url}/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            parsed = samples(response.read().decode())
        assert requests.get(f"{web.url}/metrics", timeout=30).status_code == 404
    finally:
        stop_process(scp)
        scp_log.close()
        stop_process(web.process)
        worker.stop()

    demo = {"tenant": "demo-hospital"}
    # From the SCP process: the C-STORE and the C-FIND.
    assert value(parsed, "skylight_ingest_instances_total", source="dimse", **demo) == 1
    assert value(parsed, "skylight_ingest_bytes_total", source="dimse", **demo) > 0
    assert value(parsed, "skylight_ingest_store_seconds_bucket", source="dimse", le="+Inf") == 1
    assert value(parsed, "skylight_query_requests_total", service="c-find", **demo) == 1
    assert value(parsed, "skylight_query_seconds_count", service="c-find") == 1
    # From a gunicorn worker: the STOW-RS request and its bytes.
    assert value(parsed, "skylight_ingest_instances_total", source="stow", **demo) == 1
    assert value(parsed, "skylight_ingest_bytes_total", source="stow", **demo) == size
    assert value(parsed, "skylight_ingest_store_seconds_count", source="stow") == 1
    # From the Celery worker: both instances indexed, and their lag observed.
    assert value(parsed, "skylight_index_receipts_total", **demo) == 2
    assert value(parsed, "skylight_index_lag_seconds_count", queue="ingest") == 2
    assert value(parsed, "skylight_index_lag_seconds_bucket", queue="ingest", le="+Inf") == 2
    assert value(parsed, "skylight_index_batch_seconds_count", queue="ingest") >= 1
    # And the database gauges, computed at the scrape.
    assert value(parsed, "skylight_receipts_pending", **demo) == 0
    assert value(parsed, "skylight_studies_receiving", **demo) >= 1
    ds = dcmread(CT)
    assert str(ds.StudyInstanceUID) not in str(parsed)


def _stow(url: str, token: str) -> tuple[requests.Response, int]:
    """One STOW-RS request storing a copy of CT_small under another SOP Instance UID; the
    answer and the part's size."""
    import io

    ds = dcmread(CT)
    ds.SOPInstanceUID = ds.SOPInstanceUID[:-1] + ("1" if ds.SOPInstanceUID[-1] != "1" else "2")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    body_part = buffer.getvalue()
    boundary = "usage-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + body_part
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = requests.post(
        f"{url}/t/demo-hospital/dicomweb/studies",
        data=body,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
            "Authorization": f"Bearer {token}",
        },
        timeout=60,
    )
    return response, len(body_part)
