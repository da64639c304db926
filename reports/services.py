"""Writes to reports: drafts, signatures, addenda and corrections — the legal transitions only.

    draft ──sign──▶ preliminary ──finalise──▶ final ──▶ addendum / correction (draft ──sign──▶ final)
      └───sign──────────│─────────────────────▲
                        └──revise──▶ draft (from the preliminary's text) ──sign──▶ preliminary

- A hospital may require that preliminaries of reading-group radiologists are validated by one of
  its own radiologists (``review.models.ReviewPolicy``): then their author cannot make them final
  alone; ``review.services`` sends them for validation and makes the validator's final version.

- A draft is saved as often as its author likes (autosave); nobody else may change it.
- Signing asks for the password again (step-up, plus the MFA hook), stores the content hash and
  makes the version immutable (the database refuses changes from then on). Of two simultaneous
  signatures of one draft exactly one wins: a conditional UPDATE on the still-unsigned row.
- Signing moves the work item and ends the claim: preliminary → ``mark_read(PRELIMINARY)`` and
  the claim is released (the item waits, as preliminary, for its final); final →
  ``mark_read(FINAL)``, which completes it.
- Addenda and corrections of a final report are new versions; the earlier ones are kept.

Every action, and every refusal, writes an audit row. Error messages name no patient data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from tenants import audit
from tenants.mfa import step_up as mfa_step_up
from tenants.models import AuditAction, Outcome, User
from worklists import eligibility
from worklists import services as worklist
from worklists.models import ReadingState, WorkItem

from . import signals
from .evidence import services as evidence
from .models import SECTIONS, Kind, Report, ReportVersion, ReviewPolicy, ReviewRequest, Status

# ---------------------------------------------------------------------------------------------
# Errors: the worklist's (a message that is safe to show, and an HTTP status), so that one error
# handler serves both APIs; and two of our own.
# ---------------------------------------------------------------------------------------------

ReportError = worklist.WorklistError
NotFound = worklist.NotVisible  # missing, or someone else's: the same answer for both
NotAllowed = worklist.NotAllowed
Conflict = worklist.Conflict


class IllegalTransition(Conflict):
    """Not a step the report lifecycle has (e.g. changing a signed version)."""


class StepUpFailed(NotAllowed):
    """The password (or, later, the second factor) given to sign was not accepted."""


class StaleDraft(Conflict):
    """The draft changed since the caller last read it (another tab, another window)."""


def _needs_validation_message(item: WorkItem) -> str:
    return (
        f"{item.tenant.name} has its own radiologists validate preliminary reports: sign it "
        "as preliminary and send it for review."
    )


# ---------------------------------------------------------------------------------------------
# Step-up before signing
# ---------------------------------------------------------------------------------------------

# A callable (user, mfa_code) -> bool, called after the password is accepted: tenants.mfa asks
# the authenticator code of a user who has set one up (and counts wrong codes toward the lockout).
mfa_step_up_hook: Callable[[User, str | None], bool] | None = mfa_step_up


def verify_step_up(user: User, *, password: str, mfa_code: str | None = None) -> bool:
    """The signer proves again who they are: their password, then the MFA hook if set."""
    if not password or not user.is_active or not user.check_password(password):
        return False
    hook = mfa_step_up_hook
    return hook is None or hook(user, mfa_code)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def report_for(user: User, item_id: int, *, actor: audit.Actor) -> Report:
    """The report of a work item the user may see, else NotFound (missing or not theirs).
    Opening a report reads patient data: it is audited."""
    try:
        item = worklist.visible_item(user, item_id)
    except worklist.NotVisible:
        raise NotFound("No such report.") from None
    report = Report.objects.filter(work_item=item).select_related("work_item", "tenant").first()
    if report is None:
        raise NotFound("No such report.")
    _record(AuditAction.REPORT_VIEW, report, item, actor)
    return report


def item_report(user: User, item_id: int, *, actor: audit.Actor) -> tuple[WorkItem, Report | None]:
    """A work item the user may see and its report (None before the first save), else
    NotFound. Showing a report is audited; an item with no report yet has nothing to show."""
    try:
        item = worklist.visible_item(user, item_id)
    except worklist.NotVisible:
        raise NotFound("No such work item.") from None
    report = Report.objects.filter(work_item=item).first()
    if report is not None:
        report.work_item = item
        _record(AuditAction.REPORT_VIEW, report, item, actor)
    return item, report


def history(report: Report) -> list[ReportVersion]:
    """Every version, oldest first: the signed ones are the report's history."""
    return list(report.versions.order_by("number"))


def current(report: Report) -> ReportVersion | None:
    """The newest signed version: what the hospital sees."""
    return report.versions.filter(signed_at__isnull=False).order_by("-number").first()


# ---------------------------------------------------------------------------------------------
# Drafts
# ---------------------------------------------------------------------------------------------


def _record(
    action: str,
    report: Report | None,
    item: WorkItem,
    actor: audit.Actor,
    outcome: str = Outcome.SUCCESS,
    **detail: Any,
) -> None:
    """An audit row about the item's study (the worklist's shape), naming the report too."""
    worklist._record(action, item, actor, outcome, report=report.pk if report else None, **detail)


def _clean_sections(sections: Mapping[str, Any]) -> dict[str, str]:
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ReportError(f"Unknown report sections: {', '.join(sorted(unknown))}.")
    cleaned = {}
    for name, value in sections.items():
        if not isinstance(value, str):
            raise ReportError(f"The section {name} must be text.")
        cleaned[name] = value
    return cleaned


def _holds(item: WorkItem, user: User, now: datetime) -> bool:
    return item.holder_id == user.pk and item.lease_is_live(now)


def _visible(user: User, item: WorkItem) -> WorkItem:
    """The item again, fresh, if the user may see it; NotFound otherwise (another tenant's)."""
    try:
        return worklist.visible_item(user, item.pk)
    except worklist.NotVisible:
        raise NotFound("No such report.") from None


def _next_number(report: Report) -> int:
    return (report.versions.aggregate(n=Max("number"))["n"] or 0) + 1


def save_draft(
    *,
    item: WorkItem,
    user: User,
    actor: audit.Actor,
    sections: Mapping[str, Any],
    key_images: list[Any] | None = None,
    if_unchanged_since: datetime | None = None,
    now: datetime | None = None,
) -> ReportVersion:
    """Save the report's draft: the first save creates the report and its first version; later
    saves (autosave) change the open draft, its author's only. Starting the report needs the
    claim on the item; an addendum or correction draft is started with ``start_change``, a
    revision of a preliminary with ``start_revision``. ``key_images`` (None: unchanged) replaces
    the draft's key images. ``if_unchanged_since`` (the draft's ``updated_at`` as the caller
    last saw it) refuses, with StaleDraft, to overwrite what another tab saved meanwhile."""
    now = now or timezone.now()
    item = _visible(user, item)
    cleaned: dict[str, Any] = dict(_clean_sections(sections))
    if key_images is not None:
        try:
            cleaned["key_images"] = evidence.clean_key_images(item, key_images)
        except evidence.KeyImageError as error:
            raise ReportError(str(error)) from None
    report = Report.objects.filter(work_item=item).first()
    draft = report.versions.filter(status=Status.DRAFT).first() if report else None
    if draft is None and if_unchanged_since is not None:
        _record(
            AuditAction.REPORT_DRAFT_SAVE, report, item, actor, Outcome.FAILURE, why="stale",
        )  # fmt: skip
        raise StaleDraft(
            "This draft was signed or discarded in another window; reload the page to see the "
            "report as it is now."
        )
    if draft is None:
        if report is not None and report.versions.exists():
            _record(
                AuditAction.REPORT_DRAFT_SAVE, report, item, actor, Outcome.FAILURE,
                why="signed",
            )  # fmt: skip
            raise IllegalTransition(
                "This report is signed: finalise the preliminary, or write an addendum or a "
                "correction of the final report."
            )
        if not _holds(item, user, now):
            _record(
                AuditAction.REPORT_DRAFT_SAVE, report, item, actor, Outcome.FAILURE,
                why="not holder",
            )  # fmt: skip
            raise NotAllowed("Claim this study before you write its report.")
        try:
            with transaction.atomic():
                report, _ = Report.objects.get_or_create(
                    work_item=item,
                    defaults={"tenant": item.tenant, "study": item.study, "created_at": now},
                )
                draft = ReportVersion.objects.create(
                    tenant=item.tenant,
                    report=report,
                    number=_next_number(report),
                    kind=Kind.REPORT,
                    author=user,
                    created_at=now,
                    updated_at=now,
                    **cleaned,
                )
        except IntegrityError:
            # The same author's other tab started it at the same moment: save into that one.
            report = Report.objects.get(work_item=item)
            draft = report.versions.get(status=Status.DRAFT)
        else:
            _record(
                AuditAction.REPORT_DRAFT_SAVE, report, item, actor, version=draft.number,
                created=True,
            )  # fmt: skip
            return draft
    assert report is not None
    if draft.author_id != user.pk:
        _record(
            AuditAction.REPORT_DRAFT_SAVE, report, item, actor, Outcome.FAILURE,
            version=draft.number, why="not author",
        )  # fmt: skip
        raise NotAllowed("Only the author of this draft can change it.")
    if _needs_claim(draft) and not _holds(item, user, now):
        _record(
            AuditAction.REPORT_DRAFT_SAVE, report, item, actor, Outcome.FAILURE,
            version=draft.number, why="no claim",
        )  # fmt: skip
        raise NotAllowed("Claim this study again before you go on writing its report.")
    if cleaned or if_unchanged_since is not None:
        unsigned = ReportVersion.objects.filter(pk=draft.pk, status=Status.DRAFT)
        if if_unchanged_since is not None:
            unsigned = unsigned.filter(updated_at=if_unchanged_since)
        changed = unsigned.update(updated_at=now, **cleaned)
        if not changed:
            stale = ReportVersion.objects.filter(pk=draft.pk, status=Status.DRAFT).exists()
            _record(
                AuditAction.REPORT_DRAFT_SAVE, report, item, actor, Outcome.FAILURE,
                version=draft.number, why="stale" if stale else "signed",
            )  # fmt: skip
            if stale:
                raise StaleDraft(
                    "This draft was changed in another window since you opened it; reload the "
                    "page to see that text before you go on."
                )
            raise Conflict("This draft was signed meanwhile; it can no longer be changed.")
        draft.refresh_from_db()
    _record(AuditAction.REPORT_DRAFT_SAVE, report, item, actor, version=draft.number)
    return draft


def _needs_claim(version: ReportVersion) -> bool:
    """The report's first version is written under the claim on the item; a revision of a
    preliminary, an addendum and a correction come after the claim ended and need none."""
    return version.kind == Kind.REPORT and version.supersedes_id is None


def start_revision(
    *, report: Report, user: User, actor: audit.Actor, now: datetime | None = None
) -> ReportVersion:
    """Revise a preliminary (e.g. one returned by its validator): a new draft of the report,
    starting from the preliminary's text and key images, by the preliminary's author, who signs
    it as preliminary again. The preliminary stays in the history, immutable."""
    now = now or timezone.now()
    item = _visible(user, report.work_item)
    latest = current(report)

    def refuse(error: ReportError, why: str) -> ReportError:
        _record(AuditAction.REPORT_REVISE, report, item, actor, Outcome.FAILURE, why=why)
        return error

    if latest is None or latest.status != Status.PRELIMINARY:
        raise refuse(
            IllegalTransition(
                "Only a preliminary report can be revised; a final one takes an addendum or a "
                "correction."
            ),
            "not prelim",
        )
    if latest.author_id != user.pk:
        raise refuse(NotAllowed("Only the author of the preliminary can revise it."), "not author")
    if report.versions.filter(status=Status.DRAFT).exists():
        raise refuse(
            Conflict("This report already has an unsigned draft; go on with that one."), "draft"
        )
    if ReviewRequest.objects.filter(tenant=report.tenant, version=latest, state="open").exists():
        raise refuse(
            Conflict("This preliminary is waiting for validation; cancel the review first."),
            "in review",
        )
    try:
        with transaction.atomic():
            draft = ReportVersion.objects.create(
                tenant=report.tenant,
                report=report,
                number=_next_number(report),
                kind=Kind.REPORT,
                author=user,
                supersedes=latest,
                created_at=now,
                updated_at=now,
                key_images=latest.key_images,
                **latest.sections(),
            )
    except IntegrityError:
        raise refuse(Conflict("This report was changed meanwhile; reload it."), "race") from None
    _record(
        AuditAction.REPORT_REVISE, report, item, actor, version=draft.number,
        supersedes=latest.number,
    )  # fmt: skip
    return draft


def start_change(
    *,
    report: Report,
    user: User,
    actor: audit.Actor,
    kind: str,
    sections: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> ReportVersion:
    """Start an addendum or a correction of a final report, as a draft of a new version. The
    final report stays as it is; a correction starts from its text, an addendum from nothing."""
    now = now or timezone.now()
    item = _visible(user, report.work_item)
    action = AuditAction.REPORT_ADDENDUM if kind == Kind.ADDENDUM else AuditAction.REPORT_CORRECTION
    if kind not in (Kind.ADDENDUM, Kind.CORRECTION):
        raise ReportError("A change to a final report is an addendum or a correction.")
    if not eligibility.may_read(user, item):
        _record(action, report, item, actor, Outcome.FAILURE, why="not eligible")
        raise NotAllowed("You are not credentialed to report this study.")
    latest = current(report)
    if latest is None or latest.status != Status.FINAL:
        _record(action, report, item, actor, Outcome.FAILURE, why="not final")
        raise IllegalTransition("Only a final report can have an addendum or a correction.")
    if report.versions.filter(status=Status.DRAFT).exists():
        _record(action, report, item, actor, Outcome.FAILURE, why="open draft")
        raise Conflict("This report already has an unsigned draft; sign or discard it first.")
    start: dict[str, Any] = {}
    if kind == Kind.CORRECTION:  # a correction starts from the final text and its key images
        start = {**latest.sections(), "key_images": latest.key_images}
    start.update(_clean_sections(sections or {}))
    try:
        with transaction.atomic():
            draft = ReportVersion.objects.create(
                tenant=report.tenant,
                report=report,
                number=_next_number(report),
                kind=kind,
                author=user,
                supersedes=latest,
                created_at=now,
                updated_at=now,
                **start,
            )
    except IntegrityError:
        raise Conflict("Someone started a change of this report at the same moment.") from None
    _record(action, report, item, actor, version=draft.number, supersedes=latest.number)
    return draft


def discard_draft(*, version: ReportVersion, user: User, actor: audit.Actor) -> None:
    """Throw an unsigned draft away (its author only). Signed versions cannot be deleted."""
    item = _visible(user, version.report.work_item)
    if version.author_id != user.pk:
        raise NotAllowed("Only the author of this draft can discard it.")
    if not ReportVersion.objects.filter(pk=version.pk, status=Status.DRAFT).delete()[0]:
        raise IllegalTransition("A signed version cannot be discarded.")
    _record(AuditAction.REPORT_DISCARD, version.report, item, actor, version=version.number)


# ---------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------


def sign(
    *,
    version: ReportVersion,
    user: User,
    actor: audit.Actor,
    status: str,
    password: str,
    mfa_code: str | None = None,
    now: datetime | None = None,
) -> ReportVersion:
    """Sign a draft as preliminary or final. Only its author may, and for the report itself only
    while holding the claim on the item. Of simultaneous signatures exactly one succeeds; the
    others get Conflict."""
    now = now or timezone.now()
    report = version.report
    item = _visible(user, report.work_item)
    # As it is now, not as the caller's copy says (another tab may have signed it).
    version = ReportVersion.objects.select_related("report").get(pk=version.pk)

    def refuse(error: ReportError, why: str) -> ReportError:
        _record(
            AuditAction.REPORT_SIGN, report, item, actor, Outcome.FAILURE,
            version=version.number, status=status, why=why,
        )  # fmt: skip
        return error

    if status not in (Status.PRELIMINARY, Status.FINAL):
        raise refuse(ReportError("A report is signed as preliminary or as final."), "bad status")
    if version.status != Status.DRAFT:
        raise refuse(
            IllegalTransition(f"This version is already signed ({version.status})."), "signed"
        )
    if version.kind != Kind.REPORT and status != Status.FINAL:
        raise refuse(
            IllegalTransition(f"An {version.get_kind_display().lower()} is signed as final."),
            "change not final",
        )
    if version.author_id != user.pk:
        raise refuse(NotAllowed("Only the author of this draft can sign it."), "not author")
    if _needs_claim(version) and not _holds(item, user, now):
        raise refuse(NotAllowed("Claim this study again before you sign its report."), "no claim")
    if not _needs_claim(version) and not eligibility.may_read(user, item):
        raise refuse(NotAllowed("You are not credentialed to report this study."), "not eligible")
    if (
        version.kind == Kind.REPORT
        and status == Status.FINAL
        and ReviewPolicy.validation_required(item.tenant_id, user)
    ):
        raise refuse(NotAllowed(_needs_validation_message(item)), "needs validation")
    if not verify_step_up(user, password=password, mfa_code=mfa_code):
        raise refuse(
            StepUpFailed("The password is not correct; the report is not signed."), "step-up"
        )
    return _seal(version, user, actor, item, status=status, now=now)


def finalise(
    *,
    preliminary: ReportVersion,
    user: User,
    actor: audit.Actor,
    password: str,
    sections: Mapping[str, Any] | None = None,
    mfa_code: str | None = None,
    now: datetime | None = None,
) -> ReportVersion:
    """Preliminary → final, by the preliminary's author (a validator's co-sign comes later), as a
    new version (the preliminary stays, immutable). ``sections`` may change the text."""
    now = now or timezone.now()
    report = preliminary.report
    item = _visible(user, report.work_item)

    def refuse(error: ReportError, why: str) -> ReportError:
        _record(
            AuditAction.REPORT_SIGN, report, item, actor, Outcome.FAILURE,
            version=preliminary.number, status=Status.FINAL, why=why,
        )  # fmt: skip
        return error

    if preliminary.status != Status.PRELIMINARY:
        raise refuse(IllegalTransition("Only a preliminary report can be finalised."), "not prelim")
    latest = current(report)
    if latest is None or latest.pk != preliminary.pk:
        raise refuse(IllegalTransition("This preliminary was already finalised."), "superseded")
    if preliminary.author_id != user.pk:
        raise refuse(
            NotAllowed("Only the author of the preliminary report can finalise it."), "not author"
        )
    if ReviewPolicy.validation_required(item.tenant_id, user):
        raise refuse(NotAllowed(_needs_validation_message(item)), "needs validation")
    if report.versions.filter(status=Status.DRAFT).exists():
        raise refuse(
            Conflict("This report has an unsigned revision; sign or discard it first."), "draft"
        )
    if not verify_step_up(user, password=password, mfa_code=mfa_code):
        raise refuse(
            StepUpFailed("The password is not correct; the report is not signed."), "step-up"
        )
    if ReviewRequest.objects.filter(
        tenant=report.tenant, version=preliminary, state="open"
    ).exists():
        raise refuse(
            Conflict("This preliminary is waiting for validation; cancel the review first."),
            "in review",
        )
    try:
        return seal_final_of(
            preliminary, signer=user, actor=actor, item=item, sections=sections, now=now
        )
    except Conflict as error:
        raise refuse(error, "race") from None


def seal_final_of(
    preliminary: ReportVersion,
    *,
    signer: User,
    actor: audit.Actor,
    item: WorkItem,
    sections: Mapping[str, Any] | None,
    now: datetime,
) -> ReportVersion:
    """The final version of a preliminary, signed by ``signer``: its author (``finalise``) or a
    validator (``review.services.validate``); the preliminary's author stays the author. For
    callers that have checked who may do this and asked for the step-up."""
    report = preliminary.report
    text = preliminary.sections()
    text.update(_clean_sections(sections or {}))
    try:
        with transaction.atomic():
            final = ReportVersion.objects.create(
                tenant=report.tenant,
                report=report,
                number=preliminary.number + 1,
                kind=Kind.REPORT,
                author_id=preliminary.author_id,
                supersedes=preliminary,
                created_at=now,
                updated_at=now,
                key_images=preliminary.key_images,
                **text,
            )
            return _seal(final, signer, actor, item, status=Status.FINAL, now=now)
    except IntegrityError:
        # Version number taken: another finalisation (or a draft) got there first.
        raise Conflict("This report was changed meanwhile; reload it.") from None


def _announce_signed(version_pk: int) -> None:
    version = ReportVersion.objects.select_related("report", "tenant").get(pk=version_pk)
    signals.version_signed.send(sender=ReportVersion, version=version)


def _seal(
    version: ReportVersion,
    user: User,
    actor: audit.Actor,
    item: WorkItem,
    *,
    status: str,
    now: datetime,
) -> ReportVersion:
    """Sign the still-unsigned row, once, and move the work item, in one transaction."""
    version.status = status
    version.signed_by = user
    version.signed_at = now
    version.updated_at = now
    digest = version.compute_sha256()
    with transaction.atomic():
        won = ReportVersion.objects.filter(
            pk=version.pk, status=Status.DRAFT, signed_at__isnull=True
        ).update(
            status=status, signed_by=user, signed_at=now, updated_at=now, content_sha256=digest
        )
        if won:
            if version.kind == Kind.REPORT:
                worklist.mark_read(
                    item,
                    ReadingState.FINAL if status == Status.FINAL else ReadingState.PRELIMINARY,
                    now=now,
                )
                if status == Status.PRELIMINARY:
                    # Reading is done; the item waits, as preliminary, for its final.
                    WorkItem.objects.filter(pk=item.pk).update(**worklist._freed(now))
                    item.refresh_from_db()
            _record(
                AuditAction.REPORT_SIGN, version.report, item, actor,
                version=version.number, kind=version.kind, status=status, sha256=digest,
            )  # fmt: skip
            signed_pk = version.pk
            transaction.on_commit(lambda: _announce_signed(signed_pk))
    if not won:
        _record(
            AuditAction.REPORT_SIGN, version.report, item, actor, Outcome.FAILURE,
            version=version.number, status=status, why="race",
        )  # fmt: skip
        raise Conflict("This draft was signed meanwhile.")
    version.refresh_from_db()
    return version
