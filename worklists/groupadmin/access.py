"""Who may open a group's pages: its group admins. Anyone else, and a group that does not exist,
gets the same "not found"."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.http import Http404

from tenants.models import Membership, ReadingGroup, Role, Tenant, User
from tenants.queries import is_tenant_admin


def group_for_admin(user: Any, group_slug: str) -> ReadingGroup:
    group = ReadingGroup.objects.filter(slug=group_slug, is_active=True).first()
    if group is None or not user.is_authenticated:
        raise Http404("No such reading group.")
    if not Membership.objects.filter(user=user, group=group, role=Role.GROUP_ADMIN).exists():
        raise Http404("No such reading group.")
    return group


def tenant_for_admin(user: Any, tenant_slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=tenant_slug, is_active=True).first()
    if tenant is None or not user.is_authenticated or not is_tenant_admin(user, tenant):
        raise Http404("No such hospital.")
    return tenant


def radiologists(group: ReadingGroup) -> list[User]:
    return list(
        User.objects.filter(memberships__group=group, memberships__role=Role.RADIOLOGIST)
        .distinct()
        .order_by("username")
    )


def group_admins(group_ids: list[int]) -> list[User]:
    return list(
        User.objects.filter(
            memberships__group_id__in=group_ids,
            memberships__role=Role.GROUP_ADMIN,
            is_active=True,
        ).distinct()
    )


def member_field(field: forms.Field, group: ReadingGroup) -> dict[str, User]:
    """Make ``field`` a choice of the group's radiologists by username; return them by name."""
    members = {u.username: u for u in radiologists(group)}
    choice = cast(forms.ChoiceField, field)
    choice.choices = [("", "—")] + [(name, str(u)) for name, u in members.items()]
    choice.error_messages["invalid_choice"] = "%(value)s is not a radiologist of this group."
    return members
