"""The audit page at /audit/: a hospital admin's own log, filtered, paginated, exportable.

The filter form posts (rather than gets) so that a patient ID or study UID typed into it never
lands in a URL, and with it in a proxy's or server's access log.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from tenants import audit
from tenants.models import AuditAction, BreakGlass, Outcome

from . import breakglass, exports, queries, services

PAGE_SIZE = 50
BREAK_GLASS_SHOWN = timedelta(days=30)


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(request.user, address=request.META.get("REMOTE_ADDR"))  # type: ignore[arg-type]


def _refused(request: HttpRequest) -> HttpResponse:
    return render(
        request, "tenants/audit/refused.html", {"message": services.NotAnAdmin.message}, status=403
    )


@login_required
@require_http_methods(["GET", "POST"])
def log(request: HttpRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    try:
        tenant = services.tenant_for(request.user, str(params.get("tenant", "")))  # type: ignore[arg-type]
    except services.NotAnAdmin:
        return _refused(request)
    context = {
        "tenant": tenant,
        "tenants": queries.admin_tenants(request.user),  # type: ignore[arg-type]
        "values": {k: params.get(k, "") for k in queries.Filters.KEYS},
        "actions": AuditAction.values,
        "outcomes": Outcome.values,
    }
    try:
        filters = queries.Filters.parse(params)
    except queries.FilterError as exc:
        context["error"] = str(exc)
        return render(request, "tenants/audit/log.html", context, status=400)
    page_number = params.get("page", "1")
    rows = services.read(tenant, filters, _actor(request), page=page_number)
    page = Paginator(rows, PAGE_SIZE).get_page(page_number)
    context["page"] = page
    context["rows"] = exports.with_patients(tenant, list(page.object_list))
    context["break_glass"] = BreakGlass.objects.filter(
        tenant=tenant, granted_at__gte=timezone.now() - BREAK_GLASS_SHOWN
    ).select_related("user")[:50]
    if filters.user or filters.token:
        context["patients"] = services.patients_accessed(tenant, filters, _actor(request))
    return render(request, "tenants/audit/log.html", context)


@login_required
@require_POST
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    try:
        tenant = services.tenant_for(request.user, str(request.POST.get("tenant", "")))  # type: ignore[arg-type]
    except services.NotAnAdmin:
        return _refused(request)
    try:
        filters = queries.Filters.parse(request.POST)
        result = services.export(tenant, filters, fmt, _actor(request))
    except (queries.FilterError, services.TooMany, ValueError) as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(result.content, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest, item_id: int) -> HttpResponse:
    """Ask for emergency read access to one work item of your own hospital, giving a reason."""
    user = request.user
    item = breakglass.item_for(user, item_id)  # type: ignore[arg-type]
    if item is None:
        raise Http404("No such work item.")
    context = {"item": item, "minutes": breakglass.minutes(), "reason": ""}
    if request.method == "POST":
        reason = str(request.POST.get("reason", ""))
        try:
            breakglass.open_item(user, item_id, reason, _actor(request))  # type: ignore[arg-type]
        except breakglass.Refused as exc:
            context.update(error=str(exc), reason=reason)
            return render(request, "tenants/audit/break_glass.html", context, status=400)
        return redirect("worklists:item", item_id=item_id)
    return render(request, "tenants/audit/break_glass.html", context)
