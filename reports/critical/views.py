"""Pages of critical results: the reading room's panel, the dashboard of open results, and the
acknowledgement link's page (no login: the token is the key, and the page names no patient)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenants import audit
from tenants.models import ActorType, AuditAction, User
from worklists import eligibility
from worklists import services as worklist
from worklists.models import WorkItem

from . import services
from .models import Category, CommunicationMethod, CriticalResult


def _me(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _actor(request: HttpRequest) -> audit.Actor:
    user = request.user if request.user.is_authenticated else None
    address = request.META.get("REMOTE_ADDR")
    if user is None:
        # Someone with an acknowledgement link: no account, known by the link they hold.
        return audit.Actor(
            type=ActorType.SYSTEM, address=address, extra={"via": "acknowledgement link"}
        )
    return audit.Actor.for_user(user, address=address)


def _item(user: User, item_id: int) -> WorkItem:
    try:
        return worklist.visible_item(user, item_id)
    except worklist.NotVisible:
        raise Http404("No such work item.") from None


def age_text(critical: CriticalResult, now: datetime) -> str:
    """ "42 min of 60 min", "3 h of 6 h": how long it has been open against its limit."""

    def short(seconds: float) -> str:
        minutes = int(seconds // 60)
        if minutes < 120:
            return f"{minutes} min"
        if minutes < 48 * 60:
            return f"{minutes // 60} h"
        return f"{minutes // (24 * 60)} d"

    age = (now - critical.flagged_at).total_seconds()
    return f"{short(age)} of {short(critical.limit().total_seconds())}"


def _panel(
    request: HttpRequest, item: WorkItem, *, errors: list[str] | None = None, note: str = ""
) -> HttpResponse:
    user = _me(request)
    now = timezone.now()
    reads = eligibility.may_read(user, item, now.date())
    criticals = services.of_item(item)
    shown = str(getattr(request, "_critical_link", ""))
    worklist._record(AuditAction.ITEM_VIEW, item, _actor(request), page="critical-panel")
    context = {
        "item": item,
        "criticals": [
            {"c": c, "age": age_text(c, now), "overdue": c.is_open and c.due_at <= now}
            for c in criticals
        ],
        "can_flag": reads,
        "can_communicate": reads or worklist.can_manage(user, item),
        "categories": Category.choices,
        "methods": CommunicationMethod.choices,
        "errors": errors or [],
        "note": note,
        "link": request.build_absolute_uri(shown) if shown else "",
    }
    return render(request, "reports/critical/panel.html", context)


def _done(
    request: HttpRequest, item: WorkItem, *, errors: list[str] | None = None, note: str = ""
) -> HttpResponse:
    if request.headers.get("HX-Request"):
        return _panel(request, item, errors=errors, note=note)
    for error in errors or []:
        messages.error(request, error)
    if note:
        messages.success(request, note)
    return redirect("worklists:item", item.pk)


@login_required
@require_GET
def panel(request: HttpRequest, item_id: int) -> HttpResponse:
    return _panel(request, _item(_me(request), item_id))


@login_required
@require_POST
def flag(request: HttpRequest, item_id: int) -> HttpResponse:
    user = _me(request)
    item = _item(user, item_id)
    post = request.POST
    category = int(post["category"]) if post.get("category", "").isdigit() else 0
    try:
        critical = services.flag(
            item=item, user=user, actor=_actor(request), category=category,
            finding=post.get("finding", ""), recipient=post.get("recipient", ""),
        )  # fmt: skip
    except services.CriticalError as error:
        return _done(request, item, errors=[str(error)])
    due = timezone.localtime(critical.due_at)
    return _done(request, item, note=f"Flagged critical; acknowledgement due by {due:%H:%M}.")


@login_required
@require_POST
def communicate(request: HttpRequest, critical_id: int) -> HttpResponse:
    user = _me(request)
    try:
        critical = services.visible_critical(user, critical_id)
    except services.NotFound:
        raise Http404("No such critical result.") from None
    post = request.POST
    recipient_user = None
    if post.get("recipient_username", "").strip():
        recipient_user = User.objects.filter(
            username=post["recipient_username"].strip(), is_active=True
        ).first()
        if recipient_user is None:
            return _done(request, critical.work_item, errors=["No active user has that username."])
    try:
        done = services.communicate(
            critical=critical, user=user, actor=_actor(request), method=post.get("method", ""),
            recipient_name=post.get("recipient_name", ""),
            recipient_role=post.get("recipient_role", ""), recipient_user=recipient_user,
            recipient_contact=post.get("recipient_contact", ""), note=post.get("note", ""),
            confirmed=post.get("confirmed") == "on",
        )  # fmt: skip
    except services.CriticalError as error:
        return _done(request, critical.work_item, errors=[str(error)])
    note = "Communication recorded."
    if done.ack_path:
        # Shown this once (only its hash is kept): for a recipient without e-mail in Skylight.
        request._critical_link = done.ack_path  # type: ignore[attr-defined]
        note += " The acknowledgement link was sent; copy it below if you send it yourself."
    return _done(request, critical.work_item, note=note)


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    now = timezone.now()
    results = list(services.open_for(user, now=now)[:500])
    audit.record(
        action=AuditAction.CRITICAL_LIST,
        actor=_actor(request),
        tenant=None,
        detail={"results": len(results), "critical": [c.pk for c in results][:100]},
    )
    rows = [
        {"c": c, "age": age_text(c, now), "overdue": c.due_at <= now, "item": c.work_item}
        for c in results
    ]
    return render(request, "reports/critical/dashboard.html", {"rows": rows})


def _no_store(response: HttpResponse) -> HttpResponse:
    # The token is in the URL: keep it out of caches and of the Referer of any link followed.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_http_methods(["GET", "POST"])
def ack(request: HttpRequest, token: str) -> HttpResponse:
    """What the link acknowledges, and the button. Shows the hospital, the category, the study's
    accession number, modality and date, who flagged it and when: enough for the physician to
    find the patient in their own records, nothing that names the patient to whoever else may
    see the link. The finding itself is for those who may open the study in Skylight."""
    communication = services.open_link(token)
    if communication is None:
        return _no_store(render(request, "reports/critical/ack_invalid.html", status=404))
    critical = communication.critical
    item = critical.work_item
    actor = _actor(request)
    first = None
    if request.method == "POST":
        critical, first = services.acknowledge_by_link(
            token=token, actor=actor, name=request.POST.get("name", "")[:200]
        )
    else:
        worklist._record(
            AuditAction.RESULT_VIEW, item, actor, critical=critical.pk,
            communication=communication.pk, page="acknowledgement link",
        )  # fmt: skip
    in_skylight = False
    if request.user.is_authenticated:
        try:
            worklist.visible_item(_me(request), item.pk)
            in_skylight = True
        except worklist.NotVisible:
            pass
    context: dict[str, Any] = {
        "critical": critical,
        "communication": communication,
        "item": item,
        "study": item.study,
        "first": first,
        "in_skylight": in_skylight,
    }
    return _no_store(render(request, "reports/critical/ack.html", context))
