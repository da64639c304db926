"""The production shape: two SCP processes and two workers side by side, one database, broker and
bucket; and patient data in none of their logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from studies.dicom import synthetic
from studies.models import Instance, Receipt, ReceiptStatus, Study
from tests.conftest import (
    ROOT,
    Worker,
    _broker_url,
    database_url_for_subprocess,
    free_port,
    stop_process,
    storescu,
    wait_for,
)

PATIENT_NAME = "ZYXWVUT^QWERTYUIOP"
PATIENT_ID = "PHI-7731-CANARY"


def _private_broker() -> str:
    """A Redis database of this test's own, so the suite's shared worker cannot take its tasks."""
    import redis
    from django.conf import settings

    # The suite's workers use the databases after the configured one, one per xdist worker
    # (conftest._broker_url); take the first after those.
    base, _, first = settings.CELERY_BROKER_URL.rpartition("/")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    url = f"{base}/{(int(first or 0) + workers + 1) % 16}"
    assert url != _broker_url()
    redis.Redis.from_url(url).flushdb()
    return url


def _scp_process(port: int, log: Path, broker: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        DATABASE_URL=database_url_for_subprocess(),
        CELERY_BROKER_URL=broker,
        SKYLIGHT_LOG_LEVEL="DEBUG",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runscp", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # noqa: SIM115
    )
    wait_for(lambda: b"listening" in log.read_bytes(), timeout=60, what="SCP process start")
    return process


def _canary_study(out: Path, seed: int) -> Path:
    spec = synthetic.StudySpec(
        seed=seed,
        patient=synthetic.PatientSpec(PATIENT_ID, PATIENT_NAME, "19510203", "F"),
        modality="CT",
        description="CANARY STUDY",
        accession_number=f"CAN{seed}",
        study_date="20261020",
        study_time="093000",
        referring_physician="REFERRER^CANARY",
        body_part="CHEST",
        slices=40,
        rows=128,
        columns=128,
    )
    synthetic.write_study(spec, out)
    return out


def test_two_scp_processes_and_two_workers_ingest_side_by_side_with_no_patient_data_in_logs(
    production, people, tmp_path
):
    logs = tmp_path / "logs"
    logs.mkdir()
    ports = [free_port(), free_port()]
    broker = _private_broker()
    scps = [_scp_process(port, logs / f"scp-{port}.log", broker) for port in ports]
    workers = [
        Worker(
            logs / f"worker-{n}.log",
            concurrency=1,
            extra_env={"SKYLIGHT_LOG_LEVEL": "DEBUG", "CELERY_BROKER_URL": broker},
        )
        for n in (1, 2)
    ]
    for worker in workers:
        worker.start()
    try:
        first = _canary_study(tmp_path / "a", seed=11)
        second = _canary_study(tmp_path / "b", seed=12)
        # Both studies at once, one through each SCP process; and the first again through the
        # other process, as a resend after a timeout would.
        senders = [
            subprocess.Popen(
                [
                    "storescu",
                    "-aec",
                    "DEMOHOSP",
                    "+sd",
                    "+r",
                    "127.0.0.1",
                    str(ports[0]),
                    str(first),
                ]
            ),
            subprocess.Popen(
                [
                    "storescu",
                    "-aec",
                    "DEMOHOSP",
                    "+sd",
                    "+r",
                    "127.0.0.1",
                    str(ports[1]),
                    str(second),
                ]
            ),
        ]
        assert [s.wait(timeout=300) for s in senders] == [0, 0]
        storescu(ports[1], "DEMOHOSP", first)

        def done() -> bool:
            return (
                not Receipt.objects.filter(status=ReceiptStatus.PENDING).exists()
                and Instance.objects.filter(tenant=people.demo).count() == 80
            )

        wait_for(done, timeout=240, what="both studies indexed")
    finally:
        for process in scps:
            stop_process(process)
        for worker in workers:
            worker.stop()

    assert Study.objects.filter(tenant=people.demo).count() == 2
    assert sorted(Study.objects.values_list("number_of_study_related_instances", flat=True)) == [
        40,
        40,
    ]
    statuses = sorted(Receipt.objects.values_list("status", flat=True))
    assert statuses.count(ReceiptStatus.DUPLICATE) == 40, {
        s: statuses.count(s) for s in set(statuses)
    }
    # Both workers took part.
    assert all(b"studies.tasks.index_receipts" in w.log_path.read_bytes() for w in workers)

    text = b"".join(p.read_bytes() for p in logs.iterdir())
    for secret in (PATIENT_NAME, PATIENT_ID, "19510203", "REFERRER^CANARY", "CANARY STUDY"):
        for form in {secret, secret.replace("^", " ")}:
            assert form.encode() not in text, f"{form!r} appears in a log"
