"""The set-up wizard's "Reading agreements" step (tenants/onboarding/sections.py).

tenant.yaml::

    agreements:
      - group: demo-readers
        modalities: [CT, MR]
        priorities: {stat: 30, routine: 1440}   # minutes; null keeps the class's default
        active_from: 2026-01-01                 # optional, and active_to

Each entry is checked with the page's form; one bad entry refuses the whole list. Entries add
or update agreements; an agreement not listed is left as it is (ending one is a decision made on
the page).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from tenants import audit
from tenants.models import ReadingAgreement, Tenant, User
from tenants.onboarding.sections import Section

from . import agreements


def _summary(tenant: Tenant) -> str:
    names = [
        a.group.name
        for a in ReadingAgreement.objects.filter(tenant=tenant, is_active=True).select_related(
            "group"
        )
    ]
    return f"{len(names)} reading group{'s' if len(names) != 1 else ''}" + (
        f": {', '.join(sorted(names))}" if names else ""
    )


def _done(tenant: Tenant) -> bool:
    return ReadingAgreement.objects.filter(tenant=tenant, is_active=True).exists()


def apply(tenant: Tenant, data: Any, actor: User | None) -> None:
    if data is None:
        return
    if not isinstance(data, list):
        raise ValidationError("agreements: give a list of agreements (group, modalities, ...).")
    forms = []
    errors: list[str] = []
    for n, entry in enumerate(data):
        if not isinstance(entry, dict):
            errors.append(f"agreements[{n}]: give group, modalities and priorities.")
            continue
        form = agreements.AgreementForm(agreements.form_data(entry), tenant=tenant)
        if not form.is_valid():
            for field, messages in form.errors.items():
                name = "priorities" if field.startswith("sla_") else field
                errors += [f"agreements[{n}].{name}: {m}" for m in messages]
        forms.append(form)
    groups = [f.cleaned_data.get("group") for f in forms if f.is_valid()]
    if len(groups) != len(set(groups)):
        errors.append("agreements: a group is listed twice.")
    if errors:
        raise ValidationError(errors)
    who = audit.Actor.for_user(actor) if actor else audit.Actor.system()
    with transaction.atomic():
        for form in forms:
            agreements.save_agreement(tenant=tenant, actor=who, data=form.cleaned_data)


SECTION = Section(
    key="agreements",
    title="Reading agreements",
    order=50,
    url_name="groupadmin:hospital-agreements",
    summary=_summary,
    done=_done,
    apply=apply,
    export=agreements.export,
)
