"""What the page and the API share: whose log, reading it (audited) and exporting it (audited)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from tenants import audit
from tenants.models import AuditAction, AuditEvent, Tenant, User

from . import exports, queries

# An export larger than this is refused with a request to narrow it: the file is built in memory.
EXPORT_LIMIT = 20_000


class NotAnAdmin(PermissionError):
    """The user administers no hospital, so has no audit log to read."""

    message = "Only a hospital's admins may read its audit log."


class TooMany(ValueError):
    pass


def tenant_for(user: User, slug: str = "") -> Tenant:
    """The hospital whose log ``user`` asks for: by slug, or the only one they administer.

    A slug the user does not administer is "not found" (Http404), like any other tenant's object.
    """
    tenants = queries.admin_tenants(user)
    if slug:
        tenant = tenants.filter(slug=slug).first()
        if tenant is None:
            raise Http404("No such hospital.")
        return tenant
    first = tenants.order_by("name").first()
    if first is None:
        raise NotAnAdmin(NotAnAdmin.message)
    return first


def read(
    tenant: Tenant, filters: queries.Filters, actor: audit.Actor, *, page: int | str = 1
) -> QuerySet[AuditEvent]:
    """The matching rows; reading the log is itself an audit row (which filters, not values)."""
    audit.record(
        action=AuditAction.AUDIT_VIEW,
        actor=actor,
        tenant=tenant,
        detail={"filters": filters.used(), "page": str(page)[:8]},
    )
    return queries.events(tenant, filters)


@dataclass(frozen=True)
class Export:
    content: bytes
    content_type: str
    filename: str
    rows: int


FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "dicom": ("application/xml; charset=utf-8", "xml"),
    "fhir": ("application/fhir+json; charset=utf-8", "json"),
}


def export(tenant: Tenant, filters: queries.Filters, fmt: str, actor: audit.Actor) -> Export:
    """The matching rows as a file; refused (TooMany) beyond EXPORT_LIMIT rows. Audited."""
    if fmt not in FORMATS:
        raise ValueError("Export as csv, dicom or fhir.")
    events = list(queries.events(tenant, filters)[: EXPORT_LIMIT + 1])
    if len(events) > EXPORT_LIMIT:
        raise TooMany(
            f"More than {EXPORT_LIMIT} audit events match; narrow the time range and export again."
        )
    rows = exports.with_patients(tenant, events)
    content: Any
    if fmt == "csv":
        content = exports.to_csv(rows).encode()
    elif fmt == "dicom":
        content = exports.to_dicom_xml(rows, tenant)
    else:
        content = exports.to_fhir_bundle(rows, tenant).encode()
    audit.record(
        action=AuditAction.AUDIT_EXPORT,
        actor=actor,
        tenant=tenant,
        detail={"format": fmt, "rows": len(rows), "filters": filters.used()},
    )
    content_type, extension = FORMATS[fmt]
    return Export(content, content_type, f"audit-{tenant.slug}.{extension}", len(rows))


def patients_accessed(
    tenant: Tenant, filters: queries.Filters, actor: audit.Actor
) -> list[dict[str, str]]:
    """Who did user U / token T see between two times — for the admin, audited (how many)."""
    user = None
    if filters.user:
        user = User.objects.filter(username=filters.user).first()
        if user is None:
            return []
    patients = list(
        queries.patients_accessed(
            tenant,
            user=user,
            token_prefix=filters.token,
            since=filters.since,
            until=filters.until,
        ).values("patient_id", "issuer_of_patient_id", "patient_name")
    )
    audit.record(
        action=AuditAction.AUDIT_VIEW,
        actor=actor,
        tenant=tenant,
        detail={"query": "patients_accessed", "filters": filters.used(), "rows": len(patients)},
    )
    return patients
