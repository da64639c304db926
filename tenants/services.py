"""Writes to the tenancy: one transaction each, with an explicit actor where a person acts."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import audit
from .models import (
    AllowedCaller,
    ApiToken,
    AuditAction,
    CalledAETitle,
    DicomDestination,
    Membership,
    ReadingAgreement,
    ReadingGroup,
    Tenant,
    User,
)

TOKEN_PREFIX = "sky"


def create_tenant(*, slug: str, name: str, quiet_period_seconds: int | None = None) -> Tenant:
    tenant = Tenant(slug=slug, name=name)
    if quiet_period_seconds is not None:
        tenant.quiet_period_seconds = quiet_period_seconds
    tenant.full_clean()
    tenant.save()
    return tenant


def add_called_ae_title(*, tenant: Tenant, ae_title: str) -> CalledAETitle:
    row = CalledAETitle(tenant=tenant, ae_title=ae_title.strip())
    row.full_clean()
    row.save()
    return row


def allow_caller(
    *, tenant: Tenant, ae_title: str = "", network: str = "", description: str = ""
) -> AllowedCaller:
    rule = AllowedCaller(
        tenant=tenant, ae_title=ae_title.strip(), network=network.strip(), description=description
    )
    rule.full_clean()
    rule.save()
    return rule


def register_destination(
    *,
    tenant: Tenant,
    ae_title: str,
    host: str,
    port: int,
    description: str = "",
    enabled: bool = True,
) -> DicomDestination:
    """Let C-MOVE requests to this tenant send to ``ae_title`` at ``host:port``."""
    destination = DicomDestination(
        tenant=tenant,
        ae_title=ae_title.strip(),
        host=host.strip(),
        port=port,
        description=description,
        enabled=enabled,
    )
    destination.full_clean()
    destination.save()
    return destination


def create_group(*, slug: str, name: str) -> ReadingGroup:
    group = ReadingGroup(slug=slug, name=name)
    group.full_clean()
    group.save()
    return group


def add_membership(
    *, user: User, role: str, tenant: Tenant | None = None, group: ReadingGroup | None = None
) -> Membership:
    membership = Membership(user=user, role=role, tenant=tenant, group=group)
    membership.full_clean()
    membership.save()
    return membership


def create_agreement(*, tenant: Tenant, group: ReadingGroup) -> ReadingAgreement:
    agreement, _ = ReadingAgreement.objects.get_or_create(tenant=tenant, group=group)
    return agreement


def issue_token(
    *,
    user: User,
    name: str = "",
    expires_at: datetime | None = None,
    tenant: Tenant | None = None,
    read_only: bool = False,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is shown once and never stored.

    Without ``expires_at`` it expires after SKYLIGHT_TOKEN_DEFAULT_DAYS (tenants.tokens checks
    the maximum for requests from people)."""
    if expires_at is None:
        expires_at = timezone.now() + timedelta(days=settings.SKYLIGHT_TOKEN_DEFAULT_DAYS)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            secret_hash=ApiToken.hash_secret(secret),
            expires_at=expires_at,
            tenant=tenant,
            read_only=read_only,
        )
        audit.record(
            action=AuditAction.TOKEN_ISSUED,
            actor=audit.Actor.for_user(user),
            tenant=tenant,
            detail={"token_prefix": prefix, "read_only": read_only},
        )
    return token, f"{TOKEN_PREFIX}_{prefix}_{secret}"
