"""The wizard's sections of this package: "deid" (the de-identification policy for external
consults and shares) and "sharing" (the share-link policy), both on ``/t/<slug>/setup/deid/``.

``apply`` takes the section's mapping from tenant.yaml; keys left out keep their current value,
so a file may name only what it changes. It validates with the page's forms, raises
ValidationError naming the field, changes nothing on error, and saves (audited as the page
does) only what differs, so applying the same file twice changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from tenants import audit
from tenants.models import Tenant, User
from tenants.onboarding.sections import Section

from . import services
from .forms import DEID_FIELDS, SHARING_FIELDS


def _export(tenant: Tenant, fields: list[str]) -> dict[str, Any]:
    deid, sharing = services.current(tenant)
    return {
        **services.values(deid, [f for f in fields if f in DEID_FIELDS]),
        **services.values(sharing, [f for f in fields if f in SHARING_FIELDS]),
    }


def _apply(key: str, fields: list[str]) -> Any:
    def apply(tenant: Tenant, data: Any, actor: User | None) -> None:
        if data is None:
            return
        if not isinstance(data, dict):
            raise ValidationError(f"{key}: expected a mapping of settings, e.g. {fields[0]}: ...")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValidationError(
                f"{key}: unknown setting {', '.join(unknown)}; the settings are {', '.join(fields)}."
            )
        merged = {**_export(tenant, DEID_FIELDS + SHARING_FIELDS), **data}
        deid_form, sharing_form = services.forms_for(tenant, merged)
        if not (deid_form.is_valid() and sharing_form.is_valid()):
            raise services.errors_of(deid_form, sharing_form)
        services.save_settings(
            tenant=tenant,
            actor=audit.Actor.for_user(actor) if actor is not None else audit.Actor.system(),
            deid_form=deid_form,
            sharing_form=sharing_form,
        )

    return apply


def _deid_summary(tenant: Tenant) -> str:
    deid, _ = services.current(tenant)
    required = "required for every share" if deid.required_for_shares else "optional per share"
    return f"De-identified shares {required}; dates: {deid.get_dates_display().lower()}."


def _sharing_summary(tenant: Tenant) -> str:
    _, sharing = services.current(tenant)
    factor = ", second factor required" if sharing.require_second_factor else ""
    return (
        f"Links valid {sharing.default_days} days by default, at most {sharing.max_days}{factor}."
    )


SECTIONS = [
    Section(
        key="deid",
        title="De-identification for external consults",
        order=70,
        url_name="deid:settings",
        summary=_deid_summary,
        done=lambda tenant: True,  # the defaults (the basic profile) are safe to go live with
        apply=_apply("deid", DEID_FIELDS),
        export=lambda tenant: _export(tenant, DEID_FIELDS),
    ),
    Section(
        key="sharing",
        title="Share links",
        order=71,
        url_name="deid:settings",
        summary=_sharing_summary,
        done=lambda tenant: True,
        apply=_apply("sharing", SHARING_FIELDS),
        export=lambda tenant: _export(tenant, SHARING_FIELDS),
    ),
]
