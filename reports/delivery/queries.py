"""Reads of delivery, scoped to what the user may see: "not found" for anything else.

A signed version is visible to whoever may see its work item (readers and admins of the study,
``worklists.services.visible_item``) and, once final, to the study's referring physician: a user
with the referring-physician role in the study's hospital whose DICOM name is the study's
Referring Physician's Name.
"""

from __future__ import annotations

from django.db.models import Prefetch

from studies.dicom.attributes import search_form
from studies.models import Study
from tenants import audit
from tenants.models import AuditAction, Membership, Role, User
from worklists import services as worklist
from worklists.models import WorkItem

from ..models import Report, ReportVersion, Status
from .models import Delivery

NotFound = worklist.NotVisible


def is_referrer(user: User, study: Study) -> bool:
    if not user.is_active or not user.person_name or not study.referring_physician_name_search:
        return False
    if search_form(user.person_name) != study.referring_physician_name_search:
        return False
    return Membership.objects.filter(
        user=user, tenant_id=study.tenant_id, role=Role.REFERRING_PHYSICIAN
    ).exists()


def signed_version(user: User, version_id: int) -> ReportVersion:
    """A signed version the user may see, else NotFound (missing, a draft, or not theirs)."""
    version = (
        ReportVersion.objects.select_related("report__study", "report__tenant", "signed_by")
        .filter(pk=version_id, signed_at__isnull=False)
        .first()
    )
    if version is None:
        raise NotFound("No such report.")
    try:
        worklist.visible_item(user, version.report.work_item_id)
    except worklist.NotVisible:
        if not (version.status == Status.FINAL and is_referrer(user, version.report.study)):
            raise NotFound("No such report.") from None
    return version


def current_version(user: User, report_id: int, number: int | None = None) -> ReportVersion:
    """The report's newest signed version (or its version ``number``) the user may see."""
    versions = ReportVersion.objects.filter(report_id=report_id, signed_at__isnull=False)
    if number is not None:
        versions = versions.filter(number=number)
    pk = versions.order_by("-number").values_list("pk", flat=True).first()
    if pk is None:
        raise NotFound("No such report.")
    return signed_version(user, pk)


def item_deliveries(user: User, item_id: int) -> tuple[WorkItem, list[ReportVersion]]:
    """The item's signed versions, newest first, each with its deliveries (prefetched)."""
    item = worklist.visible_item(user, item_id)
    report = Report.objects.filter(work_item=item).first()
    if report is None:
        return item, []
    versions = list(
        ReportVersion.objects.filter(report=report, signed_at__isnull=False)
        .select_related("signed_by")
        .prefetch_related(Prefetch("deliveries", queryset=Delivery.objects.order_by("id")))
        .order_by("-number")
    )
    return item, versions


def record_export(version: ReportVersion, actor: audit.Actor, form: str) -> None:
    """Reading a delivered report is reading patient data: one audit row per access."""
    report = version.report
    audit.record(
        action=AuditAction.REPORT_EXPORT,
        actor=actor,
        tenant=report.tenant,
        study_instance_uid=report.study.study_instance_uid,
        patient_ref=report.study.patient_id,
        detail={"report": report.pk, "version": version.number, "format": form},
    )
