"""A hospital's retention policy: the form (page and tenant.yaml), saving it, and which studies
it makes due.

A study is kept ``keep_days`` after its last received instance; a modality may have its own
days (mammography is often kept longer); a study with several modalities is kept for the
longest of theirs, and "forever" wins. No policy, or a blank ``keep_days``, keeps everything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, Tenant

from ..models import Study
from .models import RetentionPolicy

# Below this a policy needs ``allow_short``: most jurisdictions require years, and a typo
# ("36" for "3650") must not purge a hospital's archive.
MIN_DAYS = 365


def _modality_codes() -> frozenset[str]:
    from worklists.groupadmin.codes import MODALITY_CODES

    return MODALITY_CODES


class RetentionForm(forms.Form):
    keep_days = forms.IntegerField(
        required=False,
        label="Keep studies this many days after their last image",
        help_text="Blank: keep forever.",
        error_messages={"invalid": "Enter a whole number of days, or leave it blank."},
    )
    per_modality = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Per modality",
        help_text='One per line, e.g. "MG: 7300". Blank days: keep that modality forever.',
    )
    allow_short = forms.BooleanField(
        required=False, label=f"Allow keeping studies less than {MIN_DAYS} days"
    )

    def _check_days(self, days: int | None, field: str, what: str) -> None:
        if days is None:
            return
        if days <= 0:
            self.add_error(field, f"{what}: days must be more than 0.")
        elif days < MIN_DAYS and not self.cleaned_data.get("allow_short"):
            self.add_error(
                field,
                f"{what}: {days} days is less than the minimum of {MIN_DAYS}; "
                "tick “allow shorter” if your hospital really means it.",
            )

    def clean_per_modality(self) -> dict[str, int | None]:
        text = self.cleaned_data.get("per_modality") or ""
        found: dict[str, int | None] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            code, _, days = line.partition(":")
            code = code.strip().upper()
            if code not in _modality_codes():
                raise ValidationError(f"Line {n}: unknown modality code {code or '(none)'}.")
            days = days.strip()
            if days.lower() in ("", "forever", "none", "null"):
                found[code] = None
                continue
            try:
                found[code] = int(days)
            except ValueError:
                raise ValidationError(f"Line {n}: {days!r} is not a number of days.") from None
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self._check_days(data.get("keep_days"), "keep_days", "Keep days")
        for code, days in (data.get("per_modality") or {}).items():
            self._check_days(days, "per_modality", code)
        return data


def form_data(value: Any) -> dict[str, Any]:
    """The form's fields from tenant.yaml's ``retention`` mapping."""
    if not isinstance(value, dict):
        raise ValidationError("retention: give keep_days (and optionally per_modality).")
    keep = value.get("keep_days")
    per = value.get("per_modality") or {}
    if not isinstance(per, dict):
        raise ValidationError("retention.per_modality: give modality: days pairs.")
    return {
        "keep_days": "" if keep in (None, "forever") else keep,
        "per_modality": "\n".join(
            f"{code}: {'' if days in (None, 'forever') else days}" for code, days in per.items()
        ),
        "allow_short": bool(value.get("allow_short")),
    }


def policy_of(tenant: Tenant) -> RetentionPolicy:
    return RetentionPolicy.objects.filter(tenant=tenant).first() or RetentionPolicy(tenant=tenant)


def initial(policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "keep_days": policy.keep_days,
        "per_modality": "\n".join(
            f"{c}: {'' if d is None else d}" for c, d in sorted(policy.per_modality.items())
        ),
        "allow_short": policy.allow_short,
    }


def save(*, tenant: Tenant, data: dict[str, Any], actor: audit.Actor) -> list[str]:
    """Save a valid form's data; audited SETTINGS_CHANGE with the changed fields. Idempotent."""
    wanted = {
        "keep_days": data.get("keep_days"),
        "per_modality": data.get("per_modality") or {},
        "allow_short": bool(data.get("allow_short")),
    }
    with transaction.atomic():
        policy, _ = RetentionPolicy.objects.select_for_update().get_or_create(tenant=tenant)
        changed = [k for k, v in wanted.items() if getattr(policy, k) != v]
        if not changed:
            return []
        for k in changed:
            setattr(policy, k, wanted[k])
        policy.updated_at = timezone.now()
        policy.save()
        audit.record(
            action=AuditAction.SETTINGS_CHANGE,
            actor=actor,
            tenant=tenant,
            detail={"settings": "retention", "fields": sorted(changed)},
        )
    return changed


def keep_days_for(policy: RetentionPolicy, modalities: list[str]) -> int | None:
    """Days a study with these modalities is kept; None: forever."""
    if not modalities:
        return policy.keep_days
    days: list[int] = []
    for code in modalities:
        value = policy.per_modality.get(code.upper(), policy.keep_days)
        if value is None:
            return None
        days.append(int(value))
    return max(days)


def due(policy: RetentionPolicy, now: datetime, limit: int = 500) -> list[tuple[Study, int]]:
    """Studies of the policy's hospital past their retention at ``now``, oldest first, with the
    days that applied. Those an open work item or a report holds are still listed here: the
    purge skips them (``services.blocked``)."""
    configured = [d for d in [policy.keep_days, *policy.per_modality.values()] if d is not None]
    if not configured:
        return []
    cutoff = now - timedelta(days=min(configured))
    found = []
    for study in Study.objects.filter(
        tenant_id=policy.tenant_id, last_instance_at__lt=cutoff
    ).order_by("last_instance_at", "id")[:limit]:
        days = keep_days_for(policy, study.modalities)
        if days is not None and study.last_instance_at < now - timedelta(days=days):
            found.append((study, days))
    return found
