"""The hospital's de-identification and share-link settings (``/t/<slug>/setup/deid/``), for its
admins only: anyone else, and another hospital's admin, get 404."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from tenants import audit
from tenants.models import Tenant, User
from tenants.onboarding.access import hospital_for_admin

from . import services


def _admin_tenant(request: HttpRequest, tenant_slug: str) -> tuple[User, Tenant]:
    return cast(User, request.user), hospital_for_admin(request.user, tenant_slug)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def settings(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    user, tenant = _admin_tenant(request, tenant_slug)
    deid_form, sharing_form = services.forms_for(
        tenant, request.POST if request.method == "POST" else None
    )
    status = 200
    if request.method == "POST":
        if deid_form.is_valid() and sharing_form.is_valid():
            changed = services.save_settings(
                tenant=tenant,
                actor=audit.Actor.for_user(user, address=request.META.get("REMOTE_ADDR")),
                deid_form=deid_form,
                sharing_form=sharing_form,
            )
            messages.success(request, "Settings saved." if changed else "Nothing changed.")
            return redirect("deid:settings", tenant_slug=tenant.slug)
        status = 400
    context = {"tenant": tenant, "deid_form": deid_form, "sharing_form": sharing_form}
    return render(request, "deid/settings.html", context, status=status)
