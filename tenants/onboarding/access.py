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


def _one_of_mine(
    model: type[Tenant] | type[ReadingGroup], user: Any, slug: str, **membership: Any
) -> Any:
    """The active hospital or group ``slug`` where ``user`` has a membership like ``membership``;
    else not found, whether it is missing or someone else's."""
    found = model.objects.filter(slug=slug, is_active=True).first()
    key = "tenant" if model is Tenant else "group"
    if (
        found is None
        or not user.is_authenticated
        or not Membership.objects.filter(user=user, **{key: found}, **membership).exists()
    ):
        raise Http404("Not found.")
    return found


def hospital_for_admin(user: Any, slug: str) -> Tenant:
    """The hospital ``slug`` if ``user`` is one of its admins; else not found."""
    tenant: Tenant = _one_of_mine(Tenant, user, slug, role=Role.TENANT_ADMIN)
    return tenant


def group_for_admin(user: Any, slug: str) -> ReadingGroup:
    group: ReadingGroup = _one_of_mine(ReadingGroup, user, slug, role=Role.GROUP_ADMIN)
    return group


def hospital_for_member(user: Any, slug: str) -> Tenant:
    """The hospital ``slug`` if ``user`` holds any role in it (its own staff); else not found."""
    tenant: Tenant = _one_of_mine(Tenant, user, slug)
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
