"""The wizard's "Hospital details" step: name, contact details, report footer and logo."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from tenants.models import Tenant, User

from . import services
from .forms import DetailsForm
from .models import HospitalProfile
from .sections import Section


def _profile(tenant: Tenant) -> HospitalProfile | None:
    return HospitalProfile.objects.filter(tenant=tenant).first()


def summary(tenant: Tenant) -> str:
    profile = _profile(tenant)
    if profile is None:
        return "Not filled in yet."
    parts = [tenant.name]
    parts.append("contact given" if profile.phone or profile.email else "no contact yet")
    parts.append("logo" if profile.logo_key else "no logo")
    return ", ".join(parts)


def done(tenant: Tenant) -> bool:
    profile = _profile(tenant)
    return bool(profile and profile.address and (profile.phone or profile.email))


def form_errors(form: DetailsForm) -> ValidationError:
    return ValidationError(
        {field: [str(e) for e in errors] for field, errors in form.errors.items()}
    )


def apply(tenant: Tenant, data: Any, actor: User | None) -> None:
    """``details: {name, address, phone, email, report_footer}`` (the logo is uploaded on the
    page). Fields left out keep their value."""
    if not isinstance(data, dict):
        raise ValidationError("Give the details as a mapping of field names to values.")
    unknown = sorted(set(data) - {"name", *services.PROFILE_FIELDS})
    if unknown:
        raise ValidationError({key: "Unknown field." for key in unknown})
    profile = _profile(tenant) or HospitalProfile(tenant=tenant)
    merged = {"name": tenant.name, **{f: getattr(profile, f) for f in services.PROFILE_FIELDS}}
    merged.update({key: "" if value is None else str(value) for key, value in data.items()})
    form = DetailsForm(merged)
    if not form.is_valid():
        raise form_errors(form)
    cleaned = form.cleaned_data
    services.save_details(
        tenant=tenant,
        name=cleaned["name"],
        values={f: cleaned[f] for f in services.PROFILE_FIELDS},
        logo=None,
        actor=actor,
    )


def export(tenant: Tenant) -> dict[str, str]:
    profile = _profile(tenant) or HospitalProfile(tenant=tenant)
    return {"name": tenant.name, **{f: getattr(profile, f) for f in services.PROFILE_FIELDS}}


SECTION = Section(
    key="details",
    title="Hospital details and branding",
    order=10,
    url_name="onboarding:details",
    summary=summary,
    done=done,
    apply=apply,
    export=export,
)
