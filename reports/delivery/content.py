"""What one delivery says: the report as it stands once a version is signed.

Every channel (PDF, DICOM, FHIR, HL7) renders the same ``Document``, so they cannot disagree. A
final report or a correction stands on its own; an addendum is delivered with the report it adds
to (and any earlier addenda), because a reader of the addendum alone would miss the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Model

from studies.models import Patient, Study
from tenants.models import Tenant

from ..models import SECTIONS, Kind, ReportVersion, Status

SECTION_TITLES = {
    "clinical_information": "Clinical information",
    "technique": "Technique",
    "comparison": "Comparison",
    "findings": "Findings",
    "impression": "Impression",
}

# The banner over the report: what a reader must know before reading a word of it.
BANNERS = {
    "preliminary": "PRELIMINARY",
    "final": "FINAL",
    "correction": "CORRECTED",
    "addendum": "ADDENDUM",
}


@dataclass
class Document:
    version: ReportVersion  # the version being delivered
    base: ReportVersion  # the report (or correction) it stands on
    addenda: list[ReportVersion] = field(default_factory=list)  # oldest first, ending at version
    tenant: Tenant | None = None
    study: Study | None = None
    patient: Patient | None = None

    @property
    def report_status(self) -> str:
        return self.version.report_status()

    @property
    def banner(self) -> str:
        return BANNERS.get(self.report_status, self.report_status.upper())

    def sections(self) -> list[tuple[str, str]]:
        """The base report's non-empty sections, as (title, text)."""
        return [
            (SECTION_TITLES[name], getattr(self.base, name))
            for name in SECTIONS
            if getattr(self.base, name).strip()
        ]

    def addendum_text(self, addendum: ReportVersion) -> str:
        return "\n\n".join(
            getattr(addendum, name) for name in SECTIONS if getattr(addendum, name).strip()
        )

    def plain_text(self) -> str:
        """The whole document as text (FHIR text form, HL7 OBX lines)."""
        parts = [f"{title.upper()}:\n{text}" for title, text in self.sections()]
        for addendum in self.addenda:
            parts.append(f"ADDENDUM ({_when(addendum.signed_at)}):\n{self.addendum_text(addendum)}")
        return "\n\n".join(parts)

    def signers(self) -> list[ReportVersion]:
        return [self.base, *self.addenda]


def _when(moment: datetime | date | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.isoformat()


def document(version: ReportVersion) -> Document:
    """The document a signed version delivers. Raises ValueError for a draft."""
    if version.status == Status.DRAFT:
        raise ValueError("A draft is not delivered.")
    addenda: list[ReportVersion] = []
    base = version
    # Walk back over addenda to the report or correction they add to.
    while base.kind == Kind.ADDENDUM and base.supersedes_id is not None:
        addenda.insert(0, base)
        base = _fetch(base.supersedes_id)
    report = version.report
    study = Study.objects.select_related("patient").get(pk=report.study_id)
    return Document(
        version=version,
        base=base,
        addenda=addenda,
        tenant=report.tenant,
        study=study,
        patient=study.patient,
    )


def _fetch(pk: int) -> ReportVersion:
    return ReportVersion.objects.select_related("signed_by", "author").get(pk=pk)


def person(user: Model | None) -> str:
    if user is None:
        return ""
    return str(user)
