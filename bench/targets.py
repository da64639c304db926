"""The systems under test, each seen only through standard protocols.

A ``Target`` is where to send (DIMSE host/port/called AE, STOW-RS URL and headers) plus two small
per-target adapters: a *queryable probe* that answers "how many instances of this study does a
query return now, and is anything still waiting to be indexed?", and the ids of the processes that
serve HTTP (for the memory figure). Everything else in the benchmarks is the same code for every
target.

- Orthanc: QIDO-RS ``GET /dicom-web/studies/{uid}/series`` (sum of NumberOfSeriesRelatedInstances,
  0020,1209). Orthanc indexes before it answers a C-STORE or STOW-RS, so nothing is ever pending.
- Skylight: it has no QIDO-RS yet (next issue), so its probe is the REST API:
  ``GET /api/t/<slug>/studies/?accession_number=...`` (``number_of_study_related_instances``) and
  ``GET /api/t/<slug>/receipts/?status=pending`` (empty). Issue 3 switches this probe to QIDO-RS.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from .common import PY, ROOT, Study, get_json, server_workers

# Each Skylight probe is two REST requests (~10 ms of CPU each, plus an audit row): polled every
# 50 ms they took a quarter of a core from the indexing they wait for. 0.2 s keeps the figure's
# resolution well inside the 2 s target.
PROBE_INTERVAL = 0.2


@dataclass(frozen=True)
class Progress:
    visible: int  # instances of the study a query returns now
    pending: int  # objects received but not indexed yet (0: none or cannot tell; -1: not asked)

    def complete(self, expected: int) -> bool:
        return self.visible >= expected and self.pending == 0


@dataclass
class Target:
    name: str
    kind: str  # "skylight" or "orthanc"
    dicom_host: str
    dicom_port: int
    called_ae: str
    stow_url: str
    headers: dict[str, str]
    probe: Callable[[Study], Progress]
    web_port: int
    notes: dict[str, Any] = field(default_factory=dict)
    # Objects received but not indexed yet, for the whole tenant (0 when the target indexes
    # before it answers).
    pending: Callable[[], int] = lambda: 0

    @property
    def dicomweb_root(self) -> str:
        """The DICOMweb base URL (QIDO-RS, WADO-RS and STOW-RS paths follow it)."""
        return self.stow_url.removesuffix("/studies")

    def wait_indexed(self, timeout: float = 900) -> float:
        """Wait until nothing received is waiting to be indexed; return the seconds waited."""
        started = time.perf_counter()
        while (left := self.pending()) > 0:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{self.name}: {left} objects still pending after {timeout}s")
            time.sleep(PROBE_INTERVAL)
        return time.perf_counter() - started

    def web_pids(self) -> list[int]:
        return server_workers(self.web_port)


# ---------------------------------------------------------------------------------------------
# Orthanc
# ---------------------------------------------------------------------------------------------


def orthanc_target(
    base_url: str,
    dicom_host: str,
    dicom_port: int,
    called_ae: str = "ORTHANC",
    name: str = "orthanc",
) -> Target:
    base = base_url.rstrip("/")
    qido = {"Accept": "application/dicom+json"}

    def probe(study: Study) -> Progress:
        series = get_json(f"{base}/dicom-web/studies/{study.study_uid}/series", qido) or []
        visible = sum(int((s.get("00201209") or {}).get("Value", [0])[0]) for s in series)
        return Progress(visible=visible, pending=0)

    return Target(
        name=name, kind="orthanc", dicom_host=dicom_host, dicom_port=dicom_port, called_ae=called_ae,
        stow_url=f"{base}/dicom-web/studies", headers={}, probe=probe,
        web_port=urlsplit(base).port or 80,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Skylight
# ---------------------------------------------------------------------------------------------


def skylight_target(
    base_url: str,
    dicom_host: str,
    dicom_port: int,
    token: str,
    tenant: str = "demo-hospital",
    called_ae: str = "DEMOHOSP",
    name: str = "skylight",
) -> Target:
    base = base_url.rstrip("/")
    auth = {"Authorization": f"Bearer {token}"}
    api = f"{base}/api/t/{quote(tenant)}"

    def probe(study: Study) -> Progress:
        found = get_json(
            f"{api}/studies/?accession_number={quote(study.accession_number)}", auth
        ) or {"results": []}
        visible = sum(
            int(s["number_of_study_related_instances"])
            for s in found.get("results", [])
            if s["study_instance_uid"] == study.study_uid
        )
        if visible < study.instances:  # not there yet: spare the second request
            return Progress(visible=visible, pending=-1)
        return Progress(visible=visible, pending=pending())

    def pending() -> int:
        found = get_json(f"{api}/receipts/?status=pending&limit=1", auth) or {"count": 0}
        return int(found["count"])

    return Target(
        name=name, kind="skylight", dicom_host=dicom_host, dicom_port=dicom_port, called_ae=called_ae,
        stow_url=f"{base}/t/{quote(tenant)}/dicomweb/studies", headers=auth, probe=probe,
        web_port=urlsplit(base).port or 80, pending=pending,
    )  # fmt: skip


def issue_token(database_url: str, username: str = "alice") -> str:
    """A bearer token from ``manage.py issue_token`` against the given database."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = database_url
    env.setdefault("SKYLIGHT_SECRET_KEY", "benchmark-token-issuer-not-secret-0123456789")
    done = subprocess.run(
        [PY, "manage.py", "issue_token", username, "--name", "benchmark", "--days", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py issue_token {username} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def wait_queryable(
    target: Target,
    study: Study,
    since: float,
    interval: float = PROBE_INTERVAL,
    timeout: float = 900,
) -> dict[str, Any]:
    """Poll the target's probe until the whole study is queryable; time it from ``since`` (a
    ``time.perf_counter()`` value: the last acknowledgement)."""
    probes = 0
    progress = Progress(0, 0)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        probes += 1
        progress = target.probe(study)
        if progress.complete(study.instances):
            return {
                "queryable_after_s": time.perf_counter() - since,
                "probes": probes,
                "visible": progress.visible,
            }
        time.sleep(interval)
    raise TimeoutError(
        f"{target.name}: {progress.visible}/{study.instances} instances visible and "
        f"{progress.pending} pending {timeout:.0f}s after the last acknowledgement"
    )
