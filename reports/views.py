"""Report pages: the reading room's report part (rendered into the work item page), and the
results a referring physician or the hospital's staff read (/reports/results/).

The reading room edits through the JSON API (``reports/api.py``) from ``room.js``; this module
only prepares what the page shows first. Feature panels load themselves lazily (htmx) from the
fixed paths in ``PANELS``.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from tenants import audit
from tenants.models import AuditAction, User
from worklists.models import WorkItem

from . import readers, services
from .api import report_state
from .models import SECTIONS, Report, ReportVersion, ReviewRequest

SECTION_TITLES = {
    "clinical_information": "Clinical information",
    "technique": "Technique",
    "comparison": "Comparison",
    "findings": "Findings",
    "impression": "Impression",
}
# The feature panels of the reading room, loaded lazily; each answers 404 for an item the user
# may not see (and until its feature exists), which the page shows as nothing.
PANELS = (
    ("templates", "Templates", "/reports/templates/items/{}/panel/"),
    ("evidence", "Measurements and key images", "/reports/evidence/items/{}/panel/"),
    ("critical", "Critical results", "/reports/critical/items/{}/panel/"),
    ("collab", "Consults and comments", "/reports/collab/items/{}/panel/"),
    ("delivery", "Delivery", "/reports/delivery/items/{}/panel/"),
)


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(cast(User, request.user), address=request.META.get("REMOTE_ADDR"))


def sections_of(version: ReportVersion | None) -> list[dict[str, str]]:
    return [
        {
            "name": name,
            "title": SECTION_TITLES[name],
            "text": getattr(version, name) if version else "",
        }
        for name in SECTIONS
    ]


def _prior_reports(item: WorkItem, study_ids: list[int], actor: audit.Actor) -> dict[int, Any]:
    """The newest signed version of each prior study's report, in two queries; audited."""
    if not study_ids:
        return {}
    reports = {
        r.pk: r for r in Report.objects.filter(tenant_id=item.tenant_id, study_id__in=study_ids)
    }
    newest: dict[int, ReportVersion] = {}
    for version in ReportVersion.objects.filter(
        tenant_id=item.tenant_id, report_id__in=list(reports), signed_at__isnull=False
    ).order_by("report_id", "number"):
        newest[version.report_id] = version
    shown = {reports[report_id].study_id: version for report_id, version in newest.items()}
    if shown:
        audit.record(
            action=AuditAction.REPORT_VIEW,
            actor=actor,
            tenant=item.tenant,
            patient_ref=item.patient_id,
            detail={"item": item.pk, "priors": sorted(v.report_id for v in shown.values())},
        )
    return shown


def room_context(request: HttpRequest, item: WorkItem, *, held_by_me: bool) -> dict[str, Any]:
    """What the reading room shows of the report, for ``worklists.views.item_page``."""
    user = cast(User, request.user)
    actor = _actor(request)
    report = Report.objects.filter(work_item=item).first()
    if report is not None:
        report.work_item = item
        services._record(AuditAction.REPORT_VIEW, report, item, actor, page="room")
    state = report_state(user, item, report)
    versions = (
        list(report.versions.select_related("author", "signed_by").order_by("number"))
        if report is not None
        else []
    )
    signed = [v for v in versions if v.is_signed]
    draft = next((v for v in versions if not v.is_signed), None)
    mine = draft is not None and draft.author_id == user.pk
    current = signed[-1] if signed else None
    # The editor writes the first version under the claim, and any later draft of one's own.
    editable = mine or (report is None or not versions) and held_by_me
    shown = draft if mine else current
    priors = list(item.priors.select_related("study").order_by("rank"))
    prior_reports = _prior_reports(item, [p.study_id for p in priors], actor)
    return {
        "report": report,
        "report_state": state,
        "history": [(v, sections_of(v)) for v in reversed(signed)],
        "last_review": (
            ReviewRequest.objects.filter(tenant_id=item.tenant_id, report=report)
            .select_related("reviewer", "decided_by")
            .order_by("-created_at", "-id")
            .first()
            if report is not None
            else None
        ),
        "current": current,
        "draft": draft if mine else None,
        "draft_by_other": draft.author if draft is not None and not mine else None,
        "editable": editable,
        "sections": sections_of(shown),
        "key_images_json": json.dumps(draft.key_images if mine and draft else []),
        "is_author": current is not None and current.author_id == user.pk,
        "can_change": current is not None and current.status == "final" and draft is None,
        "priors_with_reports": [(p, prior_reports.get(p.study_id)) for p in priors],
        "panels": [(key, title, url.format(item.pk)) for key, title, url in PANELS],
        "api": {
            "report": reverse("reports-api:item", args=[item.pk]),
            "draft": reverse("reports-api:draft", args=[item.pk]),
            "sign": reverse("reports-api:sign", args=[item.pk]),
            "finalise": reverse("reports-api:finalise", args=[item.pk]),
            "changes": reverse("reports-api:change", args=[item.pk]),
            "revise": reverse("reports-api:revise", args=[item.pk]),
            "review": reverse("reports-api:review", args=[item.pk]),
        },
    }


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@login_required
@require_GET
def results(request: HttpRequest) -> HttpResponse:
    """The signed reports this user may read: their referred patients', or their hospital's."""
    user, actor = cast(User, request.user), _actor(request)
    found = readers.result_list(user, actor=actor)
    criticals = readers.open_criticals(user, actor=actor)
    return render(
        request,
        "reports/results.html",
        {"results": found, "limit": readers.RESULTS_LIMIT, "criticals": criticals},
    )


@login_required
@require_POST
def acknowledge_critical(request: HttpRequest, critical_id: int) -> HttpResponse:
    """A referrer acknowledges a critical result from their results page."""
    try:
        readers.acknowledge_critical(cast(User, request.user), critical_id, actor=_actor(request))
    except services.NotFound:
        raise Http404("No such critical result.") from None
    return redirect("reports:results")


@login_required
@require_GET
def result(request: HttpRequest, report_id: int) -> HttpResponse:
    try:
        found = readers.result(cast(User, request.user), report_id, actor=_actor(request))
    except services.NotFound:
        raise Http404("No such report.") from None
    return render(
        request,
        "reports/result.html",
        {
            "result": found,
            "study": found.report.study,
            "sections": sections_of(found.current),
            "earlier": list(reversed(found.versions[:-1])),
        },
    )
