"""A reading group's people, for its admins' pages. Who may open those pages (its group admins;
anyone else, and a group that does not exist, get the same "not found") is
``tenants.onboarding.access.group_for_admin``."""

from __future__ import annotations

from typing import cast

from django import forms

from tenants.models import ReadingGroup, Role, User


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
