"""The second factor: who must have one, checking a code, and the gate that sends people to it.

TOTP (RFC 6238) through django-otp, with django-otp's static device for one-time recovery codes.
A user who must have a second factor logs in with the password, then either enrols (first time)
or enters a code; until then the session can reach nothing but those two pages and logout.
WebAuthn is not offered yet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django_otp import match_token, user_has_device

from viewer.files import is_public_asset

from . import audit
from .models import AuditAction, AuditEvent, Membership, Outcome, Role, SecurityPolicy, User

# Roles that reach patient data across hospitals or change who sees what: always a second factor.
ALWAYS_MFA_ROLES = {Role.RADIOLOGIST, Role.TENANT_ADMIN, Role.GROUP_ADMIN}
MFA_LOCK_MINUTES = 15
TOO_MANY_CODES = "Too many wrong codes; try again in 15 minutes."
# The session remembers that this user need not enrol, so their requests do not ask every time.
_MFA_FREE_KEY = "skylight_mfa_free"


class CodeLocked(Exception):
    """Too many wrong codes for this user recently. The message is safe to show."""


def mfa_required_for(user: User) -> bool:
    """Radiologists, admins and staff always; referring physicians where any of their hospitals
    asks for it."""
    if user.is_staff or user.is_superuser:
        return True
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    if roles & ALWAYS_MFA_ROLES:
        return True
    if Role.REFERRING_PHYSICIAN in roles:
        return SecurityPolicy.objects.filter(
            tenant__memberships__user=user,
            tenant__memberships__role=Role.REFERRING_PHYSICIAN,
            referrer_mfa_required=True,
        ).exists()
    return False


def has_authenticator(user: User) -> bool:
    return bool(user.is_authenticated and user_has_device(user, confirmed=True))


def _recent_failures(user: User, now: datetime) -> int:
    since = now - timedelta(minutes=MFA_LOCK_MINUTES)
    return AuditEvent.objects.filter(
        actor_user=user, action=AuditAction.MFA_FAILED, occurred_at__gte=since
    ).count()


def check_code(
    user: User,
    code: str | None,
    *,
    address: str | None = None,
    purpose: str = "login",
    now: datetime | None = None,
) -> Any:
    """The device that accepts ``code`` (a TOTP code or an unused recovery code), or None.

    Every answer is audited. After SKYLIGHT_MFA_MAX_ATTEMPTS wrong codes in 15 minutes the user
    is locked (CodeLocked) even for right codes: six digits fall to guessing otherwise.
    """
    now = now or timezone.now()
    actor = audit.Actor.for_user(user, address=address)
    limit = settings.SKYLIGHT_MFA_MAX_ATTEMPTS
    if _recent_failures(user, now) >= limit:
        raise CodeLocked(TOO_MANY_CODES)
    cleaned = "".join((code or "").split())
    device = match_token(user, cleaned) if cleaned else None
    if device is not None:
        audit.record(
            action=AuditAction.MFA_VERIFY,
            actor=actor,
            tenant=None,
            detail={"purpose": purpose, "device": type(device).__name__},
        )
        return device
    audit.record(
        action=AuditAction.MFA_FAILED,
        actor=actor,
        tenant=None,
        outcome=Outcome.FAILURE,
        detail={"purpose": purpose},
    )
    if _recent_failures(user, now) >= limit:
        audit.record(
            action=AuditAction.LOCKOUT,
            actor=actor,
            tenant=None,
            outcome=Outcome.FAILURE,
            detail={"factor": "totp", "minutes": MFA_LOCK_MINUTES},
        )
        raise CodeLocked(TOO_MANY_CODES)
    return None


def step_up(user: User, mfa_code: str | None) -> bool:
    """reports.services.mfa_step_up_hook: signing asks the code of a user who has a device."""
    if not has_authenticator(user):
        return True
    try:
        return check_code(user, mfa_code, purpose="sign") is not None
    except CodeLocked:
        return False


def context(request: HttpRequest) -> dict[str, Callable[[], bool]]:
    """Templates ask ``user_has_authenticator`` (evaluated only where a template uses it)."""
    return {"user_has_authenticator": lambda: has_authenticator(request.user)}  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The gate
# ---------------------------------------------------------------------------------------------

_OPEN_PREFIXES = ("/mfa/", "/logout/", "/login/", "/static/", "/healthz")


def _wants_json(request: HttpRequest) -> bool:
    path = request.path
    return (
        path.startswith("/api/")
        or "/dicomweb/" in path
        or bool(request.headers.get("HX-Request"))
        or "json" in request.headers.get("Accept", "")
    )


class MfaRequiredMiddleware:
    """Until the second factor is verified, a signed-in session reaches only enrolment, the code
    page and logout. Bearer-token requests are not sessions and pass (tokens are their own
    factor, issued from a verified session)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._refusal(request)
        return refusal if refusal is not None else self.get_response(request)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        if not settings.SKYLIGHT_MFA_REQUIRED or is_public_asset(request.path):
            return None
        user: Any = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if request.path.startswith(_OPEN_PREFIXES) or request.session.get(_MFA_FREE_KEY):
            return None
        if has_authenticator(user):
            page, message = "mfa-verify", "Enter the code from your authenticator app."
        elif mfa_required_for(user):
            page, message = "mfa-enrol", "Set up an authenticator app to continue."
        else:
            request.session[_MFA_FREE_KEY] = True
            return None
        url = reverse(page)
        if _wants_json(request):
            return JsonResponse({"detail": f"{message} ({url})"}, status=401)
        if request.method == "GET":
            url += "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(url)
