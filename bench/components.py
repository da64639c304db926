"""Floors under the C-STORE figure: what each step Skylight takes per instance costs on its own.

    python -m bench.components [all|scp|s3|fsync|pg] [--n 300]

- ``scp``: storescu (one association, the same 300-slice CT) to an SCP that does nothing but
  answer Success: dcmtk's ``storescp`` (discarding), pynetdicom 3 as shipped, and pynetdicom with
  Skylight's event-driven transport (``studies/dimse/transport.py``, which only needs pynetdicom).
  This is the ceiling of any pynetdicom-based receiver on this machine.
- ``s3``: sequential PutObject of a 0.5 MB object through boto3 to SeaweedFS's S3 gateway (a
  SeaweedFS started here on free ports), i.e. Skylight's durable step before each acknowledgement.
- ``fsync``: write a 0.5 MB temporary file, fsync, rename, fsync the directory (Skylight's
  ``DurableFileSystemStorage.put``).
- ``pg``: one INSERT of a ~1 KB row committed on its own, through psycopg, in a scratch database.

Unlike the benchmarks, this imports a little of Skylight (its transport module, for one variant).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from .common import PY, ROOT, ct_study, free_port, port_open, save, say, settle_disk, wait_for
from .launch import BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, spawn, start_seaweedfs, stop

OBJECT = 525_000  # bytes: one 512×512 CT slice


def latency(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": ms[int(len(ms) * 0.9)],
        "per_second_serial": 1000 / statistics.median(ms),
    }


# ---------------------------------------------------------------------------------------------
# No-op SCPs
# ---------------------------------------------------------------------------------------------

PYNETDICOM_SCP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from pynetdicom import AE, _config, evt
    _config.UNRESTRICTED_STORAGE_SERVICE = True
    skylight = {skylight!r}
    if skylight:
        from studies.dimse import transport
        transport.install()
    ae = AE(ae_title="NOOP")
    ae.maximum_pdu_size = 1048576
    ae.require_called_aet = False
    def handle_store(event):
        event.request.DataSet.getvalue()  # what Skylight's handler does with the bytes
        return 0x0000
    server = ae.start_server(("127.0.0.1", {port}), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, handle_store)])
    if skylight:
        server.RequestHandlerClass = transport.FastRequestHandler
    import threading
    threading.Event().wait()
    """
)


def storescu_rate(port: int, folder: Path, called: str = "NOOP") -> float:
    env = dict(os.environ, TCP_NODELAY="1")
    started = time.perf_counter()
    subprocess.run(
        ["storescu", "-aet", "BENCHSCU", "-aec", called, "+sd", "+r", "127.0.0.1", str(port),
         str(folder)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    files = sum(1 for _ in folder.rglob("*.dcm"))
    return files / (time.perf_counter() - started)


def scp_floor(runs: int) -> dict[str, Any]:
    study = ct_study(4242)
    settle_disk()
    work = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    results: dict[str, Any] = {}
    variants: dict[str, list[str]] = {
        "dcmtk storescp (discard)": [
            "storescp", "--ignore", "--max-pdu", "131072", "-aet", "NOOP", "{port}",
        ],
        "pynetdicom 3.0": [PY, "-c", "{plain}"],
        "pynetdicom + Skylight transport": [PY, "-c", "{fast}"],
    }  # fmt: skip
    try:
        for name, template in variants.items():
            port = free_port()
            plain = PYNETDICOM_SCP.format(root=str(ROOT), skylight=False, port=port)
            fast = PYNETDICOM_SCP.format(root=str(ROOT), skylight=True, port=port)
            args = [a.format(port=port, plain=plain, fast=fast) for a in template]
            env = dict(os.environ, TCP_NODELAY="1")
            process = spawn(args, work / f"{port}.log", env=env)
            try:
                wait_for(lambda p=port: port_open("127.0.0.1", p), 30, name, 0.1)  # type: ignore[misc]
                rates = [storescu_rate(port, study.folder) for _ in range(runs)]
            finally:
                stop([process], grace=5)
            results[name] = {
                "runs": rates,
                "median_per_second": statistics.median(rates),
            }
            say(f"no-op SCP {name}: {statistics.median(rates):.0f} inst/s ({rates})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


# ---------------------------------------------------------------------------------------------
# Storage and database steps
# ---------------------------------------------------------------------------------------------


def s3_floor(n: int) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    process, endpoint = start_seaweedfs(work)
    try:
        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY, region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path", "payload_signing_enabled": False},
                retries={"max_attempts": 10},
                request_checksum_calculation="when_required",
            ),
        )  # fmt: skip
        for attempt in range(30):
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # noqa: BLE001 - the gateway answers before the filer is ready
                if attempt == 29:
                    raise
                time.sleep(1)
        body = os.urandom(OBJECT)
        for i in range(20):  # warm: connections, volume allocation
            client.put_object(Bucket=BUCKET, Key=f"warm/{i}", Body=body)
        samples = []
        for i in range(n):
            started = time.perf_counter()
            client.put_object(Bucket=BUCKET, Key=f"bench/{i}", Body=body, ContentLength=OBJECT)
            samples.append(time.perf_counter() - started)
    finally:
        stop([process], grace=0)
        shutil.rmtree(work, ignore_errors=True)
    result = latency(samples)
    say(f"S3 PUT 0.5 MB (SeaweedFS gateway): {result['median_ms']:.1f} ms median")
    return result


def fsync_floor(n: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="bench-fsync-", dir=ROOT / "bench" / ".cache"))
    body = os.urandom(OBJECT)
    samples = []
    try:
        for i in range(n):
            started = time.perf_counter()
            fd, tmp = tempfile.mkstemp(dir=directory)
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, directory / f"{i}.dcm")
            dir_fd = os.open(directory, os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)
            samples.append(time.perf_counter() - started)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    result = latency(samples)
    say(f"write+fsync+rename+fsync(dir) 0.5 MB: {result['median_ms']:.2f} ms median")
    return result


def pg_floor(n: int) -> dict[str, Any]:
    import psycopg

    database = f"bench_components_{os.getpid()}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}") as conn:
            conn.execute(
                "CREATE TABLE receipt (id bigserial PRIMARY KEY, object_id uuid, key text,"
                " size bigint, sha text, detail jsonb, at timestamptz DEFAULT now())"
            )
            conn.commit()
            samples = []
            for i in range(n):
                started = time.perf_counter()
                conn.execute(
                    "INSERT INTO receipt (object_id, key, size, sha, detail)"
                    " VALUES (gen_random_uuid(), %s, %s, %s, %s)",
                    (f"tenants/1/objects/{i:032x}.dcm", OBJECT, "ab" * 32, '{"size": 1}'),
                )
                conn.commit()
                samples.append(time.perf_counter() - started)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
    result = latency(samples)
    say(f"PostgreSQL INSERT + COMMIT: {result['median_ms']:.2f} ms median")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, prog="python -m bench.components")
    parser.add_argument(
        "which", nargs="?", default="all", choices=["all", "scp", "s3", "fsync", "pg"]
    )
    parser.add_argument("--n", type=int, default=300, help="samples per step")
    parser.add_argument("--runs", type=int, default=3, help="storescu runs per no-op SCP")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.which in ("all", "scp"):
        results["noop_scp"] = scp_floor(args.runs)
    if args.which in ("all", "s3"):
        results["s3_put"] = s3_floor(args.n)
    if args.which in ("all", "fsync"):
        results["fsync_put"] = fsync_floor(args.n)
    if args.which in ("all", "pg"):
        results["pg_insert_commit"] = pg_floor(args.n)
    print(f"results: {save('components', results)}", file=sys.stderr)


if __name__ == "__main__":
    main()
