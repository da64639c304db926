"""What a referring physician may see of a hospital: the studies naming them as the referring
physician (``User.person_name`` against ReferringPhysicianName, as reports.readers matches it)
and the studies granted to them (``StudyGrant``), in the hospitals where they hold the
REFERRING_PHYSICIAN role. The viewer and DICOMweb ask this after the reader's and consultant's
ways in; it never opens storing."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from tenants.models import Membership, Role, Tenant, User

from ..models import Study
from .models import StudyGrant


def referring_tenant_ids(user: User) -> QuerySet[Membership, Any]:
    return Membership.objects.filter(
        user=user, tenant__isnull=False, tenant__is_active=True, role=Role.REFERRING_PHYSICIAN
    ).values("tenant_id")


def granted_study_ids(user: User) -> QuerySet[StudyGrant, Any]:
    return StudyGrant.objects.filter(
        user=user, revoked_at__isnull=True, tenant_id__in=referring_tenant_ids(user)
    ).values("study_id")


def referred_studies(user: User) -> QuerySet[Study]:
    if not user.is_authenticated or not user.is_active:
        return Study.objects.none()
    from reports.readers import referrer_names  # reports builds on studies: imported here

    scope = Q(id__in=granted_study_ids(user))
    names = referrer_names(user)
    if names:
        scope |= Q(
            tenant_id__in=referring_tenant_ids(user),
            referring_physician_name_search__in=names,
        )
    return Study.objects.filter(scope)


def referred_tenants(user: User) -> QuerySet[Tenant]:
    return Tenant.objects.filter(
        is_active=True, id__in=referred_studies(user).values("tenant_id")
    ).order_by("slug")


def referred_tenant(user: User, slug: str) -> tuple[Tenant, frozenset[str]] | None:
    """The hospital and the UIDs of its studies this referrer may view, or None."""
    tenant = referred_tenants(user).filter(slug=slug).first()
    if tenant is None:
        return None
    uids = referred_studies(user).filter(tenant=tenant).values_list("study_instance_uid", flat=True)
    return tenant, frozenset(uids)
