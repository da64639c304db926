"""The retention settings page of a hospital (its admins only; anyone else: not found)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from tenants import audit
from tenants.onboarding.access import hospital_for_admin

from . import policy as policies
from .services import preview


@login_required
@require_http_methods(["GET", "POST"])
def settings(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = hospital_for_admin(request.user, tenant_slug)
    policy = policies.policy_of(tenant)
    form = policies.RetentionForm(initial=policies.initial(policy))
    status = 200
    if request.method == "POST":
        form = policies.RetentionForm(request.POST)
        if form.is_valid():
            actor = audit.Actor.for_user(request.user, address=request.META.get("REMOTE_ADDR"))  # type: ignore[arg-type]
            changed = policies.save(tenant=tenant, data=form.cleaned_data, actor=actor)
            messages.success(request, "Retention policy saved." if changed else "No change.")
            return redirect("retention:settings", tenant_slug=tenant.slug)
        status = 400
    return render(
        request,
        "retention/settings.html",
        {
            "tenant": tenant,
            "form": form,
            "policy": policy,
            "preview": preview(tenant.pk, timezone.now()),
            "min_days": policies.MIN_DAYS,
        },
        status=status,
    )
