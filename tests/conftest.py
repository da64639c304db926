"""Shared fixtures. Two tenants with the demo personas, a real SCP, a real Celery worker.

The mode comes from the environment (see tests/harness.py): ``production`` runs against
PostgreSQL, Redis and SeaweedFS; ``embedded`` against SQLite, local files and in-process tasks.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
# A second factor (tenants.mfa) is asked only by the tests of it, which turn it on with the
# ``settings`` fixture or their own web server; the others log in with a password. The
# environment carries the choice to the gunicorn processes of start_web.
os.environ.setdefault("SKYLIGHT_MFA_REQUIRED", "false")
settings.SKYLIGHT_MFA_REQUIRED = os.environ["SKYLIGHT_MFA_REQUIRED"].lower() in {"1", "true", "yes"}
PRODUCTION = bool(settings.CELERY_BROKER_URL) and settings.IS_POSTGRESQL


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 60,
    interval: float = 0.1,
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def ingest_now(tenant: Any, payloads: list[bytes]) -> None:
    """Store and index Part 10 files in this process, synchronously: the way tests set up data
    that is about reading, not about ingest (which has its own tests over DIMSE and STOW-RS)."""
    from studies import services
    from studies.models import ReceiptSource
    from tenants import audit

    objects = [services.store_bytes(tenant=tenant, data=data) for data in payloads]
    receipts = services.record_receipts(
        tenant=tenant,
        context=services.ReceiptContext(source=ReceiptSource.INTERNAL, actor=audit.Actor.system()),
        objects=objects,
        enqueue=lambda *_: None,
    )
    services.index_receipts(tenant_id=tenant.id, receipt_ids=[r.id for r in receipts])


def free_port() -> int:
    import socket
    from contextlib import closing

    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# Broker isolation: each xdist worker gets its own Redis database, so parallel test processes
# never consume each other's tasks.
# ---------------------------------------------------------------------------------------------


def _broker_url() -> str:
    url = settings.CELERY_BROKER_URL
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url.startswith("redis") or not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    number = (int(db or 0) + int(worker[2:]) + 1) % 16
    return f"{base}/{number}"


@pytest.fixture(scope="session", autouse=True)
def _flush_survives_a_deadlock() -> None:
    """Between tests the database is emptied with one TRUNCATE of every table. A worker or the
    live server may still be finishing a query from the test that just ended, and PostgreSQL can
    then pick the TRUNCATE as a deadlock's victim; it succeeds once the other side is done. So
    the flush is retried a few times instead of failing the next test's set-up."""
    if not settings.IS_POSTGRESQL:
        return
    from django.db import OperationalError
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: Any, sql_list: Any) -> None:
        for attempt in range(5):
            try:
                return original(self, sql_list)
            except OperationalError as exc:
                if "deadlock detected" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _each_test_starts_as_system_work() -> None:
    """Whatever the test before left on this connection's row-level security context
    (tenants/rls.py): a streamed response a test did not read to its end never sends
    request_finished, so that request's tenants would still be the context. Free: the restore is
    sent with the next query."""
    from tenants import rls

    rls.restore_default()


@pytest.fixture(autouse=True)
def _sqlite_flush_may_empty_the_audit_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """On SQLite (the embedded mode) Django's test flush empties tables with ``DELETE FROM``,
    which the audit log's append-only guard refuses (PostgreSQL flushes with ``TRUNCATE``, which
    row triggers do not see). So the guard against deletes is in place during each database test
    and lifted only for the flush after it; the guard against updates always stays."""
    if "transactional_db" not in request.fixturenames:
        yield
        return
    import importlib

    from django.db import connection

    request.getfixturevalue("transactional_db")
    if connection.vendor != "sqlite":
        yield
        return
    chain = importlib.import_module("tenants.migrations.0010_audit_chain")
    delete_guard = next(sql for sql in chain.SQLITE_CREATE if "BEFORE DELETE" in sql)
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS tenants_audit_append_only_delete")
        cursor.execute(delete_guard)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS tenants_audit_append_only_delete")


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> None:
    # A hash records its own iteration count, so the gunicorn processes verify these too.
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    PBKDF2PasswordHasher.iterations = 1000


@pytest.fixture(scope="session", autouse=True)
def _celery_broker() -> None:
    if not PRODUCTION:
        return
    from config.celery import app

    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    os.environ["CELERY_BROKER_URL"] = app.conf.broker_url = _broker_url()
    import redis

    redis.Redis.from_url(app.conf.broker_url).flushdb()


# ---------------------------------------------------------------------------------------------
# People: two hospitals and a reading group, as in the demo
# ---------------------------------------------------------------------------------------------


@dataclass
class People:
    demo: Any
    second: Any
    group: Any
    alice: Any
    bob: Any
    charlie: Any
    password: str = "correct-horse-battery-staple"


@pytest.fixture
def people(transactional_db: None) -> People:
    from tenants import services
    from tenants.models import Role, User

    demo = services.create_tenant(
        slug="demo-hospital", name="Demo Hospital", quiet_period_seconds=60
    )
    second = services.create_tenant(
        slug="second-hospital", name="Second Hospital", quiet_period_seconds=60
    )
    services.add_called_ae_title(tenant=demo, ae_title="DEMOHOSP")
    services.add_called_ae_title(tenant=second, ae_title="SECONDHOSP")
    for tenant in (demo, second):
        services.allow_caller(tenant=tenant, network="127.0.0.0/8")
    group = services.create_group(slug="demo-readers", name="Demo Readers")
    services.create_agreement(tenant=demo, group=group)
    services.create_agreement(tenant=second, group=group)
    password = People.password
    alice = User.objects.create_user("alice", password=password)
    bob = User.objects.create_user("bob", password=password)
    charlie = User.objects.create_user("charlie", password=password)
    services.add_membership(user=alice, tenant=demo, role=Role.TENANT_ADMIN)
    services.add_membership(user=bob, group=group, role=Role.RADIOLOGIST)
    services.add_membership(user=charlie, tenant=second, role=Role.TENANT_ADMIN)
    return People(demo=demo, second=second, group=group, alice=alice, bob=bob, charlie=charlie)


@pytest.fixture
def token_for(people: People) -> Callable[[Any], str]:
    from tenants.services import issue_token

    def make(user: Any) -> str:
        return issue_token(user=user, name="test")[1]

    return make


# ---------------------------------------------------------------------------------------------
# The SCP, in this process, on a free port
# ---------------------------------------------------------------------------------------------


@dataclass
class Scp:
    host: str
    port: int


@pytest.fixture
def scp(people: People, indexer: Any) -> Iterator[Scp]:
    from studies.dimse.scp import start_server
    from studies.dispatch import dispatcher

    port = free_port()
    server = start_server("127.0.0.1", port)
    try:
        yield Scp("127.0.0.1", port)
    finally:
        server.shutdown()
        dispatcher.wait_idle(timeout=30)


# ---------------------------------------------------------------------------------------------
# Indexing: a real Celery worker process in production mode; in-process tasks when embedded.
# ---------------------------------------------------------------------------------------------


class Worker:
    """A ``celery worker`` subprocess against the test database and this process's broker."""

    def __init__(
        self,
        log_path: Path,
        *,
        concurrency: int = 2,
        queues: str = "ingest,derive,prefetch",
        extra_env: dict[str, str] | None = None,
    ):
        self.log_path = log_path
        self.concurrency = concurrency
        self.queues = queues
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        from django.db import connection

        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
                "CELERY_BROKER_URL": _broker_url(),
                "SKYLIGHT_LOG_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.log_path.touch()
        start = self.log_path.stat().st_size
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queues,
                "-c",
                str(self.concurrency),
                "--pool",
                "prefork",
                "-l",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: b"ready." in self.log_path.read_bytes()[start:],
            timeout=60,
            what="celery worker start",
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def _session_worker(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker | None]:
    if not PRODUCTION:
        yield None
        return
    worker = Worker(tmp_path_factory.mktemp("worker") / "celery.log")
    with django_db_blocker.unblock():
        worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def production() -> None:
    """For tests of the production shape itself (real worker processes, a real broker)."""
    assert PRODUCTION, "this test needs PostgreSQL, Redis and SeaweedFS: run it with `make test`"


@pytest.fixture
def indexer(_session_worker: Worker | None) -> Worker | None:
    """Something indexes what is received: the shared worker process, or in-process tasks."""
    return _session_worker


# ---------------------------------------------------------------------------------------------
# DICOM files
# ---------------------------------------------------------------------------------------------


def _is_storable(path: Path) -> bool:
    import pydicom
    from pynetdicom.service_class import StorageServiceClass
    from pynetdicom.sop_class import uid_to_service_class

    from studies.dicom.reader import read_header

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - not a DICOM file
        return False
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        return False
    if not all(
        ds.get(k)
        for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    ):
        return False
    if uid_to_service_class(ds.SOPClassUID) is not StorageServiceClass:
        return False
    with open(path, "rb") as f:
        header = read_header(f, size=path.stat().st_size)
    if header.truncated:
        return False
    # A compressed transfer syntax requires encapsulated pixel data (PS3.5 A.4).
    if pydicom.uid.UID(
        header.transfer_syntax_uid
    ).is_compressed and header.pixel_data_length not in (None, 0xFFFFFFFF):
        return False
    # dcmtk must parse it too (it is the other end of every exchange here), and read the SOP
    # Instance UID as UI: a data set encoded in another VR style than its transfer syntax says
    # (pydicom guesses, dcmtk does not) is not a valid file.
    dump = subprocess.run(
        ["dcmdump", "-q", "+P", "0008,0018", str(path)], capture_output=True, text=True
    )
    return dump.returncode == 0 and " UI [" in dump.stdout


def valid_pydicom_files() -> list[Path]:
    """Every valid DICOM file bundled with pydicom: Part 10, a storage SOP class, all four UIDs,
    and not cut short. (Truncated and meta-less files are tested separately as bad input.)"""
    import pydicom.data

    root = Path(pydicom.data.__file__).parent / "test_files"
    return sorted(p for p in root.rglob("*") if p.is_file() and _is_storable(p))


@pytest.fixture(scope="session")
def pydicom_files() -> list[Path]:
    return valid_pydicom_files()


@pytest.fixture(scope="session")
def ct_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 300-slice 512×512 CT series on disk."""
    from studies.dicom import synthetic

    out = tmp_path_factory.mktemp("ct300")
    spec = synthetic.StudySpec(
        seed=300,
        patient=synthetic.PatientSpec("SKY300", "TESTPATIENT^THREEHUNDRED", "19600101", "O"),
        modality="CT",
        description="CT CHEST 300",
        accession_number="ACC300",
        study_date="20261101",
        study_time="101500",
        referring_physician="REFERRER^RITA",
        body_part="CHEST",
        slices=300,
    )
    synthetic.write_study(spec, out)
    return out


# storescu proposes only uncompressed transfer syntaxes unless told otherwise (and would then try
# to decompress); these options make it propose each file's own syntax, as a modality would.
STORESCU_PROPOSE = {
    "1.2.840.10008.1.2": "-xi",
    "1.2.840.10008.1.2.1": "-xe",
    "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.1.99": "-xd",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
}


def storescu_each_syntax(
    port: int, called: str, paths: list[Path], *, calling: str = "MODALITY1"
) -> None:
    """Send files of mixed transfer syntaxes: one association per syntax, proposing it."""
    import pydicom

    groups: dict[str, list[Path]] = {}
    for path in paths:
        ts = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        groups.setdefault(ts, []).append(path)
    for ts, group in groups.items():
        storescu(port, called, group, calling=calling, extra=["-R", STORESCU_PROPOSE[ts]])


def storescu(
    port: int,
    called: str,
    paths: list[Path] | Path,
    *,
    calling: str = "MODALITY1",
    check: bool = True,
    extra: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Send with dcmtk's storescu, one association, as a modality would."""
    args = ["storescu", "-aet", calling, "-aec", called, *(extra or [])]
    if isinstance(paths, Path) and paths.is_dir():
        args += ["+sd", "+r", "127.0.0.1", str(port), str(paths)]
    else:
        args += [
            "127.0.0.1",
            str(port),
            *[str(p) for p in (paths if isinstance(paths, list) else [paths])],
        ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"storescu failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


@pytest.fixture(scope="session")
def storescu_reference(
    pydicom_files: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    """What storescu actually puts on the wire for each of pydicom's files, by SOP Instance UID.

    storescu re-encodes what it loads, so for a few non-canonical files (odd lengths, group
    lengths) the wire bytes differ from the file's. dcmtk's own storescp in bit-preserving mode
    records them; the last copy of a UID sent wins, as in Skylight.
    """
    import pydicom

    from studies.dicom.part10 import data_set_offset

    out = tmp_path_factory.mktemp("storescp")
    port = free_port()
    process = subprocess.Popen(
        ["storescp", "-od", str(out), "+B", "+xa", "-aet", "REFERENCE", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        storescu_each_syntax(port, "REFERENCE", pydicom_files)
    finally:
        process.terminate()
        process.wait(timeout=30)
    reference = {}
    for path in out.iterdir():
        raw = path.read_bytes()
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        reference[uid] = raw[data_set_offset(raw) :]
    return reference


@pytest.fixture(autouse=True, scope="session")
def _dcmtk_present() -> None:
    for tool in ("storescu", "echoscu"):
        assert shutil.which(tool), f"dcmtk's {tool} is missing: run `make test`, which installs it"


# ---------------------------------------------------------------------------------------------
# The web tier: a real gunicorn process against the test database (chunked uploads, streaming
# bodies and process memory behave as in production, unlike Django's test server).
# ---------------------------------------------------------------------------------------------


def database_url_for_subprocess() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Web:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def dicomweb(self, slug: str) -> str:
        return f"{self.url}/t/{slug}/dicomweb"


def start_web(log_path: Path, *, workers: int = 2, extra_env: dict[str, str] | None = None) -> Web:
    port = free_port()
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url_for_subprocess(), "SKYLIGHT_LOG_LEVEL": "INFO"})
    if PRODUCTION:
        env["CELERY_BROKER_URL"] = _broker_url()
    env.update(extra_env or {})
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            "4",
            "--timeout",
            "600",
            "--graceful-timeout",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    import urllib.request

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # noqa: S310
            return True
        except OSError:
            return False

    wait_for(up, timeout=60, interval=0.2, what="gunicorn start")
    return Web(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def _session_web(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Web]:
    with django_db_blocker.unblock():
        web = start_web(tmp_path_factory.mktemp("web") / "gunicorn.log")
    try:
        yield web
    finally:
        stop_process(web.process)


@pytest.fixture
def web(_session_web: Web, people: People, indexer: Any) -> Web:
    return _session_web
