"""API tokens for their owner: issue with a scope and a lifetime, list, revoke."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db.models import Model, QuerySet
from django.http import Http404
from django.utils import timezone

from . import audit, services
from .models import ApiToken, AuditAction, Tenant, User
from .queries import readable_tenants

M = TypeVar("M", bound=Model)


def scope_of(user: User) -> int | None:
    """The hospital the request's token keeps its user to (tenants.auth notes it on the user),
    or None: a session, or a token for all the user's hospitals."""
    scope = getattr(user, "token_tenant_id", None)
    return int(scope) if scope is not None else None


def within_scope(user: User, queryset: QuerySet[M], field: str = "tenant") -> QuerySet[M]:
    """``queryset`` kept to the hospital of the request's token, if it has one: the rows of other
    hospitals are then not found, as for someone who never read there."""
    scope = scope_of(user)
    return queryset if scope is None else queryset.filter(**{f"{field}_id": scope})


class TokenRequestError(ValueError):
    """A token cannot be issued as asked. The message says what to change."""


def issue(
    *,
    user: User,
    name: str = "",
    tenant_slug: str = "",
    read_only: bool = False,
    days: int | None = None,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A token for ``user``, kept to one of their hospitals if asked, for at most the maximum
    lifetime. Returns the row and the plaintext (shown once)."""
    now = now or timezone.now()
    days = settings.SKYLIGHT_TOKEN_DEFAULT_DAYS if days is None else days
    maximum = settings.SKYLIGHT_TOKEN_MAX_DAYS
    if days < 1 or days > maximum:
        raise TokenRequestError(f"A token lives from 1 to {maximum} days; you asked for {days}.")
    tenant: Tenant | None = None
    if tenant_slug:
        tenant = readable_tenants(user).filter(slug=tenant_slug).first()
        if tenant is None:
            raise TokenRequestError(
                "You can keep a token only to a hospital you read for; pick one from the list."
            )
    return services.issue_token(
        user=user,
        name=name[:100],
        expires_at=now + timedelta(days=days),
        tenant=tenant,
        read_only=read_only,
    )


def owned_by(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).select_related("tenant")


def revoke(*, user: User, token_id: int, address: str | None = None) -> ApiToken:
    """Revoke one of the user's own tokens (someone else's is "not found"). Revoking twice is
    harmless and keeps the first time."""
    token = owned_by(user).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            action=AuditAction.TOKEN_REVOKED,
            actor=audit.Actor.for_user(user, address=address),
            tenant=token.tenant,
            detail={"token_prefix": token.prefix},
        )
    return token
