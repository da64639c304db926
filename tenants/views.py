from __future__ import annotations

from base64 import b32encode
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from studies.queries import recent_studies

from . import audit, mfa
from .models import AuditAction, SecurityPolicy, Tenant
from .onboarding.access import administered
from .queries import is_tenant_admin, readable_tenants


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
    administered_tenants, administered_groups = administered(request.user)
    context = {
        "sections": sections,
        "administered_tenants": administered_tenants,
        "administered_groups": administered_groups,
    }
    return render(request, "tenants/home.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and reaches its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# ---------------------------------------------------------------------------------------------
# Logging in: the password (with django-axes lockout), then the second factor (tenants.mfa)
# ---------------------------------------------------------------------------------------------

_EXPIRED = {
    "idle": "Your session ended after a while without activity; log in again.",
    "lifetime": "Your session reached its maximum length; log in again.",
}


class LoginView(auth_views.LoginView):
    """Django's login page, telling why a session ended when one did."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["expired"] = _EXPIRED.get(self.request.GET.get("expired", ""), "")
        return context


def locked_out(request: HttpRequest, credentials: Any = None, *args: Any) -> HttpResponse:
    """django-axes' answer to a locked username+address (AXES_LOCKOUT_CALLABLE)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/login.html",
        {"locked": f"Too many attempts; try again in {minutes} minutes."},
        status=429,
    )


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def _address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


@login_required
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the authenticator app, or a recovery code."""
    user: Any = request.user
    if not mfa.has_authenticator(user):
        return redirect("mfa-enrol")
    error = ""
    if request.method == "POST":
        try:
            device = mfa.check_code(user, request.POST.get("code"), address=_address(request))
        except mfa.CodeLocked as exc:
            logout(request)
            return render(request, "registration/login.html", {"locked": str(exc)}, status=429)
        if device is not None:
            otp_login(request, device)
            return HttpResponseRedirect(_next_url(request))
        error = "That code is not right. Enter the 6 digits your app shows now."
    return render(
        request,
        "tenants/mfa_verify.html",
        {"error": error, "next": _next_url(request)},
        status=400 if error else 200,
    )


def _qr_svg(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    svg: str = image.to_string(encoding="unicode")
    return svg


@login_required
@require_http_methods(["GET", "POST"])
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: the secret is shown (as a QR code and as text) only until a
    first code confirms it; then ten recovery codes are shown once."""
    user: Any = request.user
    if mfa.has_authenticator(user):
        messages.info(request, "Your authenticator app is already set up.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    error = ""
    if request.method == "POST":
        code = "".join(request.POST.get("code", "").split())
        if code and device.verify_token(code):
            with transaction.atomic():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                StaticDevice.objects.filter(user=user).delete()
                recovery = StaticDevice.objects.create(user=user, name="Recovery codes")
                codes = [StaticToken.random_token() for _ in range(10)]
                for value in codes:
                    recovery.token_set.create(token=value)
                audit.record(
                    action=AuditAction.MFA_ENROL,
                    actor=audit.Actor.for_user(user, address=_address(request)),
                    tenant=None,
                )
            otp_login(request, device)
            return render(
                request, "tenants/mfa_recovery.html", {"codes": codes, "next": _next_url(request)}
            )
        error = "That code is not right. Enter the 6 digits your app shows now."
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "tenants/mfa_enrol.html",
        {
            "qr_svg": _qr_svg(device.config_url),
            "secret": secret,
            "error": error,
            "required": mfa.mfa_required_for(user),
            "next": _next_url(request),
        },
        status=400 if error else 200,
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change the password; the validators of AUTH_PASSWORD_VALIDATORS say what is missing."""

    template_name = "registration/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit.record(
            action=AuditAction.PASSWORD_CHANGE,
            actor=audit.Actor.for_user(self.request.user, address=_address(self.request)),  # type: ignore[arg-type]
            tenant=None,
        )
        messages.success(self.request, "Your password has been changed.")
        return response


@login_required
@require_http_methods(["GET", "POST"])
def security_policy(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """A hospital's security choices, for its admins only (anyone else: not found)."""
    user: Any = request.user
    tenant = Tenant.objects.filter(slug=tenant_slug, is_active=True).first()
    if tenant is None or not is_tenant_admin(user, tenant):
        raise Http404("No such hospital.")
    policy, _ = SecurityPolicy.objects.get_or_create(tenant=tenant)
    if request.method == "POST":
        wanted = request.POST.get("referrer_mfa_required") == "on"
        if wanted != policy.referrer_mfa_required:
            policy.referrer_mfa_required = wanted
            policy.updated_at = timezone.now()
            with transaction.atomic():
                policy.save(update_fields=["referrer_mfa_required", "updated_at"])
                audit.record(
                    action=AuditAction.SETTINGS_CHANGE,
                    actor=audit.Actor.for_user(user, address=_address(request)),
                    tenant=tenant,
                    detail={"settings": "security", "fields": ["referrer_mfa_required"]},
                )
        messages.success(request, "Security settings saved.")
        return redirect("security-policy", tenant_slug=tenant.slug)
    return render(request, "tenants/security_policy.html", {"tenant": tenant, "policy": policy})
