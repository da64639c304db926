"""Who may administer what: "not found" for everyone else, never "forbidden"."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from tenants.models import Membership, ReadingGroup, Role, Tenant


def is_platform_admin(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def require_platform_admin(user: Any) -> None:
    if not is_platform_admin(user):
        raise Http404("No such page.")


def hospital_for_admin(user: Any, slug: str) -> Tenant:
    """The hospital ``slug`` if ``user`` is one of its admins; else not found."""
    tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
    if (
        tenant is None
        or not user.is_authenticated
        or not Membership.objects.filter(user=user, tenant=tenant, role=Role.TENANT_ADMIN).exists()
    ):
        raise Http404("No such hospital.")
    return tenant


def group_for_admin(user: Any, slug: str) -> ReadingGroup:
    group = ReadingGroup.objects.filter(slug=slug, is_active=True).first()
    if (
        group is None
        or not user.is_authenticated
        or not Membership.objects.filter(user=user, group=group, role=Role.GROUP_ADMIN).exists()
    ):
        raise Http404("No such reading group.")
    return group


def hospital_for_member(user: Any, slug: str) -> Tenant:
    """The hospital ``slug`` if ``user`` holds any role in it (its own staff); else not found."""
    tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
    if (
        tenant is None
        or not user.is_authenticated
        or not Membership.objects.filter(user=user, tenant=tenant).exists()
    ):
        raise Http404("No such hospital.")
    return tenant


def administered(user: Any) -> tuple[list[Tenant], list[ReadingGroup]]:
    """The hospitals and reading groups ``user`` administers, for links."""
    if not user.is_authenticated:
        return [], []
    tenants = Tenant.objects.filter(
        is_active=True, memberships__user=user, memberships__role=Role.TENANT_ADMIN
    )
    groups = ReadingGroup.objects.filter(
        is_active=True, memberships__user=user, memberships__role=Role.GROUP_ADMIN
    )
    return list(tenants.distinct()), list(groups.distinct())
