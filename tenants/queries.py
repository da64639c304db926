"""Tenant-scoped reads of the tenancy itself: who may see which tenant, and who a peer is.

Every function answers "not found" both for what does not exist and for what belongs to someone
else, so a caller can never learn that another tenant's object exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.db.models import Q, QuerySet
from django.http import Http404

from .models import (
    AllowedCaller,
    CalledAETitle,
    Membership,
    ReadingAgreement,
    ReadingGroup,
    Role,
    Tenant,
    User,
)

# Roles that see every study of a tenant. Referring physicians see only their own patients
# (their portal comes with the security issue), so they are not in this set.
TENANT_READ_ROLES = {Role.TENANT_ADMIN, Role.RADIOLOGIST, Role.TECHNOLOGIST}
GROUP_READ_ROLES = {Role.RADIOLOGIST, Role.GROUP_ADMIN}
# Roles that may store instances (STOW-RS): technologists and admins of the hospital, and
# radiologists who save measurements and reports back into a study.
TENANT_STORE_ROLES = {Role.TENANT_ADMIN, Role.TECHNOLOGIST, Role.RADIOLOGIST}
GROUP_STORE_ROLES = {Role.RADIOLOGIST}


def _tenants_with(user: User, tenant_roles: set[Role], group_roles: set[Role]) -> QuerySet[Tenant]:
    if not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    direct = Membership.objects.filter(
        user=user, tenant__isnull=False, role__in=tenant_roles
    ).values("tenant_id")
    via_group = ReadingAgreement.objects.filter(
        is_active=True,
        group__is_active=True,
        group__memberships__user=user,
        group__memberships__role__in=group_roles,
    ).values("tenant_id")
    tenants = Tenant.objects.filter(is_active=True).filter(Q(id__in=direct) | Q(id__in=via_group))
    scope = getattr(user, "token_tenant_id", None)  # a token kept to one hospital (tenants.auth)
    return tenants if scope is None else tenants.filter(pk=scope)


def readable_tenants(user: User) -> QuerySet[Tenant]:
    """Tenants whose studies this user may read in full."""
    return _tenants_with(user, TENANT_READ_ROLES, GROUP_READ_ROLES)


def storable_tenants(user: User) -> QuerySet[Tenant]:
    return _tenants_with(user, TENANT_STORE_ROLES, GROUP_STORE_ROLES)


@dataclass(frozen=True)
class _TenantStatement:
    """``_tenants_with(...).filter(slug=...)`` as one SQL statement, written once.

    Every DICOMweb request asks this; building the ORM query costs more than running it, so the
    hot path runs the statement directly. tests/tenants/test_tenant_access.py checks that both
    forms agree.
    """

    tenant_roles: tuple[str, ...]
    group_roles: tuple[str, ...]

    @cached_property
    def sql(self) -> str:
        t, m, a, g = (
            Tenant._meta.db_table,
            Membership._meta.db_table,
            ReadingAgreement._meta.db_table,
            ReadingGroup._meta.db_table,
        )
        tenant_in = ", ".join(["%s"] * len(self.tenant_roles))
        group_in = ", ".join(["%s"] * len(self.group_roles))
        return (
            f"SELECT * FROM {t} WHERE slug = %s AND is_active AND ("
            f" EXISTS (SELECT 1 FROM {m} WHERE {m}.user_id = %s AND {m}.tenant_id = {t}.id"
            f"  AND {m}.role IN ({tenant_in}))"
            f" OR EXISTS (SELECT 1 FROM {a} JOIN {g} ON {g}.id = {a}.group_id"
            f"  JOIN {m} ON {m}.group_id = {g}.id"
            f"  WHERE {a}.tenant_id = {t}.id AND {a}.is_active AND {g}.is_active"
            f"  AND {m}.user_id = %s AND {m}.role IN ({group_in})))"
        )

    def first(self, user: User, slug: str) -> Tenant:
        if not user.is_authenticated or not user.is_active:
            raise Http404("No such tenant.")
        params = [slug, user.pk, *self.tenant_roles, user.pk, *self.group_roles]
        scope = getattr(user, "token_tenant_id", None)
        for tenant in Tenant.objects.raw(self.sql, params):
            if scope is None or tenant.pk == scope:
                return tenant
        raise Http404("No such tenant.")


_READABLE = _TenantStatement(tuple(sorted(TENANT_READ_ROLES)), tuple(sorted(GROUP_READ_ROLES)))
_STORABLE = _TenantStatement(tuple(sorted(TENANT_STORE_ROLES)), tuple(sorted(GROUP_STORE_ROLES)))


def get_readable_tenant(user: User, slug: str) -> Tenant:
    return _READABLE.first(user, slug)


def get_storable_tenant(user: User, slug: str) -> Tenant:
    return _STORABLE.first(user, slug)


def is_tenant_admin(user: User, tenant: Tenant) -> bool:
    return Membership.objects.filter(user=user, tenant=tenant, role=Role.TENANT_ADMIN).exists()


def tenant_for_called_ae(ae_title: str) -> Tenant | None:
    row = (
        CalledAETitle.objects.select_related("tenant")
        .filter(ae_title=ae_title.strip(), tenant__is_active=True)
        .first()
    )
    return row.tenant if row else None


def caller_rules(tenant: Tenant) -> list[AllowedCaller]:
    return list(AllowedCaller.objects.filter(tenant=tenant))
