"""What the benchmarks share: test data, HTTP, process memory, machine facts, timing, results.

Nothing here talks to Skylight's code: the data comes from the deterministic synthetic generator
(``studies/dicom/synthetic.py``, which is free of Django), and every measurement goes through a
standard protocol (see ``targets.py``).
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

T = TypeVar("T")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with closing(socket.socket()) as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def wait_for(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Test data: synthetic CT studies, one seed per run so that no run sends a duplicate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    seed: int
    folder: Path
    study_uid: str
    accession_number: str
    files: tuple[Path, ...]

    @property
    def instances(self) -> int:
        return len(self.files)

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def ct_study(seed: int, slices: int = 300, rows: int = 512, columns: int = 512) -> Study:
    """A synthetic CT (one series) on disk under bench/.cache, made once per seed."""
    from studies.dicom import synthetic

    spec = synthetic.simple_spec(
        seed=seed, modality="CT", slices=slices, rows=rows, columns=columns, series_count=1,
        patient_id=f"BENCH{seed}", body_part="CHEST",
    )  # fmt: skip
    folder = CACHE / f"ct-{seed}-{slices}x{rows}x{columns}"
    done = folder.with_name(folder.name + ".done")  # outside the folder: storescu +sd sends all
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        synthetic.write_study(spec, folder)
        done.touch()
        say(f"made {slices} slices (seed {seed}) in {time.perf_counter() - started:.1f}s")
    files = tuple(sorted(folder.rglob("*.dcm")))
    if len(files) != slices:
        raise RuntimeError(f"{folder} holds {len(files)} files, expected {slices}")
    return Study(seed, folder, synthetic.study_uid(spec), spec.accession_number, files)


def forget_study(study: Study) -> None:
    shutil.rmtree(study.folder, ignore_errors=True)
    study.folder.with_name(study.folder.name + ".done").unlink(missing_ok=True)


def settle_disk() -> None:
    """Write back dirty pages (freshly made test data) so that no benchmark pays for them."""
    os.sync()
    time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# HTTP (http.client: one connection, no hidden retries, bodies from bytes or iterators)
# ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


def connect(url: str, timeout: float = 60) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only plain http:// URLs are supported here, got {url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def send(
    conn: http.client.HTTPConnection,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | Iterator[bytes] | None = None,
    chunked: bool = False,
) -> Reply:
    conn.request(method, path_of(url), body=body, headers=headers or {}, encode_chunked=chunked)
    response = conn.getresponse()
    data = response.read()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


def get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> Any:
    conn = connect(url, timeout)
    try:
        reply = send(conn, "GET", url, {"Accept": "application/json", **(headers or {})})
    finally:
        conn.close()
    if reply.status == 404:
        return None
    if reply.status != 200:
        raise RuntimeError(f"GET {url} answered {reply.status}: {reply.body[:300]!r}")
    return reply.json()


# ---------------------------------------------------------------------------------------------
# Process memory, from /proc/<pid>/status
# ---------------------------------------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(value.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/PID/clear_refs``, Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def listening_pids(port: int) -> list[int]:
    """Every process holding the listening socket of a local TCP port (a pre-fork server's master
    and its workers all hold it)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    pids = {int(p) for p in _find_all(out, "pid=")}
    return sorted(pids)


def _find_all(text: str, marker: str) -> Iterator[str]:
    start = 0
    while (i := text.find(marker, start)) >= 0:
        j = i + len(marker)
        k = j
        while k < len(text) and text[k].isdigit():
            k += 1
        yield text[j:k]
        start = k


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def server_workers(port: int) -> list[int]:
    """The processes that serve requests on a port: a pre-fork server's workers (not its master),
    or the single process of a threaded server."""
    pids = listening_pids(port)
    workers = [p for p in pids if parent_of(p) in pids]
    return workers or pids


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` (a check that nothing else is running)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def busiest_processes(n: int = 5) -> list[str]:
    out = subprocess.run(
        ["ps", "-eo", "pcpu,pid,comm", "--sort=-pcpu", "--no-headers"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [" ".join(line.split()) for line in out.splitlines()[:n]]


def _version(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unavailable"


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions: dict[str, str] = {
        "python": platform.python_version(),
        "orthanc": _version(["/usr/sbin/Orthanc", "--version"]),
        "orthanc-dicomweb": _version(["dpkg-query", "-W", "-f=${Version}", "orthanc-dicomweb"]),
        "dcmtk storescu": _version(["storescu", "--version"]),
        "postgresql": _version(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"]),
        "redis": _version(["redis-server", "--version"]),
        "seaweedfs": _version([str(Path(PY).parent / "weed"), "version"]),
    }  # fmt: skip
    try:
        import boto3
        import django
        import gunicorn
        import pydicom
        import pynetdicom

        versions.update(
            django=django.__version__, gunicorn=gunicorn.__version__, boto3=boto3.__version__,
            pydicom=pydicom.__version__, pynetdicom=pynetdicom.__version__,
        )  # fmt: skip
    except ImportError:
        pass
    git = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(meminfo[1]) / 1024**2, 1),
        "kernel": platform.release(),
        "versions": versions,
        "skylight_commit": git,
        "skylight_dirty": bool(
            subprocess.run(
                ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        ),
    }


# ---------------------------------------------------------------------------------------------
# Figures and results
# ---------------------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt(s: dict[str, float], digits: int = 0) -> str:
    """'median (min–max)'."""
    if not s:
        return "—"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def wait_quiet(max_busy: float, max_wait: float = 900, window: float = 2.0) -> dict[str, Any]:
    """Wait until the CPUs are idle enough (other work on a 2-core machine skews every figure);
    returns what was seen, so that a run taken on a busy machine says so."""
    started = time.monotonic()
    busy = cpu_busy(window)
    while busy > max_busy and time.monotonic() - started < max_wait:
        if time.monotonic() - started < window * 1.5:
            say(f"CPUs {busy:.0%} busy; waiting for < {max_busy:.0%}: {busiest_processes(3)}")
        busy = cpu_busy(window)
    waited = time.monotonic() - started - window
    return {
        "busy_before": round(busy, 3),
        "waited_s": round(waited, 1),
        "quiet": busy <= max_busy,
        "busiest": [] if busy <= max_busy else busiest_processes(5),
    }


def cpu_times() -> dict[str, float]:
    """Machine-wide CPU-seconds since boot (all CPUs): busy (user, nice, system, irq, softirq),
    idle (with iowait) and steal (taken by the hypervisor for other guests: a VM's noise)."""
    f = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return {
        "busy": (f[0] + f[1] + f[2] + f[5] + f[6]) / tick,
        "idle": (f[3] + f[4]) / tick,
        "steal": f[7] / tick,
    }


def cpu_delta(before: dict[str, float]) -> dict[str, float]:
    after = cpu_times()
    d = {k: after[k] - before[k] for k in before}
    total = sum(d.values()) or 1.0
    return {
        "machine_cpu_seconds": round(d["busy"], 2),
        "steal_share": round(d["steal"] / total, 3),
    }


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """CPU-seconds of every live process and its waited-for children, with its command line."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        name = cmdline.strip() or stat[stat.find("(") + 1 : stat.rfind(")")]
        # utime + stime, plus cutime + cstime: children that ended and were waited for (short
        # PostgreSQL backends, storescu) count for their parent.
        out[int(entry.name)] = (name[:120], sum(int(f) for f in fields[11:15]) / tick)
    return out


def top_cpu(before: dict[int, tuple[str, float]], n: int = 12) -> list[tuple[str, float]]:
    """CPU-seconds used since ``before`` by command line (processes with the same command line,
    such as PostgreSQL backends of one database, are added up; new processes count from zero,
    processes that ended meanwhile are missing)."""
    used: dict[str, float] = {}
    for pid, (name, seconds) in cpu_by_process().items():
        key = name.split("(")[0].strip() if name.startswith("postgres: ") else name
        used[key] = used.get(key, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    return sorted(
        ((name, round(s, 2)) for name, s in used.items() if s > 0.05), key=lambda u: -u[1]
    )[:n]


# ---------------------------------------------------------------------------------------------
# Latency: many small requests on one kept-alive connection
# ---------------------------------------------------------------------------------------------


def latency(seconds: list[float]) -> dict[str, float]:
    """p50, p95 and p99 (linear interpolation between order statistics), mean, min and max, in
    milliseconds, and n."""
    if not seconds:
        return {}
    ms = sorted(1000 * s for s in seconds)

    def pct(q: float) -> float:
        position = q * (len(ms) - 1)
        low = int(position)
        high = min(low + 1, len(ms) - 1)
        return ms[low] + (ms[high] - ms[low]) * (position - low)

    return {
        "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "mean": statistics.fmean(ms),
        "min": ms[0], "max": ms[-1], "n": len(ms),
    }  # fmt: skip


class KeptAlive:
    """GETs on one HTTP/1.1 connection, timed from the request's first byte to the body's last.

    A connection the server has closed meanwhile (Orthanc's web server closes one idle for
    half a second; ``Connection: close``; an error) is replaced before the clock starts, with
    TCP_NODELAY as before, and a request the server dropped at that very moment is sent again;
    ``reconnects`` counts both.
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.headers = headers or {}
        self.conn = connect(self.base_url)
        self.reconnects = 0

    def _reconnect(self) -> None:
        self.conn.close()
        self.conn = connect(self.base_url)
        self.reconnects += 1

    def _dropped(self) -> bool:
        sock = self.conn.sock
        if sock is None:
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[float, Reply]:
        url = self.base_url + path
        for attempt in (1, 2):
            if self._dropped():
                self._reconnect()
            started = time.perf_counter()
            try:
                reply = send(self.conn, "GET", url, {**self.headers, **(headers or {})})
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 2:
                    raise
                self._reconnect()
                continue
            return time.perf_counter() - started, reply
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def multipart_parts(reply: Reply) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related body: (headers with lower-case names, content)."""
    content_type = reply.headers.get("content-type", "")
    boundary = next(
        (
            p.split("=", 1)[1].strip().strip('"')
            for p in content_type.split(";")
            if p.strip().lower().startswith("boundary=")
        ),
        "",
    )
    if not boundary:
        return []
    parts = []
    for chunk in reply.body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content.removesuffix(b"\r\n")))
    return parts


@dataclass
class Sample:
    """One timed request: seconds, the status (HTTP code or DIMSE status), whether it is a
    success (the right status and, where the caller can tell, the right answer), and for a
    failure a short note (the error's first words, a wrong result count)."""

    seconds: float
    status: int
    ok: bool
    note: str = ""
    protocol: str = "HTTP"  # or "DIMSE"

    def describe(self) -> str:
        note = " ".join(self.note.split())
        if self.protocol == "DIMSE":
            code = f"status 0x{self.status:04X}" if self.status >= 0 else "no status"
            return f"DIMSE {code}: {note}"
        return f"HTTP {self.status}: {note}"


def run_latency(
    calls: dict[str, Callable[[int], Sample]],
    repeats: int,
    rounds: int = 4,
    warmup: int = 20,
    max_busy: float = 0.15,
    max_steal: float = 0.10,
    steal_retries: int = 3,
) -> dict[str, dict[str, Any]]:
    """Time ``repeats`` calls per target (``calls[name](i)``, i the request's index, so that the
    caller rotates its keys), after ``warmup`` untimed ones.

    The repeats are taken in ``rounds`` blocks, alternating which target goes first; before each
    block the CPUs must be quiet, and a block during which the hypervisor stole more than
    ``max_steal`` of the CPU time is taken again (at most ``steal_retries`` times). A target whose
    warm-up calls all failed is reported as unavailable with its status and note, not timed.
    """
    out: dict[str, dict[str, Any]] = {}
    live = []
    for name, call in calls.items():
        tried = [call(i) for i in range(warmup)]
        if not any(s.ok for s in tried):
            first = tried[0] if tried else Sample(0, 0, False, "no warm-up")
            out[name] = {"unavailable": first.describe()[:300]}
            say(f"  {name}: unavailable ({out[name]['unavailable']})")
            continue
        out[name] = {"samples": [], "statuses": {}, "notes": {}, "blocks": [], "discarded": [],
                     "errors": 0}  # fmt: skip
        live.append(name)
    per_block = -(-repeats // rounds)
    for block in range(rounds):
        order = live if block % 2 == 0 else list(reversed(live))
        for name in order:
            result, call = out[name], calls[name]
            start = block * per_block
            count = min(per_block, repeats - start)
            for attempt in range(steal_retries + 1):
                quiet = wait_quiet(max_busy)
                before = cpu_times()
                taken = [call(start + i) for i in range(count)]
                conditions = {**cpu_delta(before), **quiet, "block": block + 1}
                if conditions["steal_share"] <= max_steal or attempt == steal_retries:
                    break
                result["discarded"].append(conditions)
                say(
                    f"  {name}: block {block + 1} discarded (steal {conditions['steal_share']:.0%})"
                )
            result["blocks"].append(conditions)
            for s in taken:
                result["statuses"][str(s.status)] = result["statuses"].get(str(s.status), 0) + 1
                if s.ok:
                    result["samples"].append(s.seconds)
                    continue
                result["errors"] += 1
                result["notes"][s.note] = result["notes"].get(s.note, 0) + 1
    for name in live:
        r = out[name]
        r["latency_ms"] = latency(r["samples"])
        r["all_quiet"] = all(b["quiet"] for b in r["blocks"])
        r["steal_share_max"] = max(b["steal_share"] for b in r["blocks"])
        r["samples_ms"] = [round(1000 * s, 3) for s in r.pop("samples")]
        say(f"  {name}: {brief_latency(r)}")
    return out


def brief_latency(r: dict[str, Any]) -> str:
    if "unavailable" in r:
        return f"unavailable ({r['unavailable']})"
    lat = r.get("latency_ms") or {}
    text = (
        f"p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, p99 {lat['p99']:.2f} ms (n={lat['n']})"
        if lat
        else "no successful request"
    )
    if r.get("errors"):
        text += f", {r['errors']} errors {r['notes']}"
    if not r.get("all_quiet", True):
        text += ", NOT QUIET"
    return text
