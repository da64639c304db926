"""Operators' metrics: counters and latency histograms of ingest, query and the worklist.

prometheus-client (the official library) keeps the values. Web workers, the SCP and Celery
workers are separate processes, so with ``PROMETHEUS_MULTIPROC_DIR`` set (config/settings.py)
each process writes its values to its own files there and ``/metrics`` adds them up
(``MultiProcessCollector``); without it the values live in this process only. Every metric has
labels, so none is created at import: ``runall`` can empty the directory when it starts.

Labels carry a tenant's slug at most, never patient data. Histograms have no tenant label: the
number of series would grow with every hospital.

The code paths call one function or decorator of this module each; a metric that fails to
update must never fail the request, so every helper swallows (and logs) its own errors.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# This module's metrics, apart from the library's default registry (process and GC metrics that
# mean nothing summed over processes).
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds; a C-STORE of one instance or a QIDO-RS answer is milliseconds, a large STOW-RS body
# or a slow index can take minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Received → indexed: seconds to an hour (a backlog).
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

INGEST_INSTANCES = Counter(
    "skylight_ingest_instances",
    "Instances stored and recorded (C-STORE or STOW-RS), before indexing.",
    ["source", "tenant"],
    registry=REGISTRY,
)
INGEST_BYTES = Counter(
    "skylight_ingest_bytes",
    "Bytes of the instances stored.",
    ["source", "tenant"],
    registry=REGISTRY,
)
STORE_SECONDS = Histogram(
    "skylight_ingest_store_seconds",
    "Time to answer one C-STORE (one instance) or one STOW-RS request (all its parts).",
    ["source"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
INDEXED_RECEIPTS = Counter(
    "skylight_index_receipts",
    "Receipts processed by indexing (indexed, duplicate, superseded or unreadable).",
    ["tenant"],
    registry=REGISTRY,
)
INDEX_SECONDS = Histogram(
    "skylight_index_batch_seconds",
    "Time to index one batch of receipts (one index_receipts task).",
    ["queue"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
INDEX_LAG = Histogram(
    "skylight_index_lag_seconds",
    "Time from receiving an instance to indexing it.",
    ["queue"],
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)
QUERIES = Counter(
    "skylight_query_requests",
    "Queries answered (QIDO-RS requests, C-FIND requests).",
    ["service", "tenant"],
    registry=REGISTRY,
)
QUERY_SECONDS = Histogram(
    "skylight_query_seconds",
    "Time to answer one query (for C-FIND: until the last match is sent).",
    ["service"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
WORKLIST_LISTS = Counter(
    "skylight_worklist_list_requests",
    "Worklist list requests (the page and its refreshes, the REST API).",
    ["surface"],
    registry=REGISTRY,
)
WORKLIST_SECONDS = Histogram(
    "skylight_worklist_list_seconds",
    "Time to answer one worklist list request.",
    ["surface"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
WORKLIST_CLAIMS = Counter(
    "skylight_worklist_claims",
    "Work items claimed for reading.",
    ["surface"],
    registry=REGISTRY,
)

UNKNOWN_TENANT = "-"


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def empty_directory() -> None:
    """Remove the value files of earlier runs (``runall`` at start; production empties the
    directory when the host starts, before any Skylight process). Values of a process are files
    named after its pid: left over, a new process with the same pid would add to them."""
    directory = multiprocess_dir()
    if not directory:
        return
    for path in Path(directory).glob("*.db"):
        path.unlink(missing_ok=True)


def _safely(update: Callable[[], None]) -> None:
    try:
        update()
    except Exception:  # noqa: BLE001 - a metric never fails the work it measures
        log.warning("metric update failed", exc_info=True)


def _slug(tenant: Any) -> str:
    return str(getattr(tenant, "slug", "") or UNKNOWN_TENANT)


def _timed(observe: Callable[[float], None]) -> Callable[[F], F]:
    """A decorator that hands the call's duration in seconds to ``observe``, raised or not."""

    def decorator(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                _safely(lambda: observe(elapsed))

        return wrapper  # type: ignore[return-value]

    return decorator


# ---------------------------------------------------------------------------------------------
# Ingest
# ---------------------------------------------------------------------------------------------


def stored(*, source: str, tenant: Any, sizes: Iterable[int]) -> None:
    """Count instances just recorded and their bytes."""

    def update() -> None:
        sizes_ = list(sizes)
        if sizes_:
            INGEST_INSTANCES.labels(source, _slug(tenant)).inc(len(sizes_))
            INGEST_BYTES.labels(source, _slug(tenant)).inc(sum(sizes_))

    _safely(update)


def timed_c_store(handler: F) -> F:
    """Wrap the C-STORE handler: its latency, and the instance and its bytes when stored."""

    @functools.wraps(handler)
    def wrapper(event: Any) -> Any:
        started = time.perf_counter()
        status = handler(event)
        elapsed = time.perf_counter() - started

        def update() -> None:
            STORE_SECONDS.labels("dimse").observe(elapsed)
            if status == 0:
                peer = getattr(event.assoc, "skylight_peer", None)
                data_set = event.request.DataSet
                size = data_set.getbuffer().nbytes if data_set is not None else 0
                stored(source="dimse", tenant=getattr(peer, "tenant", None), sizes=[size])

        _safely(update)
        return status

    return wrapper  # type: ignore[return-value]


def timed_stow(view: F) -> F:
    """Wrap the STOW-RS view: the latency of the whole request (instances counted by
    ``stored`` once recorded)."""
    return _timed(lambda elapsed: STORE_SECONDS.labels("stow").observe(elapsed))(view)


def timed_indexing(task: F) -> F:
    """Wrap ``index_receipts``: the batch's duration."""
    return _timed(lambda elapsed: INDEX_SECONDS.labels("ingest").observe(elapsed))(task)


def indexed(*, tenant: Any, received: Iterable[datetime], now: datetime | None = None) -> None:
    """Observe received → processed for each receipt an index run just processed."""

    def update() -> None:
        moment = now or timezone.now()
        count = 0
        for received_at in received:
            INDEX_LAG.labels("ingest").observe(max(0.0, (moment - received_at).total_seconds()))
            count += 1
        if count:
            INDEXED_RECEIPTS.labels(_slug(tenant)).inc(count)

    _safely(update)


# ---------------------------------------------------------------------------------------------
# Query
# ---------------------------------------------------------------------------------------------


def _observe_query(service: str, tenant: Any, elapsed: float) -> None:
    QUERIES.labels(service, _slug(tenant)).inc()
    QUERY_SECONDS.labels(service).observe(elapsed)


def timed_qido(search: F) -> F:
    """Wrap QIDO-RS's search (``search(request, tenant, ...)``)."""

    @functools.wraps(search)
    def wrapper(request: Any, tenant: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return search(request, tenant, *args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            _safely(lambda: _observe_query("qido", tenant, elapsed))

    return wrapper  # type: ignore[return-value]


def timed_c_find(handler: F) -> F:
    """Wrap the C-FIND handler (a generator): timed until its last answer is taken."""

    @functools.wraps(handler)
    def wrapper(event: Any) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            yield from handler(event)
        finally:
            elapsed = time.perf_counter() - started
            peer = getattr(event.assoc, "skylight_peer", None)
            _safely(lambda: _observe_query("c-find", getattr(peer, "tenant", None), elapsed))

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Worklist
# ---------------------------------------------------------------------------------------------


def timed_worklist(surface: str) -> Callable[[F], F]:
    """Wrap a worklist list view (``page`` or ``api``)."""

    def observe(elapsed: float) -> None:
        WORKLIST_LISTS.labels(surface).inc()
        WORKLIST_SECONDS.labels(surface).observe(elapsed)

    return _timed(observe)


def claimed(surface: str) -> None:
    _safely(lambda: WORKLIST_CLAIMS.labels(surface).inc())


def counts_claims(surface: str) -> Callable[[F], F]:
    """Wrap a claim view: one claim per successful (2xx) answer."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            response = view(*args, **kwargs)
            if 200 <= getattr(response, "status_code", 500) < 300:
                claimed(surface)
            return response

        return wrapper  # type: ignore[return-value]

    return decorator
