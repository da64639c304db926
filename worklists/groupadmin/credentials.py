"""A group admin adds, changes and ends the licences and privileges of the group's radiologists.

The forms refuse a credential that is over before it is saved (a new one whose validity already
ended) and one that ends before it starts; nothing is saved then. Every change is audited
CREDENTIAL_CHANGE as the REST API's are (worklists/api.py), with ids and field names only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from tenants import audit
from tenants.models import AuditAction, ReadingAgreement, ReadingGroup, Tenant, User

from ..models import Licence, Privilege
from .access import member_field, radiologists
from .codes import modality_list, unknown_modalities

# Within this many days of its end a credential shows as expiring (and is listed on the overview).
EXPIRING_DAYS = 30


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"})


class _CredentialForm(forms.Form):
    kind = ""
    user = forms.ChoiceField(label="Radiologist")
    valid_from = forms.DateField(widget=_date_input())
    valid_to = forms.DateField(required=False, widget=_date_input(), help_text="Blank: no end.")

    def __init__(
        self, *args: Any, group: ReadingGroup, today: date, instance: Any = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.group, self.today, self.instance = group, today, instance
        self.members = member_field(self.fields["user"], group)

    def clean_user(self) -> User:
        return self.members[self.cleaned_data["user"]]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("valid_from"), data.get("valid_to")
        if start and end and end < start:
            self.add_error("valid_to", f"A {self.kind} cannot end before it starts.")
        elif end and end < self.today and self.instance is None:
            self.add_error(
                "valid_to",
                f"This {self.kind}'s validity already ended on {end.isoformat()}: "
                "enter one that is still valid (ending today or later).",
            )
        return data


class LicenceForm(_CredentialForm):
    kind = "licence"
    jurisdiction = forms.CharField(max_length=32, help_text='e.g. "US-CA", "GB".')
    number = forms.CharField(max_length=64)

    def clean_jurisdiction(self) -> str:
        return str(self.cleaned_data["jurisdiction"]).strip().upper()


class PrivilegeForm(_CredentialForm):
    kind = "privilege"
    tenant = forms.ChoiceField(label="Hospital")
    modalities = forms.CharField(help_text="e.g. CT, MR")
    subspecialties = forms.CharField(required=False, help_text="e.g. neuro. Blank: general.")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hospitals = {
            a.tenant.slug: a.tenant
            for a in ReadingAgreement.objects.filter(group=self.group).select_related("tenant")
        }
        cast(forms.ChoiceField, self.fields["tenant"]).choices = [("", "—")] + [
            (slug, t.name) for slug, t in sorted(self.hospitals.items())
        ]
        self.fields["tenant"].error_messages["invalid_choice"] = (
            "This group has no agreement with %(value)s."
        )

    def clean_tenant(self) -> Tenant:
        return self.hospitals[self.cleaned_data["tenant"]]

    def clean_modalities(self) -> list[str]:
        codes = modality_list(self.cleaned_data["modalities"])
        bad = unknown_modalities(codes)
        if bad:
            raise ValidationError(f"Unknown modality code {', '.join(bad)}: use e.g. CT, MR.")
        if not codes:
            raise ValidationError("Name at least one modality.")
        return codes

    def clean_subspecialties(self) -> list[str]:
        value = self.cleaned_data.get("subspecialties") or ""
        return sorted({s.strip().lower() for s in value.replace(";", ",").split(",") if s.strip()})


def initial_of(obj: Licence | Privilege) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": obj.user.username,
        "valid_from": obj.valid_from,
        "valid_to": obj.valid_to,
    }
    if isinstance(obj, Licence):
        data.update(jurisdiction=obj.jurisdiction, number=obj.number)
    else:
        data.update(
            tenant=obj.tenant.slug,
            modalities=", ".join(obj.modalities),
            subspecialties=", ".join(obj.subspecialties),
        )
    return data


def manageable(group: ReadingGroup, kind: str) -> Any:
    """The group's credentials a group admin may change: its radiologists' licences; their
    privileges at hospitals the group has an agreement with."""
    members = [u.pk for u in radiologists(group)]
    if kind == "licence":
        return Licence.objects.filter(user_id__in=members)
    hospitals = ReadingAgreement.objects.filter(group=group).values("tenant_id")
    return Privilege.objects.filter(user_id__in=members, tenant_id__in=hospitals)


def _record(actor: audit.Actor, obj: Any, kind: str, change: str, fields: list[str]) -> None:
    detail: dict[str, Any] = {"kind": kind, "id": obj.pk, "user": obj.user_id, "change": change}
    if fields:
        detail["fields"] = sorted(fields)
    audit.record(
        action=AuditAction.CREDENTIAL_CHANGE,
        actor=actor,
        tenant=getattr(obj, "tenant", None),
        detail=detail,
    )


def save(
    *, form: _CredentialForm, actor: audit.Actor, granted_by: User | None = None
) -> Licence | Privilege:
    """Create (``form.instance`` None) or update a credential from a valid form."""
    data = dict(form.cleaned_data)
    kind = form.kind
    fields = ["user", "valid_from", "valid_to"]
    fields += ["jurisdiction", "number"] if kind == "licence" else [
        "tenant", "modalities", "subspecialties"
    ]  # fmt: skip
    with transaction.atomic():
        obj = form.instance
        if obj is None:
            model: Any = Licence if kind == "licence" else Privilege
            obj = model(**{f: data[f] for f in fields})
            if kind == "privilege":
                obj.granted_by = granted_by
            obj.save()
            _record(actor, obj, kind, "create", [])
            return obj
        changed = [f for f in fields if getattr(obj, f) != data[f]]
        for f in changed:
            setattr(obj, f, data[f])
        if changed:
            obj.save(update_fields=changed)
            _record(actor, obj, kind, "update", changed)
    return obj


def end(*, obj: Licence | Privilege, kind: str, actor: audit.Actor, today: date) -> None:
    """The credential's last day is yesterday: from today it no longer counts."""
    yesterday = today - timedelta(days=1)
    if obj.valid_to is not None and obj.valid_to <= yesterday:
        return
    obj.valid_to = max(yesterday, obj.valid_from)
    with transaction.atomic():
        obj.save(update_fields=["valid_to"])
        _record(actor, obj, kind, "end", ["valid_to"])


@dataclass
class Status:
    label: str
    css: str  # "valid", "expiring", "expired", "future"


def status_of(obj: Licence | Privilege, today: date) -> Status:
    if obj.valid_from > today:
        return Status(f"starts {obj.valid_from.isoformat()}", "future")
    if obj.valid_to is None:
        return Status("valid", "valid")
    if obj.valid_to < today:
        return Status(f"ended {obj.valid_to.isoformat()}", "expired")
    if (obj.valid_to - today).days <= EXPIRING_DAYS:
        return Status(f"ends {obj.valid_to.isoformat()}", "expiring")
    return Status(f"valid to {obj.valid_to.isoformat()}", "valid")


def expiring(group: ReadingGroup, today: date) -> list[Licence | Privilege]:
    """The group's credentials ending within EXPIRING_DAYS (not yet ended), soonest first."""
    soon = today + timedelta(days=EXPIRING_DAYS)
    found: list[Licence | Privilege] = []
    for kind in ("licence", "privilege"):
        rows = manageable(group, kind).filter(valid_to__gte=today, valid_to__lte=soon)
        found += list(rows.select_related("user"))
    return sorted(found, key=lambda c: (c.valid_to, c.pk))
