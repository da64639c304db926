"""Audit logins and logouts."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from . import audit
from .models import ActorType, AuditAction, Outcome


def _address(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in)
def _on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit.record(
        action=AuditAction.LOGIN,
        actor=audit.Actor.for_user(user, address=_address(request)),
        tenant=None,
    )


@receiver(user_logged_out)
def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record(
            action=AuditAction.LOGOUT,
            actor=audit.Actor.for_user(user, address=_address(request)),
            tenant=None,
        )


@receiver(user_login_failed)
def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # The attempted username is kept: it is an account name, not patient data.
    audit.record(
        action=AuditAction.LOGIN_FAILED,
        actor=audit.Actor(type=ActorType.USER, address=_address(request)),
        tenant=None,
        outcome=Outcome.FAILURE,
        detail={"username": str(credentials.get("username", ""))[:150]},
    )


@receiver(user_locked_out)
def _on_locked_out(
    sender: Any,
    request: HttpRequest | None = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    """django-axes locked a username+address pair after too many wrong passwords."""
    audit.record(
        action=AuditAction.LOCKOUT,
        actor=audit.Actor(type=ActorType.USER, address=ip_address or _address(request)),
        tenant=None,
        outcome=Outcome.FAILURE,
        detail={"username": str(username or "")[:150], "factor": "password"},
    )
