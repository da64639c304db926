"""Saving a hospital's de-identification and share-link settings: validated by the page's forms,
saved together or not at all, audited as a settings change naming the fields, and a no-op (no
row, no audit) when nothing changes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, Tenant

from ..sharing.models import SharePolicy
from .forms import DEID_FIELDS, SHARING_FIELDS, DeidPolicyForm, SharePolicyForm
from .models import DeidPolicy


def current(tenant: Tenant) -> tuple[DeidPolicy, SharePolicy]:
    return DeidPolicy.for_tenant(tenant), SharePolicy.for_tenant(tenant)


def values(instance: Any, fields: list[str]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in fields}


def forms_for(
    tenant: Tenant, data: dict[str, Any] | None
) -> tuple[DeidPolicyForm, SharePolicyForm]:
    deid, sharing = current(tenant)
    return DeidPolicyForm(data, instance=deid), SharePolicyForm(data, instance=sharing)


def save_settings(
    *, tenant: Tenant, actor: audit.Actor, deid_form: DeidPolicyForm, sharing_form: SharePolicyForm
) -> list[str]:
    """Save both forms (already valid) if they change anything; the names of changed fields."""
    changed = [f"deid.{name}" for name in deid_form.changed_data] + [
        f"sharing.{name}" for name in sharing_form.changed_data
    ]
    if not changed:
        return []
    with transaction.atomic():
        if deid_form.changed_data:
            policy = deid_form.save(commit=False)
            policy.updated_at = timezone.now()
            policy.save()
        if sharing_form.changed_data:
            sharing_form.save()
        audit.record(
            action=AuditAction.SETTINGS_CHANGE,
            actor=actor,
            tenant=tenant,
            detail={
                "settings": "deid-and-sharing",
                "fields": changed,
                "now": {
                    **values(deid_form.instance, DEID_FIELDS),
                    **values(sharing_form.instance, SHARING_FIELDS),
                },
            },
        )
    return changed


def errors_of(*forms_: Any) -> ValidationError:
    """The forms' errors as one ValidationError whose messages name the field."""
    messages = []
    for form in forms_:
        for field, errors in form.errors.items():
            for error in errors:
                messages.append(f"{field}: {error}" if field != "__all__" else error)
    return ValidationError(messages)
