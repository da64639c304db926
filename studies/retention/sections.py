"""The set-up wizard's "Retention" step (tenants/onboarding/sections.py).

tenant.yaml::

    retention:
      keep_days: 3650          # null or "forever": keep everything (the default)
      per_modality: {MG: 7300}
      allow_short: false       # needed below 365 days
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from tenants import audit
from tenants.models import Tenant, User
from tenants.onboarding.sections import Section

from . import policy as policies
from .models import RetentionPolicy


def _summary(tenant: Tenant) -> str:
    policy = RetentionPolicy.objects.filter(tenant=tenant).first()
    if policy is None or (policy.keep_days is None and not policy.per_modality):
        return "Studies are kept forever"
    base = "forever" if policy.keep_days is None else f"{policy.keep_days} days"
    extra = ", ".join(
        f"{c} {'forever' if d is None else f'{d} days'}"
        for c, d in sorted(policy.per_modality.items())
    )
    return f"Studies kept {base}" + (f" ({extra})" if extra else "")


def _done(tenant: Tenant) -> bool:
    # Keeping everything is a valid choice; the step is done once the admin has saved one.
    return RetentionPolicy.objects.filter(tenant=tenant).exists()


def apply(tenant: Tenant, data: Any, actor: User | None) -> None:
    if data is None:
        return
    form = policies.RetentionForm(policies.form_data(data))
    if not form.is_valid():
        raise ValidationError(
            [f"retention.{field}: {m}" for field, errors in form.errors.items() for m in errors]
        )
    who = audit.Actor.for_user(actor) if actor else audit.Actor.system()
    policies.save(tenant=tenant, data=form.cleaned_data, actor=who)


def export(tenant: Tenant) -> dict[str, Any]:
    policy = policies.policy_of(tenant)
    data: dict[str, Any] = {"keep_days": policy.keep_days}
    if policy.per_modality:
        data["per_modality"] = dict(sorted(policy.per_modality.items()))
    if policy.allow_short:
        data["allow_short"] = True
    return data


SECTION = Section(
    key="retention",
    title="Retention",
    order=60,
    url_name="retention:settings",
    summary=_summary,
    done=_done,
    apply=apply,
    export=export,
)
