"""The embedded mode (``manage.py runall``): the SCP in the main process, the web in gunicorn
children, tasks in-process; /metrics on the web shows what each of them counted, and a run
starts from an empty metrics directory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, free_port, stop_process, wait_for

from .conftest import c_find_studies, c_store, samples, value

SETUP = """
from tenants import services
tenant = services.create_tenant(slug="demo-hospital", name="Demo Hospital")
services.add_called_ae_title(tenant=tenant, ae_title="DEMOHOSP")
services.allow_caller(tenant=tenant, network="127.0.0.0/8")
"""


def _healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    assert process.poll() is None, log.read_text()[-3000:]
    with contextlib.suppress(OSError):
        return urllib.request.urlopen(f"{url}/healthz", timeout=2).status == 200  # noqa: S310
    return False


def _scrape(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:  # noqa: S310
        return samples(response.read().decode())


def test_runall_shows_the_scp_web_and_task_counters_at_metrics(tmp_path: Path):
    data = tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SKYLIGHT_", "DATABASE_URL", "CELERY_", "PYTEST", "PROMETHEUS"))
    }
    env["SKYLIGHT_DATA_DIR"] = str(data)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "shell", "-c", SETUP], cwd=ROOT, env=env, check=True)
    # A file left by an earlier run's process: not to be added to this run's values.
    stale = data / "metrics" / "counter_4194000.db"
    stale.write_bytes(b"\0" * 16)
    web_port, scp_port = free_port(), free_port()
    log = tmp_path / "runall.log"
    process = subprocess.Popen(
        [*manage, "runall", "--web", f"127.0.0.1:{web_port}", "--scp-port", str(scp_port)],
        cwd=ROOT,
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{web_port}"
    try:
        wait_for(lambda: _healthy(url, process, log), timeout=120, what="runall to answer")
        assert not stale.exists()
        assert c_store(scp_port, "DEMOHOSP") == 0
        assert c_find_studies(scp_port, "DEMOHOSP") >= 0
        parsed = wait_for(
            lambda: (s := _scrape(url)) and value(s, "skylight_index_receipts_total") and s,
            what="the in-process index to be counted",
        )
    finally:
        stop_process(process)  # SIGTERM: runall stops its SCP, dispatcher and gunicorn
    demo = {"tenant": "demo-hospital"}
    assert value(parsed, "skylight_ingest_instances_total", source="dimse", **demo) == 1
    assert value(parsed, "skylight_ingest_store_seconds_bucket", source="dimse", le="+Inf") == 1
    assert value(parsed, "skylight_query_requests_total", service="c-find", **demo) == 1
    assert value(parsed, "skylight_index_receipts_total", **demo) == 1
    assert value(parsed, "skylight_index_lag_seconds_count", queue="ingest") == 1
    assert value(parsed, "skylight_studies_receiving", **demo) == 1
