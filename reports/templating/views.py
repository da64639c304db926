"""Management pages: tenant admins keep their hospital's templates and text blocks, group admins
their group's, every radiologist their own text blocks."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tenants.models import User

from . import queries


@login_required
@require_GET
def manage(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    return render(
        request,
        "reports/templating/manage.html",
        {
            "tenants": list(queries.administered_tenants(user)),
            "groups": list(queries.administered_groups(user)),
        },
    )
