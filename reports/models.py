"""Reports: one per work item, written in versions.

A version is a draft until it is signed; signing stores the hash of its content and from then on
the database itself refuses to change or delete the row (a trigger, see migration 0002). Later
changes to a final report are new versions (an addendum or a correction); the earlier ones stay
and are the report's history. The rules for moving between states live in ``services.py``.
"""

from __future__ import annotations

import hashlib
import json

from django.db import models
from django.db.models import Q
from django.utils import timezone

from studies.models import Study
from tenants.models import Tenant, User
from worklists.models import WorkItem

# The sections of a radiology report, in the order they are read (RSNA / IHE MRRT headings).
SECTIONS = ("clinical_information", "technique", "comparison", "findings", "impression")


class Kind(models.TextChoices):
    """What a version is: the report itself, or a later change to a final report."""

    REPORT = "report", "Report"
    ADDENDUM = "addendum", "Addendum"
    CORRECTION = "correction", "Correction"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    PRELIMINARY = "preliminary", "Preliminary"
    FINAL = "final", "Final"


class ReportStatus(models.TextChoices):
    """The status of a report as a whole, as the hospital sees it (from its newest signed
    version). Exported as HL7 v2 OBR-25 and FHIR R4 DiagnosticReport.status, see below."""

    DRAFT = "draft", "Draft"
    PRELIMINARY = "preliminary", "Preliminary"
    FINAL = "final", "Final"
    ADDENDUM = "addendum", "Final with addendum"
    CORRECTION = "correction", "Corrected"


# HL7 v2 OBR-25 (Result Status, table 0123). "A" for an addendum follows the issue and the
# radiology interfaces that use it so; table 0123 itself defines "A" as "some, but not all,
# results available" — a receiver that reads it strictly should be configured to take "C".
# A draft is not sent at all.
HL7_OBR25 = {
    ReportStatus.PRELIMINARY: "P",
    ReportStatus.FINAL: "F",
    ReportStatus.CORRECTION: "C",
    ReportStatus.ADDENDUM: "A",
}

# FHIR R4 DiagnosticReport.status (http://hl7.org/fhir/R4/valueset-diagnostic-report-status.html).
# "appended" and "corrected" are both specialisations of "amended"; an addendum adds content and
# leaves the signed text unchanged, which is exactly "appended". A draft is "partial".
FHIR_STATUS = {
    ReportStatus.DRAFT: "partial",
    ReportStatus.PRELIMINARY: "preliminary",
    ReportStatus.FINAL: "final",
    ReportStatus.CORRECTION: "corrected",
    ReportStatus.ADDENDUM: "appended",
}


class Report(models.Model):
    """The report of one work item (and so of its study, or its accession's studies)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    work_item = models.OneToOneField(WorkItem, on_delete=models.PROTECT, related_name="report")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="reports")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "study"], name="report_tenant_study")]

    def __str__(self) -> str:
        return f"report {self.pk}"


class ReportVersion(models.Model):
    """One version of a report. Immutable once signed (``signed_at`` set): enforced by the
    database, so no code path — ORM, raw SQL, admin — can change signed text."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REPORT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    clinical_information = models.TextField(blank=True)
    technique = models.TextField(blank=True)
    comparison = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    # Key images chosen for the report: [{"series": uid, "instance": uid, "frame": n,
    # "caption": text}], instances of this report's study. Part of what is signed.
    key_images = models.JSONField(default=list, blank=True)
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    signed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    # The version this one follows on from: the preliminary a final finalises, the final an
    # addendum or correction changes.
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["report", "number"]
        constraints = [
            models.UniqueConstraint(fields=["report", "number"], name="reportversion_unique"),
            # One draft at a time: two tabs, or two people, cannot start two.
            models.UniqueConstraint(
                fields=["report"], condition=Q(status="draft"), name="reportversion_one_draft"
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="draft", signed_at__isnull=True, content_sha256="")
                    | (
                        ~Q(status="draft")
                        & Q(signed_at__isnull=False, signed_by__isnull=False)
                        & ~Q(content_sha256="")
                    )
                ),
                name="reportversion_signed_iff_not_draft",
            ),
            models.CheckConstraint(
                condition=Q(kind="report") | ~Q(status="preliminary"),
                name="reportversion_changes_are_final",
            ),
        ]

    def __str__(self) -> str:
        return f"version {self.number} of report {self.report_id}"

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    def sections(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SECTIONS}

    def compute_sha256(self) -> str:
        """The hash of what was signed: the text, what the version is, who signed it and when.
        Canonical JSON (sorted keys, UTF-8), so anyone can recompute it from the row."""
        assert self.signed_at is not None and self.signed_by_id is not None
        content = {
            "report": self.report_id,
            "number": self.number,
            "kind": self.kind,
            "status": self.status,
            "sections": self.sections(),
            "author": self.author_id,
            "signed_by": self.signed_by_id,
            "signed_at": self.signed_at.isoformat(),
            "supersedes": self.supersedes_id,
        }
        if self.key_images:  # versions signed before key images existed keep their hash
            content["key_images"] = self.key_images
        encoded = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    def report_status(self) -> str:
        """The report's status when this is its newest signed version."""
        if self.status == Status.DRAFT:
            return ReportStatus.DRAFT
        if self.kind == Kind.ADDENDUM:
            return ReportStatus.ADDENDUM
        if self.kind == Kind.CORRECTION:
            return ReportStatus.CORRECTION
        return ReportStatus.PRELIMINARY if self.status == Status.PRELIMINARY else ReportStatus.FINAL


# The models of the report's features, each in its own package (they share this app's tables).
from .collab.models import *  # noqa: E402,F403
from .critical.models import *  # noqa: E402,F403
from .delivery.models import *  # noqa: E402,F403
from .evidence.models import *  # noqa: E402,F403
from .review.models import *  # noqa: E402,F403
from .templating.models import *  # noqa: E402,F403
