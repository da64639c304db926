"""Worklist latency (issue 4): radiologists polling their reading list while others claim.

Data: ``bench.populate_worklist`` bulk-fills Skylight's PostgreSQL (100,000 work items over 20
tenants, three reading groups, 50 radiologists with licences and privileges, then ``ANALYZE``)
and issues a fresh bearer token per radiologist.

Phases, each after a quiet-CPU wait, each ``--worklist-seconds`` long:

- ``worklist-list``: ``--pollers`` simulated radiologists (threads), each on its own kept-alive
  connection with its own token, ``GET /api/worklist/items/?limit=50`` every ``--poll-interval``
  seconds from a random phase (so the requests arrive spread, as independent browsers do). A poll
  is sent at its scheduled time whatever the previous answer took (no coordinated omission: a
  slow answer delays only that radiologist's next poll, and ``late_polls`` counts those).
- ``worklist-list+claims``: the same pollers, plus ``--claimers`` threads that each, every
  ``--claim-interval`` seconds, pick a radiologist and an unheld item from that radiologist's
  latest page, ``POST …/claim/``, hold it ``--claim-hold`` seconds and ``POST …/release/`` (so
  the data stays as loaded). Claims and releases are timed on their own connections; a 409 (the
  item was taken meanwhile) is a correct answer, counted apart.

Every answer is checked (status, a JSON page of ``min(50, count)`` results; a claim's
``lease_token``). Orthanc has no reading worklist, so its row only says so.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import populate_worklist, query
from .common import (
    KeptAlive,
    Reply,
    Sample,
    cpu_by_process,
    cpu_delta,
    cpu_times,
    latency,
    say,
    send,
    top_cpu,
    wait_quiet,
)
from .targets import Target

LIST_PATH = "/api/worklist/items/?limit={limit}"
CLAIM_PATH = "/api/worklist/items/{id}/claim/"
RELEASE_PATH = "/api/worklist/items/{id}/release/"
NO_ORTHANC = "no equivalent: Orthanc has no reading worklist"


class Connection(KeptAlive):
    """KeptAlive with POST: a JSON body, timed the same way as a GET."""

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[float, Reply]:
        data = json.dumps(body).encode()
        merged = {**self.headers, **headers, "Content-Type": "application/json"}
        for attempt in (1, 2):
            if self._dropped():
                self._reconnect()
            started = time.perf_counter()
            try:
                reply = send(self.conn, "POST", self.base_url + path, merged, data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # Dropped as it was sent (an idle keep-alive closing): a claim or release is
                # safe to repeat for the same radiologist, so send it once more.
                if attempt == 2:
                    raise
                self._reconnect()
                continue
            return time.perf_counter() - started, reply
        raise AssertionError("unreachable")


FAILURES = (OSError, http.client.HTTPException)


# ---------------------------------------------------------------------------------------------
# The simulated radiologists
# ---------------------------------------------------------------------------------------------


@dataclass
class Poller:
    name: str
    token: str
    base_url: str
    limit: int
    samples: list[Sample] = field(default_factory=list)
    late: int = 0
    count: int = -1  # the API's count in the latest answer
    free: list[int] = field(default_factory=list)  # unheld items of the latest page
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: Connection | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def connect(self) -> None:
        if self.client is None:
            self.client = Connection(self.base_url, self.auth)

    def poll(self) -> Sample:
        """One list request, timed; its answer is checked after the clock."""
        self.connect()
        assert self.client is not None
        try:
            seconds, reply = self.client.get(LIST_PATH.format(limit=self.limit))
        except FAILURES as exc:
            self.close()
            return Sample(0.0, 0, False, f"{type(exc).__name__}: {exc}"[:160])
        if reply.status != 200:
            return Sample(seconds, reply.status, False, reply.body[:160].decode("utf-8", "replace"))
        try:
            page = reply.json()
            count, results = int(page["count"]), page["results"]
        except (ValueError, KeyError, TypeError) as exc:
            return Sample(seconds, reply.status, False, f"not a page: {exc}"[:160])
        with self.lock:
            self.count = count
            self.free = [r["id"] for r in results if not r.get("holder")]
        if len(results) != min(self.limit, count):
            return Sample(seconds, 200, False, f"{len(results)} results of {count}")
        return Sample(seconds, 200, True)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def run_pollers(
    pollers: list[Poller], interval: float, seconds: float, stop: threading.Event, seed: int
) -> list[threading.Thread]:
    """Start one thread per poller: a poll every ``interval`` s from a random phase, for
    ``seconds``; each poller's samples are its own (replaced at the start)."""
    rng = random.Random(seed)
    start = time.perf_counter() + 0.2
    end = start + seconds
    threads = []
    for p in pollers:
        p.samples, p.late = [], 0
        phase = rng.uniform(0, interval)

        def loop(p: Poller = p, phase: float = phase) -> None:
            k = 0
            while not stop.is_set():
                due = start + phase + k * interval
                if due >= end:
                    break
                if stop.wait(max(0.0, due - time.perf_counter())):
                    break
                if time.perf_counter() - due > 0.5:
                    p.late += 1
                p.samples.append(p.poll())
                k += 1

        thread = threading.Thread(target=loop, name=f"poll-{p.name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


@dataclass
class Claims:
    claim: list[Sample] = field(default_factory=list)
    release: list[Sample] = field(default_factory=list)
    conflicts: int = 0
    skipped: int = 0  # no poller had a free item to offer


def claim_once(
    client: Connection, pollers: list[Poller], rng: random.Random, hold: float, out: Claims
) -> None:
    """A radiologist claims an unheld item from their latest page, holds it, releases it."""
    offers = [(p, list(p.free)) for p in pollers if p.free]
    if not offers:
        out.skipped += 1
        return
    poller, free = rng.choice(offers)
    item = rng.choice(free)
    headers = {"Authorization": f"Bearer {poller.token}", "Accept": "application/json"}
    try:
        seconds, reply = client.post(CLAIM_PATH.format(id=item), {}, headers)
    except FAILURES as exc:
        client.conn.close()  # replaced before the next request (KeptAlive._dropped)
        out.claim.append(Sample(0.0, 0, False, f"{type(exc).__name__}: {exc}"[:160]))
        return
    if reply.status == 409:
        out.conflicts += 1
        out.claim.append(Sample(seconds, 409, True))
        return
    body = reply.json() if reply.body[:1] == b"{" else {}
    if reply.status != 200 or not body.get("lease_token"):
        note = reply.body[:160].decode("utf-8", "replace")
        out.claim.append(Sample(seconds, reply.status, False, note))
        return
    out.claim.append(Sample(seconds, 200, True))
    time.sleep(hold)
    try:
        seconds, reply = client.post(RELEASE_PATH.format(id=item), {}, headers)
    except FAILURES as exc:
        client.conn.close()
        out.release.append(Sample(0.0, 0, False, f"{type(exc).__name__}: {exc}"[:160]))
        return
    ok = reply.status == 200
    note = "" if ok else reply.body[:160].decode("utf-8", "replace")
    out.release.append(Sample(seconds, reply.status, ok, note))


def run_claimers(
    base_url: str,
    pollers: list[Poller],
    count: int,
    interval: float,
    hold: float,
    seconds: float,
    stop: threading.Event,
    seed: int,
    out: Claims,
) -> list[threading.Thread]:
    start = time.perf_counter() + 0.2
    end = start + seconds
    threads = []
    for c in range(count):

        def loop(c: int = c) -> None:
            rng = random.Random(seed * 100 + c)
            client = Connection(base_url)
            try:
                k = 0
                while not stop.is_set():
                    due = start + (c / count + k) * interval
                    if due >= end or stop.wait(max(0.0, due - time.perf_counter())):
                        break
                    claim_once(client, pollers, rng, hold, out)
                    k += 1
            finally:
                client.close()

        thread = threading.Thread(target=loop, name=f"claim-{c}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


# ---------------------------------------------------------------------------------------------
# Phases and figures
# ---------------------------------------------------------------------------------------------


def figures(samples: list[Sample], seconds: float) -> dict[str, Any]:
    """The framework's latency record (bench.common.run_latency's keys) for these samples."""
    statuses: dict[str, int] = {}
    notes: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
        if not s.ok:
            notes[s.note] = notes.get(s.note, 0) + 1
    good = [s.seconds for s in samples if s.ok]
    return {
        "latency_ms": latency(good),
        "errors": sum(not s.ok for s in samples),
        "statuses": statuses,
        "notes": notes,
        "requests_per_second": round(len(samples) / seconds, 2) if seconds else 0.0,
        "samples_ms": [round(1000 * s, 3) for s in good],
    }


def measure_phase(
    args: argparse.Namespace, base_url: str, pollers: list[Poller], claims: bool, seed: int
) -> dict[str, Any]:
    """One phase after a quiet-CPU wait, taken again when the hypervisor stole too much."""
    discarded = []
    for attempt in range(args.steal_retries + 1):
        quiet = wait_quiet(args.max_busy)
        reconnects = sum(p.client.reconnects for p in pollers if p.client)
        processes, cpu, wall = cpu_by_process(), cpu_times(), time.perf_counter()
        client_before = os.times()
        stop = threading.Event()
        out = Claims()
        threads = run_pollers(pollers, args.poll_interval, args.worklist_seconds, stop, seed)
        if claims:
            threads += run_claimers(
                base_url, pollers, args.claimers, args.claim_interval, args.claim_hold,
                args.worklist_seconds, stop, seed + attempt, out,
            )  # fmt: skip
        try:
            for thread in threads:
                thread.join()
        except KeyboardInterrupt:
            stop.set()
            raise
        elapsed = time.perf_counter() - wall
        client_after = os.times()
        client_cpu = (client_after.user - client_before.user) + (
            client_after.system - client_before.system
        )
        conditions = {
            **cpu_delta(cpu), **quiet, "wall_s": round(elapsed, 1),
            "client_cpu_seconds": round(client_cpu, 2),
            "client_cpu_share_of_machine": round(client_cpu / (elapsed * (os.cpu_count() or 1)), 3),
            "top_cpu": top_cpu(processes), "attempt": attempt + 1,
        }  # fmt: skip
        if conditions["steal_share"] <= args.max_steal or attempt == args.steal_retries:
            break
        discarded.append(conditions)
        say(f"  phase discarded (steal {conditions['steal_share']:.0%}); again")
    samples = [s for p in pollers for s in p.samples]
    phase: dict[str, Any] = {
        # Untimed: gunicorn closes a connection idle for 2 s (its keep-alive), so most polls
        # 5 s apart open a new one first, as a browser's would.
        "reconnects": sum(p.client.reconnects for p in pollers if p.client) - reconnects,
        "list": figures(samples, args.worklist_seconds),
        "late_polls": sum(p.late for p in pollers),
        "by_radiologist": {
            p.name: {"visible": p.count, **latency([s.seconds for s in p.samples if s.ok])}
            for p in pollers
        },
        "conditions": conditions,
        "discarded": discarded,
    }
    if claims:
        phase["claim"] = figures(out.claim, args.worklist_seconds)
        phase["release"] = figures(out.release, args.worklist_seconds)
        phase["claim"]["conflicts_409"] = out.conflicts
        phase["claim"]["skipped_no_free_item"] = out.skipped
    return phase


def as_result(
    fig: dict[str, Any], phase: dict[str, Any], answers: dict[str, Any]
) -> dict[str, Any]:
    c = phase["conditions"]
    return {
        **fig, "answers": answers, "all_quiet": c["quiet"], "steal_share_max": c["steal_share"],
        "blocks": [c], "discarded": phase["discarded"], "late_polls": phase["late_polls"],
    }  # fmt: skip


def brief(name: str, fig: dict[str, Any]) -> str:
    lat = fig["latency_ms"]
    text = f"{name}: no successful request"
    if lat:
        text = (f"{name}: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms"
                f" (n={lat['n']}, {fig['requests_per_second']:.1f}/s)")  # fmt: skip
    if fig["errors"]:
        text += f", {fig['errors']} errors {fig['notes']}"
    return text


def base_of(target: Target) -> str:
    parts = urlsplit(target.stow_url)
    return f"{parts.scheme}://{parts.netloc}"


def run(args: argparse.Namespace, targets: list[Target]) -> dict[str, Any]:
    """Fill Skylight, issue tokens, warm up, then the list phase and the list+claims phase."""
    results: dict[str, dict[str, Any]] = {"worklist/orthanc": {"unavailable": NO_ORTHANC}}
    skylight = [t for t in targets if t.kind == "skylight"]
    if not skylight:
        say("worklist: Skylight only (Orthanc has no reading worklist); no Skylight target")
        return {"results": results}
    target = skylight[0]
    database_url = query.skylight_database(args, targets) or args.database_url
    say(f"worklist: filling {urlsplit(database_url).path.lstrip('/')} "
        f"({args.worklist_items} items) unless it holds them already")  # fmt: skip
    payload: dict[str, Any] = {
        "populate": populate_worklist.populate(database_url, args.worklist_items),
        "pollers": args.pollers,
        "poll_interval_s": args.poll_interval,
        "seconds": args.worklist_seconds,
        "limit": args.limit,
        "claimers": args.claimers,
        "claim_interval_s": args.claim_interval,
        "claim_hold_s": args.claim_hold,
    }
    if args.worklist_sql:
        payload["extra_sql"] = args.worklist_sql
        say(f"  then, as asked: {'; '.join(args.worklist_sql)}")
        populate_worklist.execute(database_url, args.worklist_sql)
    names = populate_worklist.usernames()[: args.pollers]
    tokens = populate_worklist.issue_tokens(database_url, names)
    base = base_of(target)
    pollers = [Poller(n, tokens[n], base, args.limit) for n in names]
    say(f"warming up: {len(pollers)} radiologists, {args.warmup_polls} untimed polls each")
    warm = [p.poll() for _ in range(args.warmup_polls) for p in pollers]
    if not any(s.ok for s in warm):
        first = next((s for s in warm), Sample(0, 0, False, "no poller"))
        results[f"worklist-list/{target.name}"] = {"unavailable": first.describe()[:300]}
        say(f"  unavailable: {first.describe()[:300]}")
        for p in pollers:
            p.close()
        return {"results": results, **payload}
    counts = {p.name: p.count for p in pollers}
    visible = sorted(counts.values())
    payload["visible_items"] = {"per_radiologist": counts, "min": visible[0],
                                "median": visible[len(visible) // 2], "max": visible[-1]}  # fmt: skip
    say(f"  open items visible per radiologist: {visible[0]}–{visible[-1]} "
        f"(median {visible[len(visible) // 2]})")  # fmt: skip
    warm_claims = Claims()
    warm_client = Connection(base)
    for _ in range(5):
        claim_once(warm_client, pollers, random.Random(1), 0.0, warm_claims)
    warm_client.close()
    if not any(s.ok for s in warm_claims.claim):
        first = next(iter(warm_claims.claim), Sample(0, 0, False, "no free item"))
        say(f"  claims unavailable: {first.describe()[:300]}")
    answers = {p.name: {"results": p.count} for p in pollers}
    label = f" ({args.worklist_items // 1000}k items, {args.pollers} pollers)"
    try:
        say(f"== list: {args.pollers} pollers every {args.poll_interval:g}s for "
            f"{args.worklist_seconds:g}s")  # fmt: skip
        listing = measure_phase(args, base, pollers, claims=False, seed=41)
        say("  " + brief("list", listing["list"]))
        say(f"== list + claims: {args.claimers} claimers every {args.claim_interval:g}s")
        mixed = measure_phase(args, base, pollers, claims=True, seed=42)
        for name in ("list", "claim", "release"):
            say("  " + brief(name, mixed[name]))
    finally:
        for p in pollers:
            p.close()
    results[f"worklist-list/{target.name}{label}"] = as_result(listing["list"], listing, answers)
    results[f"worklist-list+claims/{target.name}{label}"] = as_result(mixed["list"], mixed, answers)
    if mixed["claim"]["latency_ms"] or mixed["claim"]["errors"]:
        results[f"worklist-claim/{target.name}{label}"] = as_result(mixed["claim"], mixed, {})
    if mixed["release"]["latency_ms"] or mixed["release"]["errors"]:
        results[f"worklist-release/{target.name}{label}"] = as_result(mixed["release"], mixed, {})
    payload["phases"] = {
        "list": {k: v for k, v in listing.items() if k != "list"},
        "list+claims": {
            "conditions": mixed["conditions"], "late_polls": mixed["late_polls"],
            "reconnects": mixed["reconnects"],
            "by_radiologist": mixed["by_radiologist"],
            "discarded": mixed["discarded"],
            "conflicts_409": mixed["claim"]["conflicts_409"],
            "skipped_no_free_item": mixed["claim"]["skipped_no_free_item"],
        },
    }  # fmt: skip
    return {"results": results, **payload}


def add_arguments(p: argparse.ArgumentParser) -> None:
    w = p.add_argument_group("worklist (bench.worklist)")
    w.add_argument("--worklist-items", type=int, default=100_000, help="bulk-filled work items")
    w.add_argument("--pollers", type=int, default=50, help="simulated radiologists (max 50)")
    w.add_argument("--poll-interval", type=float, default=5.0, help="seconds between polls")
    w.add_argument("--worklist-seconds", type=float, default=90.0, help="length of each phase")
    w.add_argument("--limit", type=int, default=50, help="page size of the list")
    w.add_argument("--claimers", type=int, default=2, help="threads claiming and releasing")
    w.add_argument("--claim-interval", type=float, default=1.0, help="seconds, per claimer")
    w.add_argument("--claim-hold", type=float, default=0.5, help="seconds between claim/release")
    w.add_argument("--warmup-polls", type=int, default=2, help="untimed polls per radiologist")
    w.add_argument(
        "--worklist-sql",
        action="append",
        default=[],
        metavar="STATEMENT",
        help="run on the filled database before measuring, e.g. a candidate index or "
        "ALTER DATABASE … SET (repeatable; ANALYZE follows)",
    )
