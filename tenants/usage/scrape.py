"""``GET /metrics``: what operators scrape (Prometheus text format).

The counters and histograms of every process (metrics.py), plus gauges read from the database at
each scrape: receipts waiting for indexing, studies still receiving, open work items per
priority. Those are facts of the database, the same whichever process is asked, so they are not
kept in any process. Tenant slugs label them; nothing of a patient does.

Access: with ``SKYLIGHT_METRICS_TOKEN`` set, only ``Authorization: Bearer <token>``; without it,
only callers on the loopback interface (a Prometheus on the same host, or a sidecar). Anyone else
gets 404, as for a page that does not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from studies.models import Receipt, ReceiptStatus, Study, StudyState
from tenants import rls
from worklists.models import OPEN_STATES, WorkItem

from . import metrics


def may_scrape(request: HttpRequest) -> bool:
    token = settings.SKYLIGHT_METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _gauge(name: str, documentation: str, rows: QuerySet[Any], labels: list[str]) -> Metric:
    """A gauge with one sample per row of a grouped count (``n``), labelled by ``labels``."""
    gauge = GaugeMetricFamily(name, documentation, labels=[k.split("__")[0] for k in labels])
    for row in rows.annotate(n=Count("id")).order_by(*labels):
        gauge.add_metric([str(row[k]) for k in labels], row["n"])
    return gauge


class DatabaseGauges(Collector):
    """Three grouped queries per scrape, across every tenant (the scraper is an operator)."""

    def collect(self) -> Iterator[Metric]:
        # The request has no tenant; reading every tenant's counts is system work.
        rls.use_all_tenants()
        yield _gauge(
            "skylight_receipts_pending",
            "Receipts waiting for indexing.",
            Receipt.objects.filter(status=ReceiptStatus.PENDING).values("tenant__slug"),
            ["tenant__slug"],
        )
        yield _gauge(
            "skylight_studies_receiving",
            "Studies still receiving instances (not ready yet).",
            Study.objects.filter(state=StudyState.RECEIVING).values("tenant__slug"),
            ["tenant__slug"],
        )
        yield _gauge(
            "skylight_work_items_open",
            "Work items scheduled or in progress, per priority class.",
            WorkItem.objects.filter(state__in=OPEN_STATES).values("tenant__slug", "priority__code"),
            ["tenant__slug", "priority__code"],
        )


class _ThisProcess(Collector):
    """The metrics of this process alone (no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from metrics.REGISTRY.collect()


def registry() -> CollectorRegistry:
    scraped = CollectorRegistry(auto_describe=False)
    directory = metrics.multiprocess_dir()
    if directory:
        MultiProcessCollector(scraped, path=directory)
    else:
        scraped.register(_ThisProcess())
    scraped.register(DatabaseGauges())
    return scraped


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        raise Http404
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
