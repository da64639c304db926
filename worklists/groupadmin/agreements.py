"""A hospital contracts reading groups: what each covers, its SLA minutes per priority class, and
the period it is in force.

The SLA of an agreement overrides the priority class's default for that hospital's items that the
agreement covers; when several groups' agreements cover an item, the shortest SLA sets its clock
(the item has one deadline, and the strictest contract binds). ``sla_minutes_for`` is what
``worklists.services`` asks when it creates an item or changes its priority.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from django import forms
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, ReadingAgreement, ReadingGroup, Tenant
from tenants.services import create_agreement

from ..models import AgreementTerms, PriorityClass
from .codes import modality_list, unknown_modalities


def _priorities(tenant: Tenant) -> list[PriorityClass]:
    from ..services import priorities_of

    return priorities_of(tenant)


class AgreementForm(forms.Form):
    """One agreement of the hospital with a group. The same form checks the page and the file."""

    group = forms.ChoiceField(label="Reading group")
    modalities = forms.CharField(
        required=False, help_text="Modality codes, e.g. CT, MR. Blank: every modality."
    )
    subspecialties = forms.CharField(
        required=False, help_text="e.g. neuro, msk. Blank: every subspecialty."
    )
    priorities = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Priority classes covered. None ticked: every class.",
    )
    active_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    active_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        groups = ReadingGroup.objects.filter(is_active=True).order_by("name")
        cast(forms.ChoiceField, self.fields["group"]).choices = [("", "—")] + [
            (g.slug, f"{g.name} ({g.slug})") for g in groups
        ]
        self.fields["group"].error_messages["invalid_choice"] = (
            "No active reading group has the slug %(value)s."
        )
        self.classes = _priorities(tenant)
        cast(forms.ChoiceField, self.fields["priorities"]).choices = [
            (p.code, p.name) for p in self.classes
        ]
        self.fields["priorities"].error_messages["invalid_choice"] = (
            "This hospital has no priority class %(value)s."
        )
        for p in self.classes:
            self.fields[f"sla_{p.code}"] = forms.IntegerField(
                required=False,
                label=f"SLA minutes for {p.name}",
                help_text=f"Blank: the class's {p.sla_minutes} minutes.",
                error_messages={"invalid": "Enter the SLA as a whole number of minutes."},
            )

    def clean_modalities(self) -> list[str]:
        codes = modality_list(self.cleaned_data.get("modalities"))
        bad = unknown_modalities(codes)
        if bad:
            raise ValidationError(
                f"Unknown modality code {', '.join(bad)}: use DICOM codes such as CT, MR, CR, US."
            )
        return codes

    def clean_subspecialties(self) -> list[str]:
        value = self.cleaned_data.get("subspecialties") or ""
        return sorted({s.strip().lower() for s in value.replace(";", ",").split(",") if s.strip()})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        sla: dict[str, int] = {}
        for p in self.classes:
            minutes = data.get(f"sla_{p.code}")
            if minutes is None:
                continue
            if minutes <= 0:
                self.add_error(f"sla_{p.code}", "SLA minutes must be more than 0.")
            else:
                sla[p.code] = minutes
        covered = data.get("priorities") or []
        outside = [code for code in sla if covered and code not in covered]
        if outside:
            self.add_error(
                "priorities", f"An SLA is set for {', '.join(outside)}, which is not ticked."
            )
        start, end = data.get("active_from"), data.get("active_to")
        if start and end and end < start:
            self.add_error("active_to", "An agreement cannot end before it starts.")
        data["sla_minutes"] = sla
        return data


def form_data(entry: dict[str, Any]) -> dict[str, Any]:
    """The page's form fields from one entry of tenant.yaml's ``agreements`` list."""
    priorities = entry.get("priorities") or {}
    data: dict[str, Any] = {
        "group": entry.get("group", ""),
        "modalities": ", ".join(modality_list(entry.get("modalities") or [])),
        "subspecialties": ", ".join(str(s) for s in entry.get("subspecialties") or []),
        "active_from": entry.get("active_from") or "",
        "active_to": entry.get("active_to") or "",
    }
    if isinstance(priorities, dict):
        data["priorities"] = [str(code) for code in priorities]
        for code, minutes in priorities.items():
            if minutes is not None:
                data[f"sla_{code}"] = minutes
    else:
        data["priorities"] = [str(code) for code in priorities]
    return data


@dataclass
class Saved:
    agreement: ReadingAgreement
    changed: list[str]


def _terms(agreement: ReadingAgreement) -> AgreementTerms | None:
    try:
        return agreement.terms
    except ObjectDoesNotExist:
        return None


def save_agreement(*, tenant: Tenant, actor: audit.Actor, data: dict[str, Any]) -> Saved:
    """Create or update the hospital's agreement with a group from a valid form's data; audited
    AGREEMENT_CHANGE with the fields that changed. Saving the same data again changes nothing."""
    group = ReadingGroup.objects.get(slug=data["group"], is_active=True)
    wanted = {
        "modalities": data["modalities"],
        "subspecialties": data["subspecialties"],
        "priority_codes": sorted(data.get("priorities") or []),
        "is_active": True,
    }
    terms_wanted = {
        "sla_minutes": data["sla_minutes"],
        "active_from": data.get("active_from"),
        "active_to": data.get("active_to"),
    }
    with transaction.atomic():
        agreement = create_agreement(tenant=tenant, group=group, actor=actor)
        agreement = ReadingAgreement.objects.select_for_update().get(pk=agreement.pk)
        changed = [k for k, v in wanted.items() if getattr(agreement, k) != v]
        for key in changed:
            setattr(agreement, key, wanted[key])
        if changed:
            agreement.save(update_fields=changed)
        terms = _terms(agreement) or AgreementTerms(tenant=tenant, agreement=agreement)
        terms_changed = [k for k, v in terms_wanted.items() if getattr(terms, k) != v]
        if terms_changed or terms.pk is None:
            for key in terms_changed:
                setattr(terms, key, terms_wanted[key])
            terms.updated_at = timezone.now()
            terms.save()
        changed += terms_changed
        if changed:
            audit.record(
                action=AuditAction.AGREEMENT_CHANGE,
                actor=actor,
                tenant=tenant,
                detail={"group": group.pk, "agreement": agreement.pk, "fields": sorted(changed)},
            )
    return Saved(agreement, changed)


def end_agreement(
    *, tenant: Tenant, actor: audit.Actor, agreement_id: int, today: date | None = None
) -> ReadingAgreement:
    """The group stops reading for the hospital today: its items leave the group's worklists.
    Audited AGREEMENT_END; ending an ended agreement changes nothing."""
    today = today or timezone.localdate()
    with transaction.atomic():
        agreement = (
            ReadingAgreement.objects.select_for_update()
            .filter(tenant=tenant, pk=agreement_id)
            .first()
        )
        if agreement is None:
            raise ReadingAgreement.DoesNotExist
        if not agreement.is_active:
            return agreement
        agreement.is_active = False
        agreement.save(update_fields=["is_active"])
        terms = _terms(agreement) or AgreementTerms(tenant=tenant, agreement=agreement)
        if terms.active_to is None or terms.active_to > today:
            terms.active_to = today
        terms.updated_at = timezone.now()
        terms.save()
        audit.record(
            action=AuditAction.AGREEMENT_END,
            actor=actor,
            tenant=tenant,
            detail={"group": agreement.group_id, "agreement": agreement.pk},
        )
    return agreement


def initial_of(agreement: ReadingAgreement) -> dict[str, Any]:
    """The page's form, filled with an agreement's current terms (to change some of them)."""
    terms = _terms(agreement)
    data: dict[str, Any] = {
        "group": agreement.group.slug,
        "modalities": ", ".join(agreement.modalities),
        "subspecialties": ", ".join(agreement.subspecialties),
        "priorities": list(agreement.priority_codes),
    }
    if terms is not None:
        data.update(active_from=terms.active_from, active_to=terms.active_to)
        data.update({f"sla_{code}": minutes for code, minutes in terms.sla_minutes.items()})
    return data


def agreements_of_tenant(tenant: Tenant) -> list[ReadingAgreement]:
    return list(
        ReadingAgreement.objects.filter(tenant=tenant)
        .select_related("group", "terms")
        .order_by("-is_active", "group__name")
    )


def agreements_of_group(group: ReadingGroup) -> list[ReadingAgreement]:
    return list(
        ReadingAgreement.objects.filter(group=group)
        .select_related("tenant", "terms")
        .order_by("-is_active", "tenant__name")
    )


def in_force(agreement: ReadingAgreement, day: date) -> bool:
    terms = _terms(agreement)
    return agreement.is_active and (terms is None or terms.in_force_on(day))


def export(tenant: Tenant) -> list[dict[str, Any]]:
    """The hospital's active agreements as tenant.yaml's ``agreements`` list."""
    rows = []
    for agreement in agreements_of_tenant(tenant):
        if not agreement.is_active:
            continue
        terms = _terms(agreement)
        sla = terms.sla_minutes if terms else {}
        codes = agreement.priority_codes or sorted(sla)
        entry: dict[str, Any] = {
            "group": agreement.group.slug,
            "modalities": list(agreement.modalities),
            "priorities": {code: sla.get(code) for code in codes},
        }
        if agreement.subspecialties:
            entry["subspecialties"] = list(agreement.subspecialties)
        if terms and terms.active_from:
            entry["active_from"] = terms.active_from.isoformat()
        if terms and terms.active_to:
            entry["active_to"] = terms.active_to.isoformat()
        rows.append(entry)
    return rows


def _covers(agreement: ReadingAgreement, code: str, modality: str, subspecialty: str) -> bool:
    mods = {m.upper() for m in agreement.modalities}
    subs = {s.lower() for s in agreement.subspecialties}
    codes = {c.lower() for c in agreement.priority_codes}
    return (
        (not mods or modality.upper() in mods)
        and (not subs or subspecialty in subs)
        and (not codes or code in codes)
    )


def sla_minutes_for(
    *, tenant_id: int, code: str, modality: str, subspecialty: str, day: date
) -> int | None:
    """The shortest SLA that an agreement in force covering such an item sets for its priority
    class, or None when none sets one (the class's default applies). One query."""
    best: int | None = None
    for agreement in ReadingAgreement.objects.filter(
        tenant_id=tenant_id, is_active=True, group__is_active=True, terms__isnull=False
    ).select_related("terms"):
        terms = agreement.terms
        minutes = terms.sla_minutes.get(code)
        if not minutes or not terms.in_force_on(day):
            continue
        if _covers(agreement, code, modality, subspecialty):
            best = minutes if best is None else min(best, minutes)
    return best
