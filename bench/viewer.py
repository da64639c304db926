"""The viewer benchmark (issue 5): the same OHIF build opening the same 300-slice CT from
Skylight and from Orthanc, in headless Debian Chromium, on loopback and at an emulated 100 Mbit/s.

    python -m bench.run viewer --start-skylight disk [--viewer-runs 3] [--networks loopback,100mbit]

Targets
- Skylight: logged in through ``/login/`` as alice (a fresh browser context, so a cold cache),
  then ``/viewer/viewer?StudyInstanceUIDs=<uid>``: OHIF from Skylight's origin, its DICOMweb.
- OHIF + Orthanc: the SAME installed OHIF dist, configuration made by Skylight's own
  ``viewer.views.app_config``/``data_source``, served with Orthanc's DICOMweb behind a same-origin
  reverse proxy (``bench/ohif_proxy.py``), at the same launch URL.

Each run sends a fresh synthetic CT (``bench.common.ct_study``) to both by STOW-RS, waits until it
is queryable and, on Skylight, until the ``derive`` queue has made the series metadata (the
metadata answer carries an ETag) and ready frames (a frame asked for with ``transfer-syntax=*``
comes back in another syntax than the stored one; after ``--ready-timeout`` the run goes on and
says so). Then, after a quiet-CPU wait, each target in turn (alternating who is first):

- a new browser context; ``Network.emulateNetworkConditions`` through CDP for the 100 Mbit/s
  condition (12.5e6 bytes/s down and up, 2 ms latency), nothing on loopback;
- from the page's own clocks (``performance``, origin = navigation start): **first image** = the
  first poll (every 50 ms) that finds a viewport canvas showing the phantom (mid-grey soft tissue
  and white bone, the CANVAS_STATS idea of tests/viewer/test_viewer_browser.py); **first DICOMweb
  request** = the earliest resource entry under the data source root, and how long DICOMweb
  requests were in flight before the first image (the union of their spans: the server-bound
  part of that interval); **all frames** = the last ``responseEnd`` of the study's 300
  ``…/frames/1`` responses; bytes of the frames (transfer size, headers included, and body size)
  from the same entries;
- Playwright's events check every frame answered 200 and give the frames' Content-Type;
- CPU-seconds per process during the run, and the server's (Skylight's gunicorn and PostgreSQL
  backends, or Orthanc).

A table (medians, min–max) is printed; every run is in the JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from . import stow
from .common import (
    connect,
    cpu_by_process,
    cpu_delta,
    cpu_times,
    ct_study,
    forget_study,
    multipart_parts,
    say,
    send,
    summary,
    table,
    top_cpu,
    wait_quiet,
)
from .targets import Target

NETWORKS: dict[str, dict[str, Any] | None] = {
    "loopback": None,
    # 100 Mbit/s each way; 2 ms of latency is a good home or hospital link to a nearby region.
    "100mbit": {
        "offline": False,
        "latency": 2,
        "downloadThroughput": 12.5e6,
        "uploadThroughput": 12.5e6,
    },
}
ELE = "1.2.840.10008.1.2.1"
FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
POLL_MS = 50

# Before any script of the page: room for every resource entry (OHIF's chunks + 300 frames are
# more than the default 250), and a poll for the first image of the phantom.
INIT_SCRIPT = """
(() => {
  try { performance.setResourceTimingBufferSize(10000); } catch (e) {}
  window.__bench = {firstImage: null, stats: null, polls: 0};
  const timer = setInterval(() => {
    window.__bench.polls++;
    const c = [...document.querySelectorAll('canvas.cornerstone-canvas')]
      .filter(c => c.width > 64 && c.height > 64)[0];
    if (!c) return;
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0, dark = 0, mid = 0, bright = 0;
    for (let i = 0; i < data.length; i += 12) {  // every third pixel
      const g = (data[i] + data[i + 1] + data[i + 2]) / 3;
      n++;
      if (g <= 20) dark++;
      else if (g >= 90 && g <= 170) mid++;
      else if (g >= 230) bright++;
    }
    if (mid / n > 0.05 && bright / n > 0.0005) {
      window.__bench.firstImage = performance.now();
      window.__bench.stats = {dark: dark / n, mid: mid / n, bright: bright / n,
                              width: c.width, height: c.height};
      clearInterval(timer);
    }
  }, POLL_MS);
})();
""".replace("POLL_MS", str(POLL_MS))

# What the page's clocks say, in ms since navigation start.
STATE = """(root) => {
  const nav = performance.getEntriesByType('navigation')[0];
  const all = performance.getEntriesByType('resource');
  const mine = all.filter(e => e.name.startsWith(root));
  const frames = new Map();
  for (const e of mine) if (e.name.includes('/frames/')) frames.set(e.name, e);
  const f = [...frames.values()];
  const min = a => a.length ? Math.min(...a) : null;
  const max = a => a.length ? Math.max(...a) : null;
  const sum = a => a.reduce((x, y) => x + y, 0);
  // Time before the first image during which a DICOMweb request was in flight (merged spans).
  const shown = window.__bench && window.__bench.firstImage;
  let waiting = null;
  if (shown) {
    const spans = mine.filter(e => e.startTime < shown)
      .map(e => [e.startTime, Math.min(e.responseEnd || shown, shown)])
      .sort((a, b) => a[0] - b[0]);
    waiting = 0;
    let end = -1;
    for (const [a, b] of spans) {
      if (b <= end) continue;
      waiting += b - Math.max(a, end);
      end = b;
    }
  }
  return {
    waitingBeforeImage: waiting,
    firstImage: window.__bench ? window.__bench.firstImage : null,
    stats: window.__bench ? window.__bench.stats : null,
    domContentLoaded: nav ? nav.domContentLoadedEventEnd : null,
    resources: all.length,
    dicomweb: mine.length,
    firstRequest: min(mine.map(e => e.startTime)),
    firstFrameRequest: min(f.map(e => e.startTime)),
    firstFrameEnd: min(f.map(e => e.responseEnd)),
    metadataEnd: max(mine.filter(e => e.name.endsWith('/metadata')).map(e => e.responseEnd)),
    frames: f.length,
    lastFrameEnd: max(f.map(e => e.responseEnd)),
    frameTransferBytes: sum(f.map(e => e.transferSize)),
    frameBodyBytes: sum(f.map(e => e.encodedBodySize)),
    frameDecodedBytes: sum(f.map(e => e.decodedBodySize)),
    dicomwebTransferBytes: sum(mine.map(e => e.transferSize)),
  };
}"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    v = p.add_argument_group("viewer (bench.viewer)")
    v.add_argument("--viewer-runs", type=int, default=3, help="runs per target and network")
    v.add_argument(
        "--networks", default="loopback,100mbit", help=f"comma-separated, of {', '.join(NETWORKS)}"
    )
    v.add_argument("--viewer-password", default="", help="alice's password (default: the bench's)")
    v.add_argument("--ready-timeout", type=float, default=180, help="s to wait for ready frames")
    v.add_argument("--page-timeout", type=float, default=240, help="s for one viewer run")
    v.add_argument(
        "--quiet-max-wait", type=float, default=900, help="s to wait for quiet CPUs per run"
    )


@dataclass
class Viewer:
    """One system as the browser sees it."""

    name: str
    target: Target  # where studies are sent (STOW-RS) and probed
    origin: str  # the viewer's origin
    dicomweb_root: str  # the data source root, as the browser sees it
    login: tuple[str, str] | None = None  # user, password (Skylight)

    def launch_url(self, study_uid: str) -> str:
        return f"{self.origin}/viewer/viewer?StudyInstanceUIDs={study_uid}"


def viewers(args: argparse.Namespace, targets: list[Target], stack: ExitStack) -> list[Viewer]:
    from .ohif_proxy import ohif_on_orthanc

    out = []
    for target in targets:
        if target.kind == "orthanc":
            base = target.stow_url.split("/dicom-web")[0]
            server = stack.enter_context(ohif_on_orthanc(base))
            out.append(Viewer(f"ohif+{target.name}", target, server.origin, server.dicomweb_root))
        else:
            origin = target.stow_url.split("/t/")[0]
            # bench.launch seeds the demo users with this password; a running Skylight's is in
            # its environment.
            started = "benchmark-password" if args.start_skylight else ""
            password = args.viewer_password or started or os.environ.get("SKYLIGHT_DEMO_PASSWORD")
            if not password:
                raise SystemExit("--viewer-password: alice's password on this Skylight")
            out.append(
                Viewer(
                    f"ohif+{target.name}", target, origin, target.dicomweb_root,
                    login=("alice", password),
                )
            )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# The study, ready on every target
# ---------------------------------------------------------------------------------------------


def wait_viewer_ready(target: Target, study_uid: str, timeout: float) -> dict[str, Any]:
    """On Skylight: series metadata from the derived document (an ETag) and the syntax a frame
    comes in for ``transfer-syntax=*`` (ready frames: not the stored syntax). Orthanc: nothing
    to wait for; its answer's syntax is recorded."""
    root = target.dicomweb_root
    started = time.perf_counter()
    deadline = started + timeout
    conn = connect(root, timeout=120)
    out: dict[str, Any] = {}
    try:
        while True:
            reply = send(
                conn, "GET", f"{root}/studies/{study_uid}/metadata",
                {**target.headers, "Accept": "application/dicom+json"},
            )  # fmt: skip
            if reply.status != 200:
                raise RuntimeError(f"{target.name}: study metadata answered {reply.status}")
            if target.kind != "skylight" or reply.headers.get("etag"):
                break
            if time.perf_counter() > deadline:
                out["metadata_derived"] = False
                break
            time.sleep(1)
        if target.kind == "skylight":
            out.setdefault("metadata_derived", bool(reply.headers.get("etag")))
        out["metadata_after_s"] = round(time.perf_counter() - started, 2)
        documents = reply.json()
        last = max(documents, key=lambda d: int(d.get("00200013", {}).get("Value", [0])[0]))
        series = last["0020000E"]["Value"][0]
        instance = last["00080018"]["Value"][0]
        url = f"{root}/studies/{study_uid}/series/{series}/instances/{instance}/frames/1"
        while True:
            reply = send(conn, "GET", url, {**target.headers, "Accept": FRAME_ACCEPT})
            if reply.status != 200:
                raise RuntimeError(f"{target.name}: a frame answered {reply.status}")
            syntax = frame_syntax(reply)
            ready = syntax not in ("", ELE)
            if target.kind != "skylight" or ready or time.perf_counter() > deadline:
                break
            time.sleep(1)
        out.update(frame_syntax=syntax, frame_bytes=len(reply.body))
        if target.kind == "skylight":
            out.update(ready_frames=ready, ready_after_s=round(time.perf_counter() - started, 2))
    finally:
        conn.close()
    return out


def frame_syntax(reply: Any) -> str:
    """The transfer syntax a frame came in: the part's Content-Type, else the response's."""
    for headers, _ in multipart_parts(reply)[:1]:
        found = _syntax_param(headers.get("content-type", ""))
        if found:
            return found
    return _syntax_param(reply.headers.get("content-type", ""))


def _syntax_param(content_type: str) -> str:
    for param in content_type.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "transfer-syntax":
            return value.strip().strip('"')
    return ""


# ---------------------------------------------------------------------------------------------
# One browser run
# ---------------------------------------------------------------------------------------------


def browse(
    browser: Any, viewer: Viewer, study_uid: str, slices: int, network: str, timeout: float
) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        if viewer.login:
            user, password = viewer.login
            page.goto(f"{viewer.origin}/login/?next=/")
            page.fill("#id_username", user)
            page.fill("#id_password", password)
            page.click("form.login button[type=submit]")
            page.wait_for_url(f"{viewer.origin}/")
        context.add_init_script(INIT_SCRIPT)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        conditions = NETWORKS[network]
        if conditions:
            cdp.send("Network.emulateNetworkConditions", conditions)
        statuses: dict[int, int] = {}
        types: set[str] = set()
        finished: set[str] = set()
        failed: list[str] = []

        def on_response(response: Any) -> None:
            if "/frames/" in response.url:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                types.add(without_boundary(response.headers.get("content-type", "")))
            elif response.status >= 400:
                failed.append(f"{response.status} {response.url.split('?')[0][-80:]}")

        def on_finished(request: Any) -> None:
            if "/frames/" in request.url:
                finished.add(request.url)

        page.on("response", on_response)
        page.on("requestfinished", on_finished)
        page.goto(viewer.launch_url(study_uid), wait_until="commit")
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            page.wait_for_timeout(250)
            if len(finished) >= slices:
                state = page.evaluate(STATE, viewer.dicomweb_root)
                if state["firstImage"] is not None and state["frames"] >= slices:
                    break
        else:
            state = page.evaluate(STATE, viewer.dicomweb_root)
            state["error"] = f"timed out after {timeout:.0f}s ({len(finished)} frames finished)"
        return summarise_run(state, statuses, types, failed, len(finished), slices)
    finally:
        context.close()


def without_boundary(content_type: str) -> str:
    """A Content-Type without its boundary parameter (a new one per response)."""
    return ";".join(
        p for p in content_type.split(";") if not p.strip().lower().startswith("boundary=")
    ).strip()


SYNTAX_NAMES = {
    ELE: "explicit VR LE",
    "1.2.840.10008.1.2": "implicit VR LE",
    "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
    "1.2.840.10008.1.2.4.201": "HTJ2K lossless",
    "1.2.840.10008.1.2.4.202": "HTJ2K lossless RPCL",
    "1.2.840.10008.1.2.5": "RLE lossless",
}


def syntaxes_in(content_types: list[str]) -> list[str]:
    """The transfer syntaxes named in the frames' Content-Types (inside ``type=`` or not)."""
    found = {m for t in content_types for m in re.findall(r"transfer-syntax=([0-9.*]+)", t)}
    return sorted(found)


def summarise_run(
    state: dict[str, Any],
    statuses: dict[int, int],
    types: set[str],
    failed: list[str],
    finished: int,
    slices: int,
) -> dict[str, Any]:
    def s(ms: float | None) -> float | None:
        return None if ms is None else round(ms / 1000, 3)

    first_image, first_request = state.get("firstImage"), state.get("firstRequest")
    row: dict[str, Any] = {
        "first_image_s": s(first_image),
        "server_share_s": s(first_image - first_request)
        if first_image is not None and first_request is not None
        else None,
        "all_frames_s": s(state.get("lastFrameEnd")) if state.get("frames", 0) >= slices else None,
        "dicomweb_in_flight_before_image_s": s(state.get("waitingBeforeImage")),
        "dom_content_loaded_s": s(state.get("domContentLoaded")),
        "first_dicomweb_request_s": s(first_request),
        "metadata_end_s": s(state.get("metadataEnd")),
        "first_frame_request_s": s(state.get("firstFrameRequest")),
        "first_frame_end_s": s(state.get("firstFrameEnd")),
        "frames_timed": state.get("frames", 0),
        "frames_finished": finished,
        "frame_statuses": statuses,
        "frame_content_types": sorted(types),
        "frame_syntaxes": syntaxes_in(sorted(types)),
        "frame_transfer_mb": round(state.get("frameTransferBytes", 0) / 1e6, 2),
        "frame_body_mb": round(state.get("frameBodyBytes", 0) / 1e6, 2),
        "dicomweb_transfer_mb": round(state.get("dicomwebTransferBytes", 0) / 1e6, 2),
        "canvas": state.get("stats"),
        "failed_requests": failed[:20],
    }
    if state.get("error"):
        row["error"] = state["error"]
    elif set(statuses) != {200}:
        row["error"] = f"frame statuses {statuses}"
    return row


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------

METRICS = [
    ("first_image_s", "nav→first image (s)"),
    ("server_share_s", "1st DICOMweb req→first image (s)"),
    ("dicomweb_in_flight_before_image_s", "DICOMweb in flight before (s)"),
    ("all_frames_s", "nav→all frames (s)"),
    ("dom_content_loaded_s", "DOMContentLoaded (s)"),
    ("first_dicomweb_request_s", "1st DICOMweb req (s)"),
    ("metadata_end_s", "metadata end (s)"),
    ("first_frame_end_s", "1st frame end (s)"),
    ("frame_transfer_mb", "frames MB"),
    ("server_cpu_s", "server CPU (s)"),
]


def run(args: argparse.Namespace, targets: list[Target], seed: int) -> dict[str, Any]:
    from tests.browser import chromium

    networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    unknown = set(networks) - set(NETWORKS)
    if unknown:
        raise SystemExit(f"unknown --networks {sorted(unknown)}; known: {', '.join(NETWORKS)}")
    rows: dict[str, list[dict[str, Any]]] = {}
    prepared: list[dict[str, Any]] = []
    with ExitStack() as stack:
        views = viewers(args, targets, stack)
        browser = stack.enter_context(chromium())
        run_index = 0
        for network in networks:
            for run_no in range(args.viewer_runs):
                study = ct_study(seed + run_index, slices=args.slices)
                ready: dict[str, Any] = {}
                for view in views:
                    sent = stow.run_once(view.target, study, 1)
                    ready[view.name] = {
                        "stow_s": round(sent["seconds"], 2),
                        **wait_viewer_ready(view.target, study.study_uid, args.ready_timeout),
                    }
                    say(f"{study.instances} slices on {view.name}: {ready[view.name]}")
                prepared.append({"seed": study.seed, "network": network, "targets": ready})
                order = views if run_index % 2 == 0 else list(reversed(views))
                for view in order:
                    quiet = wait_quiet(args.max_busy, max_wait=args.quiet_max_wait)
                    processes, cpu = cpu_by_process(), cpu_times()
                    row = browse(
                        browser, view, study.study_uid, study.instances, network, args.page_timeout
                    )
                    used = top_cpu(processes, n=200)
                    row.update(
                        **cpu_delta(cpu), top_cpu=used[:12], server_cpu_s=server_cpu(view, used)
                    )
                    row.update(
                        run=run_no + 1, seed=study.seed, **quiet,
                        probe_frame_syntax=ready[view.name].get("frame_syntax"),
                    )  # fmt: skip
                    rows.setdefault(f"{network}/{view.name}", []).append(row)
                    say(f"{network} {view.name} run {run_no + 1}: {brief(row)}")
                if not args.keep_data:
                    forget_study(study)
                run_index += 1
    summaries = {
        key: {
            **{m: summary([r[m] for r in rs if r.get(m) is not None]) for m, _ in METRICS},
            "runs": len(rs),
            "errors": sum(1 for r in rs if r.get("error")),
            "all_quiet": all(r.get("quiet", True) for r in rs),
            # What the browser got: the frames' Content-Type, else what the harness's probe got.
            "frame_syntaxes": sorted(
                {x for r in rs for x in r.get("frame_syntaxes") or [r.get("probe_frame_syntax")]}
            ),
        }
        for key, rs in rows.items()
    }
    print()
    print_table(summaries)
    return {
        "networks": {n: NETWORKS[n] for n in networks},
        "first_image_poll_ms": POLL_MS,
        "prepared": prepared,
        "runs": rows,
        "summary": summaries,
    }


def server_cpu(view: Viewer, used: list[tuple[str, float]]) -> float:
    """CPU-seconds the server used during a browser run: Skylight's gunicorn and its PostgreSQL
    backends, or the Orthanc process (the bench's proxy in front of it is not counted)."""
    if view.target.kind == "orthanc":
        mine = [s for name, s in used if name.startswith("/usr/sbin/Orthanc")]
    else:
        port = f"127.0.0.1:{view.target.web_port}"
        database = str(view.target.notes.get("database_url", "")).rsplit("/", 1)[-1] or "?"
        mine = [
            s
            for name, s in used
            if ("gunicorn" in name and port in name)
            or (name.startswith("postgres: ") and f" {database} " in f"{name} ")
        ]
    return round(sum(mine), 2)


def brief(row: dict[str, Any]) -> str:
    parts = [
        f"first image {row['first_image_s']}s",
        f"server share {row['server_share_s']}s",
        f"all frames {row['all_frames_s']}s",
        f"{row['frame_transfer_mb']} MB of frames",
        f"server CPU {row.get('server_cpu_s')}s",
    ]
    if row.get("error"):
        parts.append(f"ERROR {row['error'][:120]}")
    if not row.get("quiet", True):
        parts.append(f"NOT QUIET ({row['busy_before']:.0%} busy before)")
    return ", ".join(parts)


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    """Medians with (min–max) over the runs."""

    def cell(s: dict[str, float]) -> str:
        if not s:
            return "—"
        if s["n"] == 1:
            return f"{s['median']:.2f}"
        return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"

    header = ["network / target", "runs", *(label for _, label in METRICS), "frames syntax"]
    lines = []
    for key, s in summaries.items():
        note = "" if s["all_quiet"] else " (busy)"
        note += f" {s['errors']} errors" if s["errors"] else ""
        syntaxes = ", ".join(SYNTAX_NAMES.get(x, x) for x in s["frame_syntaxes"])
        lines.append([key + note, str(s["runs"]), *(cell(s[m]) for m, _ in METRICS), syntaxes])
    print(table(header, lines), flush=True)
