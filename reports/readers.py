"""Who reads finished reports: the referring physician of a study, and the hospital's own staff.

- A referring physician (REFERRING_PHYSICIAN in a tenant) sees the signed reports of that
  tenant's studies whose ReferringPhysicianName is their own DICOM name (``User.person_name``),
  compared in the search form studies use (upper case, accents dropped), and nothing else.
- The hospital's admins and radiologists see every signed report of their tenant.

A draft is never shown here: only signed versions, the newest one labelled as it is
(PRELIMINARY, FINAL, with its addenda and corrections). A referring physician sees
preliminaries only where the hospital allows it (``SharePolicy.referrers_see_preliminary``,
off by default): a preliminary may still change, and acting on it is the hospital's decision. Anything else is "not found", and every
report shown is audited (RESULT_VIEW).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from studies.dicom.attributes import search_form
from studies.sharing.access import granted_study_ids
from tenants import audit
from tenants.models import AuditAction, Membership, Role, User

from . import services
from .models import Report, ReportVersion, Status

STAFF_ROLES = (Role.TENANT_ADMIN, Role.RADIOLOGIST)
# More than this on one page is a search, not a list of results.
RESULTS_LIMIT = 200


def referrer_names(user: User) -> list[str]:
    """The user's DICOM name (its alphabetic group) in search form, as hospitals may write it:
    with or without trailing empty components ("WELBY^MARCUS", "WELBY^MARCUS^^"). None for a
    user without a DICOM name."""
    name = search_form(user.person_name.split("=")[0].strip()).rstrip("^")
    if not name:
        return []
    return [name + "^" * n for n in range(5 - name.count("^"))] or [name]


def preliminary_tenants(user: User) -> QuerySet[Membership, Any]:
    """Tenant ids where this user sees preliminary reports: their staff's, and those whose
    policy shows preliminaries to referrers."""
    from studies.sharing.models import SharePolicy

    allowing = SharePolicy.objects.filter(referrers_see_preliminary=True).values("tenant_id")
    return (
        Membership.objects.filter(user=user, tenant__isnull=False)
        .filter(Q(role__in=STAFF_ROLES) | Q(role=Role.REFERRING_PHYSICIAN, tenant_id__in=allowing))
        .values("tenant_id")
    )


def results_for(user: User) -> QuerySet[Report]:
    """Reports with at least one signed version that this user may read as a result."""
    if not user.is_authenticated or not user.is_active:
        return Report.objects.none()
    memberships = Membership.objects.filter(user=user, tenant__isnull=False, tenant__is_active=True)
    staff = memberships.filter(role__in=STAFF_ROLES).values("tenant_id")
    scope = Q(tenant_id__in=staff)
    names = referrer_names(user)
    referring = memberships.filter(role=Role.REFERRING_PHYSICIAN).values("tenant_id")
    if names:
        scope |= Q(tenant_id__in=referring, study__referring_physician_name_search__in=names)
    scope |= Q(tenant_id__in=referring, study_id__in=granted_study_ids(user))
    signed = ReportVersion.objects.filter(report=OuterRef("pk"), signed_at__isnull=False)
    final = signed.filter(status=Status.FINAL)
    return (
        Report.objects.filter(scope)
        .filter(Q(Exists(final)) | Q(Exists(signed), tenant_id__in=preliminary_tenants(user)))
        .select_related("tenant", "study__patient", "work_item")
    )


@dataclass
class Result:
    report: Report
    current: ReportVersion
    versions: list[ReportVersion]  # signed only, oldest first

    @property
    def patient(self) -> str:
        from worklists.views import person_name  # how the worklist writes a DICOM name

        return person_name(self.report.study.patient.patient_name)

    @property
    def referrer(self) -> str:
        from worklists.views import person_name

        return person_name(self.report.study.referring_physician_name)

    @property
    def label(self) -> str:
        """What a clinician must not miss: is this the final word?"""
        return "PRELIMINARY" if self.current.status == "preliminary" else "FINAL"


def _signed(user: User, reports: list[Report]) -> dict[int, list[ReportVersion]]:
    """Each report's signed versions this user may read (no preliminary where they may not)."""
    by_report: dict[int, list[ReportVersion]] = {r.pk: [] for r in reports}
    versions = ReportVersion.objects.filter(report__in=reports, signed_at__isnull=False).filter(
        Q(status=Status.FINAL) | Q(report__tenant_id__in=preliminary_tenants(user))
    )
    for version in versions.select_related("author", "signed_by").order_by("report_id", "number"):
        by_report[version.report_id].append(version)
    return by_report


def result_list(user: User, *, actor: audit.Actor) -> list[Result]:
    """The user's results, newest signature first, audited per tenant (report ids only)."""
    reports = list(results_for(user).order_by("-created_at", "-id")[:RESULTS_LIMIT])
    signed = _signed(user, reports)
    results = [Result(r, signed[r.pk][-1], signed[r.pk]) for r in reports if signed[r.pk]]
    results.sort(key=lambda r: r.current.signed_at or r.report.created_at, reverse=True)
    by_tenant: dict[int, list[Result]] = {}
    for result in results:
        by_tenant.setdefault(result.report.tenant_id, []).append(result)
    audit.record_many(
        audit.build(
            action=AuditAction.RESULT_VIEW,
            actor=actor,
            tenant=shown[0].report.tenant,
            detail={"page": "results", "reports": [r.report.pk for r in shown]},
        )
        for shown in by_tenant.values()
    )
    return results


def result(user: User, report_id: int, *, actor: audit.Actor) -> Result:
    """One result the user may read, else NotFound; audited."""
    report = results_for(user).filter(pk=report_id).first()
    if report is None:
        raise services.NotFound("No such report.")
    versions = _signed(user, [report])[report.pk]
    study = report.study
    audit.record(
        action=AuditAction.RESULT_VIEW,
        actor=actor,
        tenant=report.tenant,
        study_instance_uid=study.study_instance_uid,
        patient_ref=study.patient_id,
        detail={"report": report.pk, "version": versions[-1].number},
    )
    return Result(report, versions[-1], versions)


# ---------------------------------------------------------------------------------------------
# Critical results for the referrer, acknowledged in the portal
# ---------------------------------------------------------------------------------------------


def _criticals_for(user: User) -> QuerySet[Any]:
    """Critical results told to this user (a communication names them), or of the studies they
    referred that someone was told of: the ones their acknowledgement answers."""
    from .critical.models import CriticalCommunication, CriticalResult

    if not user.is_authenticated or not user.is_active:
        return CriticalResult.objects.none()
    addressed = CriticalCommunication.objects.filter(recipient_user=user).values("critical_id")
    scope = Q(id__in=addressed)
    names = referrer_names(user)
    if names:
        referring = Membership.objects.filter(
            user=user, tenant__isnull=False, role=Role.REFERRING_PHYSICIAN
        ).values("tenant_id")
        told = CriticalCommunication.objects.values("critical_id")
        scope |= Q(
            tenant_id__in=referring,
            study__referring_physician_name_search__in=names,
            id__in=told,
        )
    return CriticalResult.objects.filter(scope, tenant__is_active=True)


def open_criticals(user: User, *, actor: audit.Actor) -> list[Any]:
    """The user's unacknowledged critical results, soonest due first; the listing is audited."""
    found = list(
        _criticals_for(user)
        .filter(acknowledged_at__isnull=True)
        .select_related("tenant", "study")
        .order_by("due_at", "id")[:RESULTS_LIMIT]
    )
    by_tenant: dict[int, list[Any]] = {}
    for critical in found:
        by_tenant.setdefault(critical.tenant_id, []).append(critical)
    audit.record_many(
        audit.build(
            action=AuditAction.CRITICAL_LIST,
            actor=actor,
            tenant=shown[0].tenant,
            detail={"page": "results", "criticals": [c.pk for c in shown]},
        )
        for shown in by_tenant.values()
    )
    return found


def acknowledge_critical(
    user: User, critical_id: int, *, actor: audit.Actor, now: datetime.datetime | None = None
) -> bool:
    """The referrer acknowledges in the portal, as with the link they were sent (the same
    service, idempotent). NotFound for a result that is not theirs."""
    from .critical import services as critical_services

    critical = _criticals_for(user).select_related("work_item").filter(pk=critical_id).first()
    if critical is None:
        raise services.NotFound("No such critical result.")
    communications = critical.communications.order_by("-communicated_at", "-id")
    communication = communications.filter(recipient_user=user).first() or communications.first()
    name = user.get_full_name() or user.username
    with transaction.atomic():
        # The link's acknowledgement, without the link: the portal login is the proof.
        return critical_services._acknowledge(
            critical,
            communication,
            actor,
            name=name,
            user=user,
            now=now or timezone.now(),
        )
