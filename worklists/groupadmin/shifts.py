"""Who of a reading group is on shift, and when. Auto-assignment reads the same rows
(``worklists.services._on_shift``): once a group keeps a roster, only members on shift get items."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.db import transaction

from tenants import audit
from tenants.models import AuditAction, ReadingGroup

from ..models import Shift
from .access import member_field

MAX_SHIFT = timedelta(hours=24)


class ShiftForm(forms.Form):
    user = forms.ChoiceField(label="Radiologist")
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args: Any, group: ReadingGroup, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.members = member_field(self.fields["user"], group)

    def clean_user(self) -> Any:
        return self.members[self.cleaned_data["user"]]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("starts_at"), data.get("ends_at")
        if start and end:
            if end <= start:
                self.add_error("ends_at", "A shift cannot end before it starts.")
            elif end - start > MAX_SHIFT:
                self.add_error("ends_at", "A shift lasts at most 24 hours; add several shifts.")
        return data


def add(*, group: ReadingGroup, data: dict[str, Any], actor: audit.Actor) -> Shift:
    with transaction.atomic():
        shift, created = Shift.objects.get_or_create(
            group=group,
            user=data["user"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            defaults={"created_by": actor.user},
        )
        if created:
            _record(actor, group, shift, "add")
    return shift


def remove(*, group: ReadingGroup, shift_id: int, actor: audit.Actor) -> bool:
    with transaction.atomic():
        shift = Shift.objects.select_for_update().filter(group=group, pk=shift_id).first()
        if shift is None:
            return False
        _record(actor, group, shift, "remove")
        shift.delete()
    return True


def _record(actor: audit.Actor, group: ReadingGroup, shift: Shift, change: str) -> None:
    audit.record(
        action=AuditAction.SHIFT_CHANGE,
        actor=actor,
        tenant=None,
        detail={
            "group": group.pk,
            "shift": shift.pk,
            "user": shift.user_id,
            "change": change,
            "starts_at": shift.starts_at.isoformat(),
            "ends_at": shift.ends_at.isoformat(),
        },
    )


def on_shift(group: ReadingGroup, now: datetime) -> list[Shift]:
    return list(
        Shift.objects.filter(group=group, starts_at__lte=now, ends_at__gt=now)
        .select_related("user")
        .order_by("ends_at")
    )


def roster(group: ReadingGroup, start: datetime, days: int = 7) -> list[Shift]:
    """Shifts overlapping ``days`` days from ``start``, in order."""
    return list(
        Shift.objects.filter(
            group=group, ends_at__gt=start, starts_at__lt=start + timedelta(days=days)
        )
        .select_related("user")
        .order_by("starts_at", "id")
    )
