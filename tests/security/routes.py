"""The URL configuration as a flat list, and the real objects that fill its path parameters.

The route walk (tests/test_route_walk.py) asks Django's resolver for every pattern, so a route
added anywhere appears here without being listed by hand; a pattern is known by its name with
namespaces (``reports:review:queue``) or, when it has none, by its route text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class Route:
    key: str  # the name with namespaces, or the route text when the pattern has no name
    template: str  # the full route text, ``<converter:name>`` placeholders included
    is_regex: bool

    @property
    def parameters(self) -> list[str]:
        return [m["name"] for m in PARAMETER.finditer(self.template)]


def _walk(resolver: URLResolver, prefix: str, namespace: str, regex: bool) -> Iterator[Route]:
    for pattern in resolver.url_patterns:
        text = str(pattern.pattern)
        is_regex = regex or text.startswith("^")
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            yield from _walk(pattern, prefix + text, inner, is_regex)
        elif isinstance(pattern, URLPattern):
            template = prefix + text
            key = namespace + pattern.name if pattern.name else template
            yield Route(key=key, template=template, is_regex=is_regex)


def all_routes() -> list[Route]:
    """Every URL pattern the project answers, resolved recursively from the root."""
    return list(_walk(get_resolver(), "", "", False))


@dataclass
class Fill:
    """The objects of one hospital that a persona's request names in its path."""

    tenant: Any
    values: dict[str, str]
    markers: list[str] = field(default_factory=list)  # text that must not leak elsewhere

    def path(self, route: Route, overrides: dict[str, str] | None = None) -> str:
        values = {**self.values, **(overrides or {})}

        def value(match: re.Match[str]) -> str:
            return values[match["name"]]

        return "/" + PARAMETER.sub(value, route.template)


def hospital_objects(tenant: Any, *, dicom_file: str, reader: Any, marker: str) -> Fill:
    """A work item with a signed final report and every object hung on it, in ``tenant``.

    Rows are made directly where the services would need a whole reading session; what matters
    here is who may reach them, not how they came to be.
    """
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    from reports.models import (
        Consult,
        CriticalResult,
        Delivery,
        Report,
        ReportTemplate,
        ReportVersion,
        ReviewRequest,
        TextBlock,
    )
    from studies.dicom.attributes import search_form
    from studies.models import Study
    from tests.conftest import ingest_now
    from tests.worklists.conftest import make_item

    path = get_testdata_file(dicom_file)
    with open(path, "rb") as f:
        ingest_now(tenant, [f.read()])
    ds = dcmread(path, stop_before_pixels=True)

    now = timezone.now()
    item = make_item(tenant, patient_name=f"{marker}^PATIENT", patient_id=f"{marker}PID")
    Study.objects.filter(pk=item.study_id).update(
        referring_physician_name="REFERRER^RITA",
        referring_physician_name_search=search_form("REFERRER^RITA"),
    )
    report = Report.objects.create(tenant=tenant, work_item=item, study_id=item.study_id)
    version = ReportVersion(
        tenant=tenant,
        report=report,
        number=1,
        status="final",
        findings=f"{marker} FINDINGS",
        impression=f"{marker} IMPRESSION",
        author=reader,
        signed_by=reader,
        signed_at=now,
    )
    version.content_sha256 = version.compute_sha256()
    version.save()
    review = ReviewRequest.objects.create(
        tenant=tenant, report=report, version=version, requested_by=reader
    )
    critical = CriticalResult.objects.create(
        tenant=tenant,
        work_item=item,
        study_id=item.study_id,
        report=report,
        category=1,
        finding=f"{marker} CRITICAL",
        flagged_by=reader,
        due_at=now + timedelta(hours=1),
    )
    consult = Consult.objects.create(
        tenant=tenant,
        work_item=item,
        study_id=item.study_id,
        requested_by=reader,
        consultant=reader,
        question=f"{marker} QUESTION",
    )
    delivery = Delivery.objects.create(tenant=tenant, version=version, channel="pdf")
    template = ReportTemplate.objects.create(tenant=tenant, name=f"{marker} TEMPLATE")
    block = TextBlock.objects.create(tenant=tenant, shortcut="nl", text=f"{marker} BLOCK")
    values = {
        "tenant_slug": tenant.slug,
        "slug": tenant.slug,
        "owner": f"t-{tenant.pk}",
        "study_uid": str(ds.StudyInstanceUID),
        "series_uid": str(ds.SeriesInstanceUID),
        "instance_uid": str(ds.SOPInstanceUID),
        "bulk_path": "7FE00010",
        "frames": "1",
        "item_id": str(item.pk),
        "report_id": str(report.pk),
        "version_id": str(version.pk),
        "number": "1",
        "request_id": str(review.pk),
        "critical_id": str(critical.pk),
        "consult_id": str(consult.pk),
        "delivery_id": str(delivery.pk),
        "template_id": str(template.pk),
        "block_id": str(block.pk),
        "token": "not-a-real-acknowledgement-token",
        "path": "index.html",
    }
    markers = [f"{marker}^PATIENT", f"{marker}PID", item.study.study_instance_uid]
    markers += [str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)]
    return Fill(tenant=tenant, values=values, markers=markers)
