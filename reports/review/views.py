"""Co-sign pages: the validator's queue, one request (validate with the password, or return
with comments), and the hospital admins' validation rule. Plain forms: each POST calls one
service and redirects; errors are shown on the page."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reports import services as reports
from reports.views import sections_of
from tenants import audit
from tenants.models import AuditAction, Membership, Role, Tenant, User
from worklists.views import person_name

from . import services


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(_me(request), address=request.META.get("REMOTE_ADDR"))


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """Preliminaries waiting for this hospital radiologist, oldest first; and one's own
    requests, to follow them. Patient names are shown: audited per request listed."""
    user = _me(request)
    waiting = services.queue(user)
    sent = list(
        services.requests_for(user).filter(requested_by=user).order_by("-created_at", "-id")[:50]
    )
    shown = {r.pk: r for r in [*waiting, *sent]}
    services.audit_listed(list(shown.values()), _actor(request), "review queue")
    return render(
        request,
        "reports/review/queue.html",
        {
            "waiting": [(r, person_name(r.report.work_item.patient_name)) for r in waiting],
            "sent": sent,
        },
    )


@login_required
@require_GET
def detail(request: HttpRequest, request_id: int) -> HttpResponse:
    user = _me(request)
    try:
        found = services.visible_request(user, request_id)
    except reports.NotFound:
        raise Http404("No such review request.") from None
    item = found.report.work_item
    reports._record(AuditAction.REPORT_VIEW, found.report, item, _actor(request), review=found.pk)
    return render(
        request,
        "reports/review/detail.html",
        {
            "review": found,
            "item": item,
            "patient": person_name(item.patient_name),
            "sections": sections_of(found.version),
            "may_decide": found.is_open and found.may_be_decided_by(user),
            "is_requester": found.requested_by_id == user.pk,
        },
    )


@login_required
@require_POST
def decide(request: HttpRequest, request_id: int, action: str) -> HttpResponse:
    user = _me(request)
    try:
        found = services.visible_request(user, request_id)
    except reports.NotFound:
        raise Http404("No such review request.") from None
    actor = _actor(request)
    try:
        if action == "validate":
            services.validate(
                request=found,
                user=user,
                actor=actor,
                password=request.POST.get("password", ""),
                mfa_code=request.POST.get("mfa_code") or None,
                comments=request.POST.get("comments", ""),
            )
            messages.success(request, "Validated: the report is final, signed by you.")
            return redirect("reports:review:queue")
        if action == "return":
            services.return_to_author(
                request=found, user=user, actor=actor, comments=request.POST.get("comments", "")
            )
            messages.success(request, f"Returned to {found.requested_by} with your comments.")
            return redirect("reports:review:queue")
        if action == "cancel":
            services.cancel(request=found, user=user, actor=actor)
            messages.success(request, "The review request is cancelled.")
            return redirect("worklists:item", found.report.work_item_id)
    except reports.ReportError as error:
        messages.error(request, str(error))
        return redirect("reports:review:detail", found.pk)
    raise Http404("No such action.")


@login_required
@require_http_methods(["GET", "POST"])
def policy(request: HttpRequest) -> HttpResponse:
    """The validation rule of each hospital this user administers."""
    user = _me(request)
    tenants = list(
        Tenant.objects.filter(
            memberships__user=user, memberships__role=Role.TENANT_ADMIN, is_active=True
        ).order_by("name")
    )
    if not tenants:
        raise Http404("No hospital to set a rule for.")
    if request.method == "POST":
        chosen = next((t for t in tenants if t.slug == request.POST.get("tenant")), None)
        if chosen is None:
            raise Http404("No such hospital.")
        required = request.POST.get("requires_validation") == "on"
        services.set_policy(
            tenant=chosen, user=user, actor=_actor(request), requires_validation=required
        )
        messages.success(
            request,
            f"{chosen.name}: preliminaries of reading groups "
            + ("now need validation by a hospital radiologist." if required else "need none."),
        )
        return redirect("reports:review:policy")
    rows = [
        (
            tenant,
            services.policy_of(tenant),
            Membership.objects.filter(tenant=tenant, role=Role.RADIOLOGIST).count(),
        )
        for tenant in tenants
    ]
    return render(request, "reports/review/policy.html", {"rows": rows})
