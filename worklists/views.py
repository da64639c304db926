"""Worklist pages: the unified list, one item's page, and the SLA and turnaround dashboard.

Views parse, authorize, call one service or query, and render. Every change goes through
``worklists.services``, which audits it; the pages audit what they showed (the list per tenant,
the item page per view), with identifiers and filter keys only, never filter values: ``q`` may be
a patient's name.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from tenants import audit
from tenants.models import AuditAction, Membership, ReadingGroup, Role, Tenant, User
from tenants.usage import metrics as usage_metrics

from . import eligibility, metrics, queries, services
from .models import OPEN_STATES, PriorityClass, ReadingState, SavedView, WorkItem

# More than this on one screen is not a worklist any more; filters narrow it.
LIST_LIMIT = 200
OVERDUE_LIMIT = 100
SORT_LABELS = {
    "priority": "Priority, then deadline",
    "sla": "Deadline",
    "arrived": "Oldest first",
    "-arrived": "Newest first",
}
STATE_LABELS = {
    "": "Open",
    "scheduled": "Not claimed",
    "in_progress": "Held by me",
    "mine": "Held by me (all)",
    "completed": "Completed",
    "canceled": "Canceled",
}
SLA_LABELS = {
    "ok": "On time",
    "warning": "Due soon",
    "overdue": "Overdue",
    "paused": "Paused",
    "done": "Done",
}

View = Callable[..., HttpResponse]


def _login_required(view: View) -> View:
    """login_required, except that an htmx poll whose session ended sends the whole page to the
    login form instead of swapping the login form into the table."""
    guarded = login_required(view)

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        htmx = _htmx(request)
        if not request.user.is_authenticated and htmx:
            login = redirect_to_login(htmx.current_url_abs_path or reverse("worklists:list"))
            return HttpResponseClientRedirect(login.url)
        return guarded(request, *args, **kwargs)

    return wrapped


def _htmx(request: HttpRequest) -> HtmxDetails | None:
    """The htmx details the middleware attached, when this request came from htmx."""
    details: HtmxDetails | None = getattr(request, "htmx", None)
    return details if details else None


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(_me(request), address=request.META.get("REMOTE_ADDR"))


def _lease_key(item_id: int) -> str:
    return f"worklist.lease.{item_id}"


# ---------------------------------------------------------------------------------------------
# Presentation helpers
# ---------------------------------------------------------------------------------------------


def format_remaining(remaining: timedelta) -> str:
    """ "42 min", "3 h 05 min", "-1 h 05 min": whole minutes, towards zero."""
    seconds = int(remaining.total_seconds())
    sign = "-" if seconds <= -60 else ""
    minutes = abs(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    return f"{sign}{minutes} min"


def person_name(dicom_name: str) -> str:
    """A DICOM PN as people write it: "DOE^JANE^^DR" becomes "DOE, JANE DR"."""
    parts = dicom_name.split("=")[0].split("^")
    family, rest = (parts[0], [p for p in parts[1:] if p]) if parts else ("", [])
    return f"{family}, {' '.join(rest)}" if family and rest else family or " ".join(rest)


def priority_level(rank: int) -> str:
    """The colour band of a priority class; a tenant's own classes fall into the nearest one."""
    if rank <= 10:
        return "stat"
    return "urgent" if rank <= 20 else "routine"


def held_text(holder: User | None, since: datetime | None) -> str:
    when = f" since {timezone.localtime(since):%H:%M}" if since else ""
    return f"Held by {holder or 'another radiologist'}{when}"


@dataclass
class Row:
    item: WorkItem
    sla: str
    sla_label: str
    remaining: str
    level: str
    patient: str
    held_by_me: bool
    assigned_to_me: bool


def _row(item: WorkItem, user: User, now: datetime) -> Row:
    status = queries.sla_status(item, now)
    return Row(
        item=item,
        sla=status,
        sla_label=SLA_LABELS[status],
        remaining=format_remaining(item.sla_remaining(now)) if status != "done" else "",
        level=priority_level(item.priority_rank),
        patient=person_name(item.patient_name),
        held_by_me=item.holder_id == user.pk and item.lease_is_live(now),
        assigned_to_me=item.assigned_to_id == user.pk,
    )


# ---------------------------------------------------------------------------------------------
# The list
# ---------------------------------------------------------------------------------------------


@_login_required
@require_GET
@usage_metrics.timed_worklist("page")
def worklist(request: HttpRequest) -> HttpResponse:
    """Every item the user may read, across hospitals; the table body polls itself."""
    user = _me(request)
    now = timezone.now()
    error = ""
    try:
        filters = queries.Filters.parse(request.GET)
    except queries.FilterError as exc:
        filters, error = queries.Filters(), str(exc)
    clauses = eligibility.coverage(user, now.date())
    items: list[WorkItem] = []
    if not error:
        listed = queries.worklist(user, filters, now=now, clauses=clauses)
        items = queries.rows(queries.page_ids(listed, 0, LIST_LIMIT + 1))
    more = len(items) > LIST_LIMIT
    items = items[:LIST_LIMIT]
    _audit_list(request, items, filters)
    context: dict[str, Any] = {
        "rows": [_row(item, user, now) for item in items],
        "more": more,
        "limit": LIST_LIMIT,
        "columns": 11,
        "filtered": bool(request.GET),
        "next": request.get_full_path(),
    }
    if _htmx(request):
        return render(request, "worklists/_rows.html", context)
    context.update(_list_page_context(user, filters, clauses, now))
    context["error"] = error
    return render(request, "worklists/list.html", context, status=400 if error else 200)


def _audit_list(request: HttpRequest, items: list[WorkItem], filters: queries.Filters) -> None:
    by_tenant: dict[int, list[WorkItem]] = defaultdict(list)
    for item in items:
        by_tenant[item.tenant_id].append(item)
    actor = _actor(request)
    keys = sorted(filters.as_dict())
    audit.record_many(
        audit.build(
            action=AuditAction.WORKLIST_LIST,
            actor=actor,
            tenant=shown[0].tenant,
            detail={"page": "worklist", "items": [i.pk for i in shown], "filters": keys},
        )
        for shown in by_tenant.values()
    )


def _list_page_context(
    user: User, filters: queries.Filters, clauses: list[eligibility.Clause], now: datetime
) -> dict[str, Any]:
    tenant_ids = sorted({c.tenant_id for c in clauses})
    modalities = sorted({m for c in clauses for m in c.modalities})
    subspecialties = sorted({s for c in clauses for s in (c.subspecialties or ()) if s})
    priorities: dict[str, str] = {}
    for code, name in (
        PriorityClass.objects.filter(Q(tenant__isnull=True) | Q(tenant_id__in=tenant_ids))
        .order_by("rank", "code")
        .values_list("code", "name")
    ):
        priorities.setdefault(code, name)
    views = list(queries.saved_views(user))
    counts = queries.view_counts(user, views, now=now)
    groups = list(queries.groups_of(user).order_by("name"))
    admin_of = set(
        Membership.objects.filter(
            user=user, role=Role.GROUP_ADMIN, group__isnull=False
        ).values_list("group_id", flat=True)
    )
    current = filters.as_dict()
    return {
        "filters": filters,
        "tenants": list(Tenant.objects.filter(id__in=tenant_ids).order_by("name")),
        "priorities": list(priorities.items()),
        "modalities": modalities,
        "subspecialties": subspecialties,
        "states": list(STATE_LABELS.items()),
        "sorts": list(SORT_LABELS.items()),
        "views": [
            {
                "view": view,
                "count": counts.get(view.pk),
                "query": urlencode(view.filters),
                "current": view.filters == current,
                "can_delete": view.owner_id == user.pk or view.group_id in admin_of,
            }
            for view in views
        ],
        "groups": groups,
        "current_filters": [(k, v) for k, v in current.items()],
    }


@_login_required
@require_POST
def save_view(request: HttpRequest) -> HttpResponse:
    """Save the current filters under a name: for me alone, or shared with one of my groups."""
    user = _me(request)
    name = request.POST.get("name", "").strip()
    filters_data = {k: request.POST.get(k, "") for k in queries.FILTER_KEYS}
    back = reverse("worklists:list")
    try:
        filters = queries.Filters.parse(filters_data)
    except queries.FilterError as exc:
        messages.error(request, f"This view cannot be saved: {exc}")
        return redirect(back)
    back = f"{back}?{urlencode(filters.as_dict())}"
    if not name or len(name) > 80:
        messages.error(request, "Give the view a name of 1 to 80 characters.")
        return redirect(back)
    group: ReadingGroup | None = None
    share = request.POST.get("share", "")
    if share:
        group = queries.groups_of(user).filter(pk=int(share)).first() if share.isdigit() else None
        if group is None:
            messages.error(request, "You can share a view only with a reading group you are in.")
            return redirect(back)
    SavedView.objects.create(
        owner=None if group else user, group=group, name=name, filters=filters.as_dict()
    )
    shared = f", shared with {group.name}" if group else ""
    messages.success(request, f"Saved the view “{name}”{shared}.")
    return redirect(back)


@_login_required
@require_POST
def delete_view(request: HttpRequest, view_id: int) -> HttpResponse:
    """Delete my own view, or a view shared with a group I lead."""
    user = _me(request)
    view = queries.saved_views(user).filter(pk=view_id).first()
    if view is None:
        raise Http404("No such saved view.")
    if view.owner_id != user.pk and not (view.group and queries.is_group_admin(user, view.group)):
        messages.error(request, "Only the group's admins can delete a view shared with it.")
    else:
        view.delete()
        messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect("worklists:list")


# ---------------------------------------------------------------------------------------------
# One item
# ---------------------------------------------------------------------------------------------


def _visible(user: User, item_id: int) -> WorkItem:
    try:
        return services.visible_item(user, item_id)
    except services.NotVisible:
        raise Http404("No such work item.") from None


@_login_required
@require_GET
def item_page(request: HttpRequest, item_id: int) -> HttpResponse:
    user = _me(request)
    try:
        item = services.visible_item(user, item_id)
    except services.NotVisible:
        # The hospital's own radiologists and admins may break the glass for it: read-only,
        # audited, their admins told (tenants/auditlog/breakglass.py). Anyone else: not found.
        from tenants.auditlog.breakglass import item_for

        if item_for(user, item_id) is not None:
            return redirect("audit:break-glass", item_id=item_id)
        raise Http404("No such work item.") from None
    now = timezone.now()
    manage = services.can_manage(user, item)
    reads = eligibility.may_read(user, item, now.date())
    live = item.lease_is_live(now)
    held_by_me = live and item.holder_id == user.pk
    token = request.session.get(_lease_key(item.pk))
    verdicts = eligibility.explain(item, now.date()) if manage else []
    readers: dict[int, User] = {}
    for verdict in verdicts:
        if verdict.can_read:
            readers.setdefault(verdict.user.pk, verdict.user)
    patient = item.patient
    status = queries.sla_status(item, now)
    audit.record(
        action=AuditAction.ITEM_VIEW,
        actor=_actor(request),
        tenant=item.tenant,
        study_instance_uid=item.study.study_instance_uid,
        patient_ref=item.patient_id,
        detail={"item": item.pk, "page": "item"},
    )
    context = {
        "item": item,
        "patient": patient,
        "patient_display": person_name(patient.patient_name),
        "modalities": ", ".join(m for m in item.modalities.split("\\") if m),
        "sla": status,
        "sla_label": SLA_LABELS[status],
        "remaining": format_remaining(item.sla_remaining(now)),
        "level": priority_level(item.priority_rank),
        "open": item.state in OPEN_STATES,
        "live": live,
        "held_by_me": held_by_me,
        # A claim made in another browser, or given by reassignment: this session has no token.
        "lease_here": held_by_me and token == str(item.lease_token),
        "held_text": held_text(item.holder, item.claimed_at) if live and not held_by_me else "",
        # A signed preliminary is read: it waits for its final (its author, or a validator).
        "can_claim": reads
        and item.state in OPEN_STATES
        and not (live and not held_by_me)
        and item.reading_state != ReadingState.PRELIMINARY,
        "can_read": reads,
        "manage": manage,
        "verdicts": verdicts,
        "readers": list(readers.values()),
        "priorities": services.priorities_of(item.tenant) if manage else [],
        # IHE Invoke Image Display style: the viewer checks access and opens the study.
        "viewer_url": reverse("viewer:page", args=["viewer"])
        + "?"
        + urlencode(
            {"StudyInstanceUIDs": item.study.study_instance_uid, "datasources": item.tenant.slug}
        ),
    }
    # The item page is the reading room: the report, its history and the feature panels.
    from reports.views import room_context  # reports builds on worklists, not the reverse

    context.update(room_context(request, item, held_by_me=held_by_me))
    return render(request, "worklists/item.html", context)


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@_login_required
@require_POST
def item_action(request: HttpRequest, item_id: int, action: str) -> HttpResponse:
    """Claim, release, pause, resume, reassign, priority, cancel: one service call each."""
    user = _me(request)
    item = _visible(user, item_id)
    actor = _actor(request)
    page = reverse("worklists:item", args=[item.pk])
    post = request.POST
    reason = post.get("reason", "")
    try:
        if action == "claim":
            item = services.claim(item, user, actor)
            usage_metrics.claimed("page")
            request.session[_lease_key(item.pk)] = str(item.lease_token)
            messages.success(request, "You hold this study. Nobody else can claim it now.")
        elif action == "release":
            services.release(item, user, actor, reason=reason)
            request.session.pop(_lease_key(item.pk), None)
            messages.success(request, "Released: the study is back on the worklist.")
        elif action == "pause":
            services.pause_sla(item, user, actor, reason=reason)
            messages.success(request, "The SLA clock is paused.")
        elif action == "resume":
            services.resume_sla(item, user, actor)
            messages.success(request, "The SLA clock runs again; the deadline moved accordingly.")
        elif action == "reassign":
            to_user = _reader(post.get("to", ""))
            services.reassign(item, user, to_user, actor, reason=reason)
            messages.success(request, f"Reassigned to {to_user}.")
        elif action == "priority":
            services.set_priority(
                item, user, actor, code=post.get("priority", ""), clinical_question=None
            )
            messages.success(request, "Priority changed; the deadline follows from arrival.")
        elif action == "cancel":
            services.cancel(item, user, actor, reason=reason)
            messages.success(request, "The work item is canceled.")
        else:
            raise Http404("No such action.")
    except services.Conflict as exc:
        if exc.holder is not None:
            messages.error(request, held_text(exc.holder, exc.since) + ".")
        else:
            messages.error(request, str(exc))
        return redirect(_safe_next(request, page) if action == "claim" else page)
    except services.WorklistError as exc:
        messages.error(request, str(exc))
    return redirect(page)


def _reader(value: str) -> User:
    user = User.objects.filter(pk=int(value), is_active=True).first() if value.isdigit() else None
    if user is None:
        raise services.WorklistError("Choose the radiologist to reassign the study to.")
    return user


@_login_required
@require_POST
def heartbeat(request: HttpRequest, item_id: int) -> JsonResponse:
    """Keep this browser's claim alive (the item page calls it every minute)."""
    user = _me(request)
    try:
        item = services.visible_item(user, item_id)
        token = request.session.get(_lease_key(item.pk), "")
        if not token:
            raise services.Conflict(
                "Your claim on this study has ended; claim it again to go on reading."
            )
        item = services.heartbeat(item, user, token)
    except services.NotVisible as exc:
        return JsonResponse({"detail": str(exc)}, status=404)
    except services.WorklistError as exc:
        request.session.pop(_lease_key(item_id), None)
        return JsonResponse({"detail": str(exc)}, status=409)
    expires = item.lease_expires_at
    return JsonResponse({"lease_expires_at": expires.isoformat() if expires else None})


# ---------------------------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------------------------


@_login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """SLA clocks of open items and turnaround of read ones, over what the user may read or
    manage. No patient data on this page, so nothing to audit."""
    user = _me(request)
    now = timezone.now()
    items = metrics.measurable_items(user)
    open_items = list(
        items.filter(state__in=OPEN_STATES)
        .select_related("tenant", "priority", "holder")
        .order_by("sla_due_at", "id")
    )
    per_tenant: dict[str, Counter[str]] = defaultdict(Counter)
    overdue: list[dict[str, Any]] = []
    for item in open_items:
        status = queries.sla_status(item, now)
        per_tenant[item.tenant.name][status] += 1
        if status == "overdue" and len(overdue) < OVERDUE_LIMIT:
            overdue.append(
                {
                    "item": item,
                    "by": format_remaining(-item.sla_remaining(now)),
                    "level": priority_level(item.priority_rank),
                    "held": item.holder if item.lease_is_live(now) else None,
                }
            )
    statuses = ["ok", "warning", "overdue", "paused"]
    sla_rows = [
        {"tenant": name, "counts": [counts[s] for s in statuses], "total": sum(counts.values())}
        for name, counts in sorted(per_tenant.items())
    ]
    turnaround = [
        (title, metrics.turnaround(items, by))
        for title, by in (
            ("Per hospital", "tenant"),
            ("Per priority", "priority"),
            ("Per radiologist", "radiologist"),
        )
    ]
    return render(
        request,
        "worklists/dashboard.html",
        {
            "statuses": [SLA_LABELS[s] for s in statuses],
            "status_keys": statuses,
            "sla_rows": sla_rows,
            "overdue": overdue,
            "overdue_limit": OVERDUE_LIMIT,
            "turnaround": turnaround,
        },
    )
