"""The hospital set-up wizard's sections, and how each is applied from a file.

A section is one step of ``/t/<slug>/setup/`` (hospital details, DICOM, destinations, users,
reading agreements, retention, de-identification, ...). Each feature package owns its section and
exposes it as ``SECTION`` in a module listed in ``PROVIDERS``; the wizard's overview lists them in
``order``, and ``manage.py onboard_tenant --from-file tenant.yaml`` applies the file's key of the
same name through the same validation as the form, so a scripted onboarding can do exactly what
the wizard does and no more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenants.models import Tenant, User


@dataclass(frozen=True)
class Section:
    key: str  # the YAML key, e.g. "dicom"; lower case, unique
    title: str  # "DICOM connections"
    order: int  # the wizard's order, lowest first
    url_name: str  # the step's page, reversed with tenant_slug=...
    # One line for the overview: what is configured now ("2 calling AE titles, 1 network").
    summary: Callable[[Tenant], str]
    # Whether the step has what a hospital needs before it goes live.
    done: Callable[[Tenant], bool]
    # Apply this section's part of a tenant.yaml: validate everything first with the same forms
    # as the page, raise django.core.exceptions.ValidationError with messages a person can act
    # on (naming the field), change nothing on error, and be idempotent (applying the same data
    # twice changes nothing the second time). Every change is audited as the page's would be.
    apply: Callable[[Tenant, Any, User | None], None]
    # The current configuration as data ``apply`` accepts (for export and round trips).
    export: Callable[[Tenant], Any] | None = None


# Modules that define ``SECTION`` (a Section, or None while it is not built yet).
PROVIDERS: tuple[str, ...] = (
    "tenants.onboarding.details",  # hospital details and branding
    "tenants.dicomconfig.sections",  # called AE, callers and networks, echo, destinations
    "tenants.onboarding.users",  # users and roles
    "worklists.groupadmin.sections",  # reading-group agreements
    "studies.retention.sections",  # retention policy
    "studies.deid.sections",  # de-identification policy for external consults and shares
)


def sections() -> list[Section]:
    found: list[Section] = []
    for name in PROVIDERS:
        module = import_module(name)
        for attribute in ("SECTION", "SECTIONS"):
            value = getattr(module, attribute, None)
            if isinstance(value, Section):
                found.append(value)
            elif isinstance(value, list | tuple):
                found.extend(v for v in value if isinstance(v, Section))
    keys = [s.key for s in found]
    assert len(keys) == len(set(keys)), f"two sections share a key: {keys}"
    return sorted(found, key=lambda s: s.order)
