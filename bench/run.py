"""Side-by-side benchmarks of Skylight and Orthanc over DIMSE and DICOMweb.

    python -m bench.run cstore|stow|stow-1g|query|retrieve|worklist|viewer|all \
        [--target skylight|orthanc|both]

Skylight is the one already running (by default infra/run-production-local.sh: web on :8000,
SCP on :11112, tenant demo-hospital called as DEMOHOSP, a token issued for alice from the
skylight_local database), or one this command starts with ``--start-skylight s3|disk`` (see
bench/launch.py). Orthanc is started here from the Debian packages unless ``--orthanc-url`` names
a running one. Every run uses a fresh synthetic study (a new seed) sent to each target in turn,
alternating which goes first; before each measurement the command waits until the CPUs are quiet.
A table is printed and everything is written as JSON under bench/results/.

``query`` and ``retrieve`` (bench/query.py, bench/retrieve.py) measure latency instead: many small
requests per variant on one kept-alive connection, p50/p95/p99, in blocks that alternate the
targets, each block after a quiet-CPU wait.

``worklist`` (bench/worklist.py) is Skylight only, since Orthanc has no reading worklist: 50
simulated radiologists poll their list while a stream of claims and releases runs, p50/p95/p99.
Alone it starts no Orthanc.

``viewer`` (bench/viewer.py) opens the same 300-slice CT in the same OHIF build from Skylight and
from Orthanc (behind bench/ohif_proxy.py) in headless Chromium, on loopback and at an emulated
100 Mbit/s: navigation to first image, first DICOMweb request to first image, all frames loaded.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from . import cstore, query, retrieve, stow, stow_big, viewer, worklist
from .common import (
    CACHE,
    Study,
    cpu_by_process,
    cpu_delta,
    cpu_times,
    ct_study,
    fmt,
    forget_study,
    machine,
    port_open,
    save,
    say,
    settle_disk,
    summary,
    table,
    top_cpu,
    wait_quiet,
)
from .launch import orthanc, skylight
from .targets import Target, issue_token, orthanc_target, skylight_target

BENCHMARKS = ("cstore", "stow", "stow-1g", "query", "retrieve", "worklist", "viewer")
LATENCY = {"query": query.run, "retrieve": retrieve.run, "worklist": worklist.run}
SEED_SPAN = 10_000  # seeds one benchmark may use: 1000 per variant, one per run


def next_seeds(count: int) -> int:
    """The first of ``count`` seeds never used on this machine, so that no study is sent twice
    to a Skylight whose database outlives the run (a duplicate takes another path)."""
    path = CACHE / "next-seed"
    first = int(path.read_text()) if path.exists() else 1_000_000
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(str(first + count))
    return first


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("benchmark", choices=[*BENCHMARKS, "all"])
    p.add_argument("--target", choices=["skylight", "orthanc", "both"], default="both")
    p.add_argument("--runs", type=int, default=5, help="runs per target (default 5)")
    p.add_argument("--big-runs", type=int, default=3, help="runs of stow-1g (default 3)")
    p.add_argument("--label", default="", help="what this Skylight is, for the results")
    s = p.add_argument_group("Skylight (already running unless --start-skylight)")
    s.add_argument("--skylight-url", default=env("BENCH_SKYLIGHT_URL", "http://127.0.0.1:8000"))
    s.add_argument("--skylight-dicom", default=env("BENCH_SKYLIGHT_DICOM", "127.0.0.1:11112"))
    s.add_argument("--skylight-ae", default=env("BENCH_SKYLIGHT_AE", "DEMOHOSP"))
    s.add_argument("--tenant", default=env("BENCH_SKYLIGHT_TENANT", "demo-hospital"))
    s.add_argument(
        "--token",
        default=env("BENCH_SKYLIGHT_TOKEN", ""),
        help="bearer token of a tenant admin (default: issued for alice in --database-url)",
    )
    s.add_argument(
        "--database-url",
        default=env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/skylight_local"),
        help="only to issue a token when none is given",
    )
    s.add_argument("--start-skylight", choices=["s3", "disk"], help="start one (bench.launch)")
    s.add_argument("--web-workers", type=int, default=2, help="with --start-skylight")
    s.add_argument(
        "--skylight-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for a started Skylight (repeatable)",
    )
    o = p.add_argument_group("Orthanc (started here unless --orthanc-url)")
    o.add_argument("--orthanc-url", default=env("BENCH_ORTHANC_URL", ""))
    o.add_argument("--orthanc-dicom", default=env("BENCH_ORTHANC_DICOM", "127.0.0.1:4242"))
    o.add_argument("--orthanc-ae", default=env("BENCH_ORTHANC_AE", "ORTHANC"))
    d = p.add_argument_group("data and conditions")
    d.add_argument("--slices", type=int, default=300, help="slices of the study (default 300)")
    d.add_argument("--big-slices", type=int, default=2000, help="slices for stow-1g (~1 GB)")
    d.add_argument("--stow-requests", type=int, default=10, help="the split STOW variant")
    d.add_argument("--chunked", action="store_true", help="stow-1g: chunked, no Content-Length")
    d.add_argument("--seed", type=int, default=0, help="first seed (default: from the clock)")
    d.add_argument("--keep-data", action="store_true", help="keep the studies in bench/.cache")
    d.add_argument("--no-warmup", action="store_true", help="skip the unmeasured first study")
    d.add_argument("--max-steal", type=float, default=0.10, help="steal share that voids a run")
    d.add_argument("--steal-retries", type=int, default=3, help="new attempts per voided run")
    d.add_argument("--max-busy", type=float, default=0.15, help="CPU share counted as quiet")
    query.add_arguments(p)
    worklist.add_arguments(p)
    viewer.add_arguments(p)
    args = p.parse_args(argv)
    if args.benchmark == "worklist" and args.target != "skylight":
        args.target = "skylight"  # nothing to compare with: Orthanc has no reading worklist
    return args


def open_targets(args: argparse.Namespace, stack: ExitStack) -> list[Target]:
    targets = []
    if args.target in ("orthanc", "both"):
        if args.orthanc_url:
            host, port = host_port(args.orthanc_dicom)
            targets.append(orthanc_target(args.orthanc_url, host, port, args.orthanc_ae))
        else:
            say("starting Orthanc")
            targets.append(stack.enter_context(orthanc()).target)
    if args.target in ("skylight", "both"):
        if args.start_skylight:
            say(f"starting Skylight ({args.start_skylight}, {args.web_workers} web workers)")
            extra = dict(e.split("=", 1) for e in args.skylight_env)
            running = stack.enter_context(
                skylight(args.start_skylight, args.web_workers, extra_env=extra)
            )
            target = running.target
        else:
            host, port = host_port(args.skylight_dicom)
            web = urlsplit(args.skylight_url)
            if not port_open(web.hostname or "127.0.0.1", web.port or 80) or not port_open(
                host, port
            ):
                raise SystemExit(
                    f"no Skylight at {args.skylight_url} and {args.skylight_dicom}: start "
                    "infra/run-production-local.sh, or pass --start-skylight s3|disk"
                )
            token = args.token or issue_token(args.database_url)
            target = skylight_target(
                args.skylight_url, host, port, token, args.tenant, args.skylight_ae
            )
        if args.label:
            target.name = f"skylight ({args.label})"
        targets.append(target)
    return targets


Measure = Callable[[Target, Study], dict[str, Any]]


def warm_up(targets: list[Target], benchmarks: list[str], seed: int) -> None:
    """A small study to each target, not measured: first connections, imports, caches."""
    studies = [ct_study(seed, slices=5), ct_study(seed + 1, slices=5)]
    for target in targets:
        if "cstore" in benchmarks:
            cstore.run_once(target, studies[0])
        if any(b.startswith("stow") for b in benchmarks):
            stow.run_once(target, studies[1], 1)
    for study in studies:
        forget_study(study)


def measure_all(
    args: argparse.Namespace,
    targets: list[Target],
    variants: dict[str, tuple[Measure, int]],
    seed: int,
    runs: int,
    discarded: list[dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """Each run: one fresh study per variant, sent to every target (alternating who is first).

    This machine is a VM: when the hypervisor steals more than ``--max-steal`` of the CPU time
    during a measurement, that measurement is put in ``discarded`` and taken again with another
    fresh study (at most ``--steal-retries`` times; the last attempt is kept whatever its steal).
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in range(runs):
        for v, (variant, (measure, slices)) in enumerate(variants.items()):
            study = ct_study(seed + 1000 * v + run, slices=slices)
            prepare(study)
            order = targets if run % 2 == 0 else list(reversed(targets))
            for target in order:
                subject = study
                for attempt in range(args.steal_retries + 1):
                    if attempt:
                        subject = ct_study(seed + 1000 * v + 100 + 10 * run + attempt, slices)
                        prepare(subject)
                    row = measure_one(args, measure, target, subject)
                    row.update(run=run + 1, attempt=attempt + 1)
                    say(f"{variant} on {target.name}, run {run + 1}: {brief(row)}")
                    if subject is not study and not args.keep_data:
                        forget_study(subject)
                    if row["steal_share"] <= args.max_steal or attempt == args.steal_retries:
                        rows.setdefault(f"{variant}/{target.name}", []).append(row)
                        break
                    discarded.append({"key": f"{variant}/{target.name}", **row})
                    say(f"  discarded (steal {row['steal_share']:.0%}); again with a new study")
            if not args.keep_data:
                forget_study(study)
    return rows


def prepare(study: Study) -> None:
    settle_disk()
    for path in study.files:  # in the page cache, as for every target after the first
        path.read_bytes()


def measure_one(
    args: argparse.Namespace, measure: Measure, target: Target, study: Study
) -> dict[str, Any]:
    quiet = wait_quiet(args.max_busy)
    processes, cpu, wall = cpu_by_process(), cpu_times(), time.perf_counter()
    row = measure(target, study)
    row.update(
        wall_s=round(time.perf_counter() - wall, 2), **cpu_delta(cpu), **quiet,
        top_cpu=top_cpu(processes),
    )  # fmt: skip
    return row


def split_stow(target: Target, study: Study, requests: int) -> dict[str, Any]:
    return stow.run_once(target, study, requests)


def brief(row: dict[str, Any]) -> str:
    parts = [f"{row['instances_per_second']:.0f} inst/s"]
    if "queryable_after_s" in row:
        parts.append(f"queryable +{row['queryable_after_s']:.2f}s")
    if "peak_max_mib" in row:
        parts.append(f"peak RSS {row['peak_max_mib']:.0f} MiB (sum {row['peak_sum_mib']:.0f})")
    if row.get("error"):
        parts.append(row["error"][:120])
    if row.get("steal_share", 0) > 0.05:
        parts.append(f"steal {row['steal_share']:.0%}")
    if not row.get("quiet", True):
        parts.append(f"NOT QUIET ({row['busy_before']:.0%} busy before)")
    return ", ".join(parts)


METRICS = {
    "instances_per_second": ("inst/s", 0),
    "queryable_after_s": ("queryable after (s)", 2),
    "peak_max_mib": ("peak RSS max (MiB)", 0),
    "peak_sum_mib": ("peak RSS sum (MiB)", 0),
}


def summarise(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, runs in rows.items():
        out[key] = {
            metric: summary([r[metric] for r in runs if r.get(metric) is not None])
            for metric in [*METRICS, "steady_per_second", "machine_cpu_seconds", "steal_share"]
            if any(r.get(metric) is not None for r in runs)
        }
        out[key]["runs"] = len(runs)
        out[key]["all_quiet"] = all(r.get("quiet", True) for r in runs)
    return out


def ratios(summaries: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Skylight / Orthanc, on medians, per variant and metric."""
    result = {}
    variants = {key.split("/", 1)[0] for key in summaries}
    for variant in variants:
        mine = {k.split("/", 1)[1]: v for k, v in summaries.items() if k.startswith(variant + "/")}
        reference = next((v for k, v in mine.items() if k.startswith("orthanc")), None)
        if reference is None:
            continue
        for name, s in mine.items():
            if name.startswith("orthanc"):
                continue
            for metric in ("instances_per_second", "peak_max_mib"):
                if s.get(metric) and reference.get(metric) and reference[metric]["median"]:
                    result[f"{variant}/{name}/{metric}"] = (
                        s[metric]["median"] / reference[metric]["median"]
                    )
    return result


def print_table(
    summaries: dict[str, dict[str, Any]], ratio: dict[str, float], rows: dict[str, list[Any]]
) -> None:
    """Medians with (min–max) over the runs; the ratio is Skylight's median over Orthanc's."""
    header = [
        "benchmark / target", "runs", *(label for label, _ in METRICS.values()),
        "CPU ms/inst", "steal", "vs Orthanc",
    ]  # fmt: skip
    lines = []
    for key, s in sorted(summaries.items()):
        variant, name = key.split("/", 1)
        r = ratio.get(f"{variant}/{name}/instances_per_second")
        per_instance = [1000 * x["machine_cpu_seconds"] / x["instances"] for x in rows[key]]
        lines.append(
            [
                key + ("" if s["all_quiet"] else " (busy)"),
                str(s["runs"]),
                *(fmt(s.get(m, {}), digits) for m, (_, digits) in METRICS.items()),
                fmt(summary(per_instance), 1),
                f"{s['steal_share']['median']:.0%}" if s.get("steal_share") else "",
                f"{r:.2f}×" if r else "",
            ]
        )
    print(table(header, lines), flush=True)


def latency_ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Skylight / Orthanc per variant on p50 and p95 (below 1: Skylight is faster). Skylight's
    10k row is compared with Orthanc at 1k, the only size Orthanc is loaded with."""
    out = {}
    for key, r in results.items():
        variant, name = key.split("/", 1)
        reference = results.get(f"{variant}/orthanc", {}).get("latency_ms")
        mine = r.get("latency_ms")
        if name.startswith("orthanc") or not reference or not mine:
            continue
        for q in ("p50", "p95"):
            out[f"{key}/{q}"] = mine[q] / reference[q]
    return out


def print_latency_table(results: dict[str, dict[str, Any]], ratio: dict[str, float]) -> None:
    header = ["benchmark / target", "n", "p50 ms", "p95 ms", "p99 ms", "errors", "steal max",
              "p50 vs Orthanc", "p95 vs Orthanc", "note"]  # fmt: skip
    lines = []
    for key, r in results.items():
        lat = r.get("latency_ms") or {}
        answers = [a for a in (r.get("answers") or {}).values() if isinstance(a, dict)]
        counts = sorted({a["results"] for a in answers if "results" in a})
        note = r.get("unavailable", "")
        if counts:
            note = (
                f"results {counts[0]}–{counts[-1]}" if len(counts) > 1 else f"results {counts[0]}"
            )
            if any(a.get("warning") for a in answers):
                note += " (Warning: truncated)"
        if any(a.get("as_expected") is False for a in answers):
            note += " UNEXPECTED ANSWER"
        if r.get("errors"):
            note += f" {r['errors']} errors: " + "; ".join(r.get("notes", {}))
        if not r.get("all_quiet", True):
            note += " (busy)"
        lines.append([
            key, str(lat.get("n", 0)), *(f"{lat[q]:.2f}" if lat else "—" for q in ("p50", "p95", "p99")),
            str(r.get("errors", "")), f"{r['steal_share_max']:.0%}" if "steal_share_max" in r else "",
            *(f"{ratio[f'{key}/{q}']:.2f}×" if f"{key}/{q}" in ratio else "" for q in ("p50", "p95")),
            note[:80],
        ])  # fmt: skip
    print(table(header, lines), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    benchmarks = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    seed = args.seed or next_seeds((len(BENCHMARKS) + 1) * SEED_SPAN)
    payload: dict[str, Any] = {"args": vars(args), "machine": machine(), "started": time.ctime()}
    rows: dict[str, list[dict[str, Any]]] = {}
    latencies: dict[str, dict[str, Any]] = {}
    discarded: list[dict[str, Any]] = []
    with ExitStack() as stack:
        targets = open_targets(args, stack)
        payload["targets"] = {
            t.name: {"kind": t.kind, "stow_url": t.stow_url, "dicom": f"{t.dicom_host}:{t.dicom_port}",
                     "called_ae": t.called_ae, **t.notes}
            for t in targets
        }  # fmt: skip
        if not args.no_warmup and set(benchmarks) - {*LATENCY, "viewer"}:
            say("warming up")
            warm_up(targets, benchmarks, seed + SEED_SPAN * len(BENCHMARKS))
        for index, benchmark in enumerate(benchmarks):
            runs = args.big_runs if benchmark == "stow-1g" else args.runs
            if benchmark == "viewer":
                say(f"== viewer: {', '.join(t.name for t in targets)}, {args.viewer_runs} runs")
                payload["viewer"] = viewer.run(args, targets, seed + SEED_SPAN * index)
                continue
            if benchmark in LATENCY:
                say(f"== {benchmark}: {', '.join(t.name for t in targets)}")
                measured = LATENCY[benchmark](args, targets)
                latencies.update(measured.pop("results"))
                payload[benchmark] = measured
                continue
            say(f"== {benchmark}: {', '.join(t.name for t in targets)}, {runs} runs")
            if benchmark == "cstore":
                variants: dict[str, tuple[Measure, int]] = {
                    "cstore": (cstore.run_once, args.slices)
                }
            elif benchmark == "stow":
                n = args.stow_requests
                variants = {
                    "stow-1req": (lambda t, s: stow.run_once(t, s, 1), args.slices),
                    f"stow-{n}req": (partial(split_stow, requests=n), args.slices),
                }
            else:
                variants = {
                    "stow-1g": (
                        lambda t, s: stow_big.run_once(t, s, chunked=args.chunked),
                        args.big_slices,
                    )
                }
            rows.update(
                measure_all(args, targets, variants, seed + SEED_SPAN * index, runs, discarded)
            )
    payload["runs"] = rows
    payload["discarded_for_steal"] = discarded
    payload["summary"] = summaries = summarise(rows)
    payload["ratios"] = ratio = ratios(summaries)
    payload["latency"] = latencies
    payload["latency_ratios"] = latency_ratio = latency_ratios(latencies)
    if rows:
        print()
        print_table(summaries, ratio, rows)
    if latencies:
        print()
        print_latency_table(latencies, latency_ratio)
    path = save(args.benchmark, payload)
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
