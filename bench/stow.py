"""STOW-RS: a whole study in one request, or in several sequential requests on one connection.

Each body is ``multipart/related; type="application/dicom"`` with one Part 10 file per part, built
in memory before the clock starts (157 MB for the 300-slice CT) and sent with a Content-Length.

Figures per run:

- ``instances_per_second``: instances / (first byte sent → last response read);
- ``queryable_after_s``: from the last response until the probe sees every instance.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .common import Reply, Study, connect, send
from .targets import PROBE_INTERVAL, Target, wait_queryable

PART_HEADER = b"Content-Type: application/dicom\r\n\r\n"


def content_type(boundary: str) -> str:
    return f'multipart/related; type="application/dicom"; boundary={boundary}'


def new_boundary() -> str:
    return f"bench-{uuid.uuid4().hex}"


def part_iter(paths: Iterable[Path], boundary: str, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """The body, part by part, read from the files as it is sent (nothing is held but a chunk)."""
    delimiter = f"--{boundary}\r\n".encode()
    for path in paths:
        yield delimiter + PART_HEADER
        with open(path, "rb") as f:
            while data := f.read(chunk):
                yield data
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def body_length(paths: Iterable[Path], boundary: str) -> int:
    """The exact length of ``part_iter``'s output, from the file sizes alone."""
    per_part = len(f"--{boundary}\r\n".encode()) + len(PART_HEADER) + 2
    total, count = 0, 0
    for path in paths:
        total += path.stat().st_size
        count += 1
    return total + count * per_part + len(f"--{boundary}--\r\n".encode())


def stow_headers(target: Target, boundary: str) -> dict[str, str]:
    return {
        **target.headers,
        "Content-Type": content_type(boundary),
        "Accept": "application/dicom+json",
    }


def check_reply(reply: Reply, expected: int, target: Target) -> int:
    """Raise unless every part was stored; return the number of referenced instances."""
    if reply.status != 200:
        raise RuntimeError(
            f"STOW-RS to {target.name} answered {reply.status}: {reply.body[:500]!r}"
        )
    answer = reply.json() or {}
    if isinstance(answer, list):  # some servers answer a JSON array of one data set
        answer = answer[0] if answer else {}
    failed = (answer.get("00081198") or {}).get("Value") or []
    referenced = (answer.get("00081199") or {}).get("Value") or []
    if failed or len(referenced) != expected:
        raise RuntimeError(
            f"STOW-RS to {target.name}: {len(referenced)} stored, {len(failed)} failed, "
            f"{expected} sent"
        )
    return len(referenced)


def run_once(
    target: Target, study: Study, requests: int = 1, probe_interval: float = PROBE_INTERVAL
) -> dict[str, Any]:
    files = list(study.files)
    size = -(-len(files) // requests)
    batches = [files[i : i + size] for i in range(0, len(files), size)]
    boundary = new_boundary()
    bodies = [b"".join(part_iter(batch, boundary)) for batch in batches]  # before the clock
    headers = stow_headers(target, boundary)
    conn = connect(target.stow_url, timeout=3600)
    try:
        started = time.perf_counter()
        answered = []
        for batch, body in zip(batches, bodies, strict=True):
            reply = send(conn, "POST", target.stow_url, headers, body)
            answered.append(time.perf_counter())
            check_reply(reply, len(batch), target)
    finally:
        conn.close()
    last = answered[-1]
    lag = wait_queryable(target, study, since=last, interval=probe_interval)
    return {
        "instances": len(files),
        "requests": len(batches),
        "bytes": sum(len(b) for b in bodies),
        "seed": study.seed,
        "seconds": last - started,
        "instances_per_second": len(files) / (last - started),
        "mb_per_second": sum(len(b) for b in bodies) / 1e6 / (last - started),
        "request_seconds": [b - a for a, b in zip([started, *answered], answered, strict=False)],
        **lag,
    }
