"""One ~1 GB STOW-RS request (2000 × 512×512 CT slices), and the web processes' memory meanwhile.

The client streams the body from the files on disk part by part, so it never holds more than a
1 MiB chunk: with a Content-Length computed up front from the file sizes (default), or with
chunked transfer encoding (``chunked=True``).

Memory is read from ``/proc/<pid>/status`` of every process that serves HTTP on the target's port
(gunicorn's workers, not its master; Orthanc's single process):

- each process's peak (``VmHWM``), reset to its current RSS just before the request
  (``/proc/<pid>/clear_refs``), so the figure is this request's peak even in a worker that has
  served others; reported as the max over workers and their sum;
- ``VmRSS`` sampled every 50 ms: the peak of the per-process maximum and of the sum.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .common import Study, connect, memory_kib, reset_peak, send
from .stow import body_length, check_reply, new_boundary, part_iter, stow_headers
from .targets import Target, wait_queryable

MIB = 1024


class MemorySampler(threading.Thread):
    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.stopped = threading.Event()
        self.peak_each: dict[int, int] = dict.fromkeys(pids, 0)
        self.peak_sum = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            total = 0
            for pid in self.pids:
                try:
                    rss = memory_kib(pid)["VmRSS"]
                except (OSError, KeyError):
                    continue
                self.peak_each[pid] = max(self.peak_each[pid], rss)
                total += rss
            self.peak_sum = max(self.peak_sum, total)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def run_once(
    target: Target, study: Study, chunked: bool = False, wait_indexed: bool = True
) -> dict[str, Any]:
    files = list(study.files)
    boundary = new_boundary()
    length = body_length(files, boundary)
    headers = stow_headers(target, boundary)
    if not chunked:
        headers["Content-Length"] = str(length)
    pids = target.web_pids()
    if not pids:
        raise RuntimeError(f"no process listens on {target.name}'s web port {target.web_port}")
    reset = all(reset_peak(pid) for pid in pids)
    before = {pid: memory_kib(pid) for pid in pids}
    sampler = MemorySampler(pids)
    sampler.start()
    result: dict[str, Any] = {
        "instances": len(files),
        "body_bytes": length,
        "seed": study.seed,
        "transfer": "chunked" if chunked else "content-length",
        "web_pids": pids,
        "peak_reset": reset,
    }
    conn = connect(target.stow_url, timeout=3600)
    started = time.perf_counter()
    try:
        reply = send(conn, "POST", target.stow_url, headers, part_iter(files, boundary), chunked)
        elapsed = time.perf_counter() - started
        result["status"] = reply.status
        check_reply(reply, len(files), target)
        result["stored"] = True
    except (OSError, RuntimeError) as exc:  # Orthanc may refuse or drop a 1 GB body
        elapsed = time.perf_counter() - started
        result["stored"] = False
        result["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
    finally:
        conn.close()
        sampler.stop()
    after = {pid: memory_kib(pid) for pid in pids if _alive(pid)}
    result.update(
        seconds=elapsed,
        instances_per_second=len(files) / elapsed,
        mb_per_second=length / 1e6 / elapsed,
        rss_before_mib={pid: m["VmRSS"] / MIB for pid, m in before.items()},
        rss_after_mib={pid: m["VmRSS"] / MIB for pid, m in after.items()},
        peak_mib={pid: m["VmHWM"] / MIB for pid, m in after.items()},
        peak_max_mib=max((m["VmHWM"] for m in after.values()), default=0) / MIB,
        peak_sum_mib=sum(m["VmHWM"] for m in after.values()) / MIB,
        sampled_peak_max_mib=max(sampler.peak_each.values(), default=0) / MIB,
        sampled_peak_sum_mib=sampler.peak_sum / MIB,
    )
    if result["stored"] and wait_indexed:
        result.update(wait_queryable(target, study, since=started + elapsed))
    return result


def _alive(pid: int) -> bool:
    try:
        memory_kib(pid)
        return True
    except OSError:
        return False
