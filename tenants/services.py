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


def create_tenant(
    *, slug: str, name: str, quiet_period_seconds: int | None = None, jurisdiction: str = ""
) -> Tenant:
    tenant = Tenant(slug=slug, name=name, jurisdiction=jurisdiction)
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


def _membership_audit(
    membership: Membership, action: str, actor: audit.Actor | None, **detail: object
) -> None:
    """One audit row in every hospital whose data the change opens or closes: the membership's
    tenant, or each tenant the reading group has an agreement with (else the platform chain)."""
    if membership.tenant_id:
        tenant_ids: list[int | None] = [membership.tenant_id]
    else:
        tenant_ids = list(
            ReadingAgreement.objects.filter(group_id=membership.group_id).values_list(
                "tenant_id", flat=True
            )
        ) or [None]
    audit.record_many(
        audit.build(
            action=action,
            actor=actor or audit.Actor.system(),
            tenant=Tenant(pk=tenant_id) if tenant_id else None,
            detail={
                "member": membership.user_id,
                "role": membership.role,
                "group": membership.group_id,
                **detail,
            },
        )
        for tenant_id in tenant_ids
    )


def add_membership(
    *,
    user: User,
    role: str,
    tenant: Tenant | None = None,
    group: ReadingGroup | None = None,
    actor: audit.Actor | None = None,
) -> Membership:
    """Give ``user`` a role in a tenant or a reading group; audited (MEMBERSHIP_ADD)."""
    membership = Membership(user=user, role=role, tenant=tenant, group=group)
    membership.full_clean()
    with transaction.atomic():
        membership.save()
        _membership_audit(membership, AuditAction.MEMBERSHIP_ADD, actor)
    return membership


def remove_membership(membership: Membership, *, actor: audit.Actor | None = None) -> None:
    """Take a role away; audited (MEMBERSHIP_REMOVE) in every hospital it gave access to."""
    with transaction.atomic():
        _membership_audit(membership, AuditAction.MEMBERSHIP_REMOVE, actor)
        membership.delete()


def create_agreement(
    *, tenant: Tenant, group: ReadingGroup, actor: audit.Actor | None = None
) -> ReadingAgreement:
    """A reading group reads for ``tenant`` from now on; audited in the tenant's log."""
    with transaction.atomic():
        agreement, created = ReadingAgreement.objects.get_or_create(tenant=tenant, group=group)
        if created:
            audit.record(
                action=AuditAction.AGREEMENT_ADD,
                actor=actor or audit.Actor.system(),
                tenant=tenant,
                detail={"group": group.pk},
            )
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
