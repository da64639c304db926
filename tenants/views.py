from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from studies.queries import recent_studies

from . import audit
from .models import AuditAction
from .queries import readable_tenants


@login_required
def home(request: HttpRequest) -> HttpResponse:
    tenants = list(readable_tenants(request.user))  # type: ignore[arg-type]
    sections = [(tenant, recent_studies(tenant, limit=20)) for tenant in tenants]
    actor = audit.Actor.for_user(request.user, address=request.META.get("REMOTE_ADDR"))  # type: ignore[arg-type]
    audit.record_many(
        audit.build(
            action=AuditAction.STUDY_LIST,
            actor=actor,
            tenant=tenant,
            detail={"page": "home", "studies": [s.pk for s in studies]},
        )
        for tenant, studies in sections
        if studies
    )
    return render(request, "tenants/home.html", {"sections": sections})


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and reaches its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
