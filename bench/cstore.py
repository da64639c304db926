"""C-STORE: one dcmtk ``storescu`` association sends a whole study.

Figures per run:

- ``instances_per_second``: instances / (storescu start → last C-STORE response). The start
  includes process start-up and association negotiation (a few ms), as for any sender.
- ``steady_per_second``: (instances - 1) / (first → last C-STORE response), without that start-up.
- ``queryable_after_last_response_s``: from the last C-STORE response until the target's probe
  sees every instance (and, for Skylight, no receipt pending).

The response times are taken as storescu reports each response (``-v``, read from a pipe as it
is written), so neither the release of the association nor process exit is counted.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from .common import Study
from .targets import PROBE_INTERVAL, Target, wait_queryable

CALLING_AE = "BENCHSCU"
RESPONSE = "Received Store Response"


def storescu(target: Target, study: Study, nodelay: bool = True) -> dict[str, Any]:
    args = [
        "storescu", "-v", "-aet", CALLING_AE, "-aec", target.called_ae,
        "+sd", "+r",  # every file under the folder, recursively
        target.dicom_host, str(target.dicom_port), str(study.folder),
    ]  # fmt: skip
    # DCMTK keeps Nagle's algorithm on unless TCP_NODELAY=1 (Debian's build); the benchmark client
    # turns it off, as Orthanc's own DCMTK is told to, so no target waits on delayed ACKs.
    env = dict(os.environ, TCP_NODELAY="1" if nodelay else "0")
    started = time.perf_counter()
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, bufsize=1
    )
    responses: list[float] = []
    failures: list[str] = []
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        now = time.perf_counter()
        if RESPONSE in line:
            responses.append(now)
            if "(Success)" not in line:
                failures.append(line.strip())
        tail = (tail + [line.rstrip()])[-20:]
    code = process.wait()
    if code != 0 or failures or len(responses) != study.instances:
        raise RuntimeError(
            f"storescu to {target.name}: exit {code}, {len(responses)} responses for "
            f"{study.instances} files, {len(failures)} failures; last output:\n" + "\n".join(tail)
        )
    return {"started": started, "responses": responses, "exited": time.perf_counter()}


def run_once(
    target: Target, study: Study, probe_interval: float = PROBE_INTERVAL
) -> dict[str, Any]:
    sent = storescu(target, study)
    started, responses = sent["started"], sent["responses"]
    last = responses[-1]
    lag = wait_queryable(target, study, since=last, interval=probe_interval)
    n = study.instances
    return {
        "instances": n,
        "bytes": study.bytes,
        "seed": study.seed,
        "seconds": last - started,
        "instances_per_second": n / (last - started),
        "steady_per_second": (n - 1) / (last - responses[0]) if n > 1 else None,
        "first_response_after_s": responses[0] - started,
        "mb_per_second": study.bytes / 1e6 / (last - started),
        **lag,
    }
