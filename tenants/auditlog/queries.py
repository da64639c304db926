"""Reads of one tenant's audit log. Every query starts from the tenant: another tenant's rows, or
patients, never appear — even where two hospitals sent the same UIDs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from tenants.models import AuditAction, AuditEvent, Membership, Outcome, Role, Tenant, User


class FilterError(ValueError):
    """A filter value that cannot be used; the message says what to type instead."""


def admin_tenants(user: User) -> QuerySet[Tenant]:
    """Hospitals whose audit log this user may read: those they are a tenant admin of."""
    if not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    return Tenant.objects.filter(
        is_active=True,
        id__in=Membership.objects.filter(user=user, role=Role.TENANT_ADMIN).values("tenant_id"),
    )


def _moment(value: str, *, name: str, end: bool) -> datetime:
    """An ISO date or date-time. A bare date means the start of that day (``end``: the next)."""
    value = value.strip()
    moment = parse_datetime(value)
    if moment is None:
        day: date | None = parse_date(value)
        if day is None:
            raise FilterError(
                f"{name}: enter a date such as 2026-11-29 or a time such as 2026-11-29T14:30."
            )
        moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


@dataclass(frozen=True)
class Filters:
    """What an admin can narrow the log by. All optional; they combine with AND."""

    since: datetime | None = None
    until: datetime | None = None
    user: str = ""  # username
    token: str = ""  # token prefix
    action: str = ""
    outcome: str = ""
    patient_id: str = ""  # the DICOM Patient ID, as the hospital writes it
    study_uid: str = ""

    KEYS = ("since", "until", "user", "token", "action", "outcome", "patient_id", "study_uid")

    @classmethod
    def parse(cls, params: Any) -> Filters:
        raw = {k: str(params.get(k, "") or "").strip() for k in cls.KEYS}
        since = _moment(raw["since"], name="since", end=False) if raw["since"] else None
        until = _moment(raw["until"], name="until", end=True) if raw["until"] else None
        if since and until and since >= until:
            raise FilterError("since must be before until.")
        if raw["action"] and raw["action"] not in AuditAction.values:
            raise FilterError("action: choose one of the listed actions, e.g. study.view.")
        if raw["outcome"] and raw["outcome"] not in Outcome.values:
            raise FilterError("outcome: success, warning or failure.")
        if raw["token"].startswith("sky_"):
            # Someone pasted a whole token: keep only its public prefix, never the secret.
            raw["token"] = raw["token"].split("_")[1] if raw["token"].count("_") >= 2 else ""
        for key, limit in (("patient_id", 64), ("study_uid", 64), ("user", 150), ("token", 16)):
            if len(raw[key]) > limit:
                raise FilterError(f"{key}: at most {limit} characters.")
        return cls(
            since=since,
            until=until,
            **{k: raw[k] for k in cls.KEYS if k not in ("since", "until")},
        )

    def used(self) -> list[str]:
        """Names of the filters in use (for the audit row: which, never their values)."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


def _patients_named(tenant: Tenant, patient_id: str) -> Q:
    from studies.models import Patient, Study

    patients = Patient.objects.filter(tenant=tenant, patient_id=patient_id).values("id")
    studies = Study.objects.filter(tenant=tenant, patient__patient_id=patient_id)
    return Q(patient_ref__in=patients) | Q(
        study_instance_uid__in=studies.values("study_instance_uid")
    )


def events(tenant: Tenant, filters: Filters) -> QuerySet[AuditEvent]:
    """The tenant's audit rows matching ``filters``, newest first."""
    rows = AuditEvent.objects.filter(tenant=tenant)
    if filters.since:
        rows = rows.filter(occurred_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(occurred_at__lt=filters.until)
    if filters.user:
        rows = rows.filter(actor_user__username=filters.user)
    if filters.token:
        rows = rows.filter(actor_token__prefix=filters.token)
    if filters.action:
        rows = rows.filter(action=filters.action)
    if filters.outcome:
        rows = rows.filter(outcome=filters.outcome)
    if filters.patient_id:
        rows = rows.filter(_patients_named(tenant, filters.patient_id))
    if filters.study_uid:
        rows = rows.filter(study_instance_uid=filters.study_uid)
    return rows.select_related("actor_user", "actor_token").order_by("-occurred_at", "-id")


def patients_accessed(
    tenant: Tenant,
    *,
    user: User | None = None,
    token_prefix: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Any]:
    """Which patients of ``tenant`` did this user (or this token) access between two times?

    One SQL statement: the distinct patients named by the matching audit rows, either directly
    (``patient_ref``) or through the study they touched (a UID matched only within the tenant).
    """
    from studies.models import Patient, Study

    if user is None and not token_prefix:
        raise FilterError("Name a user or a token.")
    rows = AuditEvent.objects.filter(tenant=tenant)
    if user is not None:
        rows = rows.filter(actor_user=user)
    if token_prefix:
        rows = rows.filter(actor_token__prefix=token_prefix)
    if since:
        rows = rows.filter(occurred_at__gte=since)
    if until:
        rows = rows.filter(occurred_at__lt=until)
    direct = rows.filter(patient_ref__isnull=False).values("patient_ref")
    via_study = Study.objects.filter(
        tenant=tenant,
        study_instance_uid__in=rows.exclude(study_instance_uid="").values("study_instance_uid"),
    ).values("patient_id")
    return (
        Patient.objects.filter(tenant=tenant)
        .filter(Q(id__in=direct) | Q(id__in=via_study))
        .order_by("patient_name", "patient_id", "id")
    )
