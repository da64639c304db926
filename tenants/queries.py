"""Tenant-scoped reads of the tenancy itself: who may see which tenant, and who a peer is.

Every function answers "not found" both for what does not exist and for what belongs to someone
else, so a caller can never learn that another tenant's object exists.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from .models import AllowedCaller, CalledAETitle, Membership, ReadingAgreement, Role, Tenant, User

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
    return Tenant.objects.filter(is_active=True).filter(Q(id__in=direct) | Q(id__in=via_group))


def readable_tenants(user: User) -> QuerySet[Tenant]:
    """Tenants whose studies this user may read in full."""
    return _tenants_with(user, TENANT_READ_ROLES, GROUP_READ_ROLES)


def storable_tenants(user: User) -> QuerySet[Tenant]:
    return _tenants_with(user, TENANT_STORE_ROLES, GROUP_STORE_ROLES)


def get_readable_tenant(user: User, slug: str) -> Tenant:
    tenant = readable_tenants(user).filter(slug=slug).first()
    if tenant is None:
        raise Http404("No such tenant.")
    return tenant


def get_storable_tenant(user: User, slug: str) -> Tenant:
    tenant = storable_tenants(user).filter(slug=slug).first()
    if tenant is None:
        raise Http404("No such tenant.")
    return tenant


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
