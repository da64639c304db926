"""Session clocks: an idle timeout and an absolute lifetime, both audited when they end a session.

User activity is what a person does: page loads, saves, clicks. Background polls (the claim
heartbeat, the notification badge, the worklist's refresh, anything sent with the header
``X-Skylight-Background: 1``) are checked against the clocks but do not wind them, so a reading
room left open on an unattended workstation still locks after the idle timeout.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode

from viewer.files import is_public_asset

from . import audit
from .models import AuditAction

AUTHENTICATED_AT = "skylight_authenticated_at"
LAST_ACTIVITY = "skylight_last_activity"
# The last-activity stamp is written at most once a minute: a session write per request would
# cost a query on every page.
_STAMP_EVERY_SECONDS = 60
_BACKGROUND_PATHS = re.compile(r"(/heartbeat/?$|/notifications/badge/$)")


def is_background(request: HttpRequest) -> bool:
    return bool(
        request.headers.get("X-Skylight-Background") == "1"
        or _BACKGROUND_PATHS.search(request.path)
    )


@receiver(user_logged_in)
def _start_clocks(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[AUTHENTICATED_AT] = now
        request.session[LAST_ACTIVITY] = now


def expiry_reason(session: Any, now: float) -> str | None:
    """ "idle", "lifetime" or None, for a signed-in session at ``now`` (seconds since the epoch)."""
    started = session.get(AUTHENTICATED_AT)
    seen = session.get(LAST_ACTIVITY)
    if started is None or seen is None:
        return None
    if now - float(started) > settings.SKYLIGHT_SESSION_LIFETIME_HOURS * 3600:
        return "lifetime"
    if now - float(seen) > settings.SKYLIGHT_IDLE_TIMEOUT_MINUTES * 60:
        return "idle"
    return None


class SessionClockMiddleware:
    """Ends a session that has been idle too long or has lived too long, and says why."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_public_asset(request.path):  # the same for everyone: no session read
            return self.get_response(request)
        user: Any = request.user
        if not user.is_authenticated:
            return self.get_response(request)
        now = time.time()
        session = request.session
        if session.get(AUTHENTICATED_AT) is None:
            # A session from before these clocks: start them now.
            session[AUTHENTICATED_AT] = session[LAST_ACTIVITY] = now
        reason = expiry_reason(session, now)
        if reason is not None:
            return self._expire(request, user, reason)
        if (
            not is_background(request)
            and now - float(session[LAST_ACTIVITY]) >= _STAMP_EVERY_SECONDS
        ):
            session[LAST_ACTIVITY] = now
        return self.get_response(request)

    def _expire(self, request: HttpRequest, user: Any, reason: str) -> HttpResponse:
        audit.record(
            action=AuditAction.SESSION_EXPIRED,
            actor=audit.Actor.for_user(user, address=request.META.get("REMOTE_ADDR")),
            tenant=None,
            detail={"reason": reason},
        )
        logout(request)
        if reason == "idle":
            minutes = settings.SKYLIGHT_IDLE_TIMEOUT_MINUTES
            message = f"Your session ended after {minutes} minutes without activity; log in again."
        else:
            hours = settings.SKYLIGHT_SESSION_LIFETIME_HOURS
            message = f"Your session ended after {hours} hours; log in again."
        if (
            request.method != "GET"
            or request.path.startswith("/api/")
            or request.headers.get("HX-Request")
        ):
            return JsonResponse({"detail": message}, status=401)
        query = urlencode({"next": request.get_full_path(), "expired": reason})
        return HttpResponseRedirect(f"{reverse('login')}?{query}")
