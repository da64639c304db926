"""Co-sign: send a signed preliminary for validation, validate it to final, return it, cancel.

    preliminary ──request──▶ open ──validate──▶ validated (a new final version, signed by the
                                  │                        validator; the author stays the author)
                                  ├──return───▶ returned  (the author revises and sends again)
                                  └──cancel───▶ cancelled (by the author)

The validator reaches the request through it, not through the worklist: a hospital radiologist
validates a report without being credentialed to read the study from scratch. Everything is
scoped by the request's tenant: a request of another hospital is "not found". Each decision is a
conditional UPDATE of the still-open request, so two validators pressing at once make one final
version. Every action, and every refusal, is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from reports import services as reports
from reports.models import Report, ReportVersion, Status
from tenants import audit
from tenants.models import AuditAction, Membership, Outcome, Role, Tenant, User
from worklists.models import WorkItem

from .models import ReviewPolicy, ReviewRequest, ReviewState

ReviewError = reports.ReportError
NotFound = reports.NotFound


def _record(
    action: str,
    request: ReviewRequest | None,
    item: WorkItem,
    actor: audit.Actor,
    outcome: str = Outcome.SUCCESS,
    **detail: Any,
) -> None:
    if request is not None:
        detail = {"review": request.pk, "version": request.version.number, **detail}
    reports._record(action, request.report if request else None, item, actor, outcome, **detail)


def _radiologist_tenants(user: User) -> QuerySet[Membership, Any]:
    return Membership.objects.filter(
        user=user, role=Role.RADIOLOGIST, tenant__isnull=False, tenant__is_active=True
    ).values("tenant_id")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def requests_for(user: User) -> QuerySet[ReviewRequest]:
    """Requests the user may see: those they sent, and those of hospitals they are a
    radiologist of."""
    if not user.is_active:
        return ReviewRequest.objects.none()
    return ReviewRequest.objects.filter(
        Q(tenant_id__in=_radiologist_tenants(user)) | Q(requested_by=user)
    ).select_related(
        "tenant",
        "report__work_item__study",
        "version__author",
        "version__signed_by",
        "requested_by",
        "reviewer",
        "decided_by",
    )


def queue(user: User) -> list[ReviewRequest]:
    """Open requests this hospital radiologist may decide: named to them, or to anyone."""
    if not user.is_active:
        return []
    found = (
        ReviewRequest.objects.filter(
            tenant_id__in=_radiologist_tenants(user), state=ReviewState.OPEN
        )
        .filter(Q(reviewer__isnull=True) | Q(reviewer=user))
        .exclude(requested_by=user)
        .select_related(
            "tenant", "report__work_item", "report__study", "version", "requested_by", "reviewer"
        )
        .order_by("created_at", "id")
    )
    return list(found)


def audit_listed(requests: list[ReviewRequest], actor: audit.Actor, where: str) -> None:
    """A list of requests shows patients' studies: one audit row per request listed."""
    audit.record_many(
        audit.build(
            action=AuditAction.REPORT_VIEW,
            actor=actor,
            tenant=r.tenant,
            patient_ref=r.report.work_item.patient_id,
            detail={"page": where, "review": r.pk, "report": r.report_id},
        )
        for r in requests
    )


def visible_request(user: User, request_id: int) -> ReviewRequest:
    """One request the user may see, else NotFound (missing, or another hospital's)."""
    found = requests_for(user).filter(pk=request_id).first()
    if found is None:
        raise NotFound("No such review request.")
    return found


def open_request_of(report: Report) -> ReviewRequest | None:
    return (
        ReviewRequest.objects.filter(tenant_id=report.tenant_id, report=report, state="open")
        .select_related("reviewer", "requested_by")
        .first()
    )


def reviewers_of(tenant: Tenant) -> list[User]:
    """The hospital's own radiologists: who can validate its preliminaries."""
    return list(
        User.objects.filter(
            memberships__tenant=tenant, memberships__role=Role.RADIOLOGIST, is_active=True
        ).order_by("display_name", "username")
    )


def reviewer_named(tenant: Tenant, username: str | None) -> User | None:
    """The reviewer a request names, checked to be one of the hospital's radiologists."""
    if not username:
        return None
    found = next((u for u in reviewers_of(tenant) if u.username == username), None)
    if found is None:
        raise ReviewError(
            f"{username} is not a radiologist of {tenant.name}; choose one of its radiologists "
            "or leave the reviewer empty to send it to all of them."
        )
    return found


# ---------------------------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------------------------


def is_tenant_admin(user: User, tenant: Tenant) -> bool:
    return Membership.objects.filter(user=user, tenant=tenant, role=Role.TENANT_ADMIN).exists()


def policy_of(tenant: Tenant) -> ReviewPolicy:
    return ReviewPolicy.objects.filter(tenant=tenant).first() or ReviewPolicy(tenant=tenant)


def set_policy(
    *,
    tenant: Tenant,
    user: User,
    actor: audit.Actor,
    requires_validation: bool,
    now: datetime | None = None,
) -> ReviewPolicy:
    """The hospital's admins decide whether reading groups' preliminaries need validation."""
    now = now or timezone.now()
    if not is_tenant_admin(user, tenant):
        raise NotFound("No such hospital.")
    policy, _ = ReviewPolicy.objects.update_or_create(
        tenant=tenant,
        defaults={
            "requires_validation": requires_validation,
            "updated_by": user,
            "updated_at": now,
        },
    )
    audit.record(
        action=AuditAction.SETTINGS_CHANGE,
        actor=actor,
        tenant=tenant,
        detail={"settings": "review", "requires_validation": requires_validation},
    )
    return policy


# ---------------------------------------------------------------------------------------------
# Requesting
# ---------------------------------------------------------------------------------------------


def request_review(
    *,
    version: ReportVersion,
    user: User,
    actor: audit.Actor,
    reviewer: User | None = None,
    message: str = "",
    now: datetime | None = None,
) -> ReviewRequest:
    """Send the report's current signed preliminary for validation (its author, or its signer)."""
    now = now or timezone.now()
    report = version.report
    item = reports._visible(user, report.work_item)

    def refuse(error: reports.ReportError, why: str) -> reports.ReportError:
        _record(
            AuditAction.REVIEW_REQUEST, None, item, actor, Outcome.FAILURE,
            version=version.number, why=why,
        )  # fmt: skip
        return error

    latest = reports.current(report)
    if version.status != Status.PRELIMINARY or latest is None or latest.pk != version.pk:
        raise refuse(
            reports.IllegalTransition("Only the current preliminary report can be validated."),
            "not prelim",
        )
    if report.versions.filter(status=Status.DRAFT).exists():
        raise refuse(
            reports.Conflict("This report has an unsigned revision; sign or discard it first."),
            "draft",
        )
    if user.pk not in (version.author_id, version.signed_by_id):
        raise refuse(
            reports.NotAllowed("Only the author of the preliminary can send it for review."),
            "not author",
        )
    if reviewer is not None and not ReviewPolicy.is_hospital_radiologist(
        report.tenant_id, reviewer
    ):
        raise refuse(ReviewError("The reviewer must be a radiologist of the hospital."), "reviewer")
    if reviewer is not None and reviewer.pk == user.pk:
        raise refuse(ReviewError("Choose someone else to validate your report."), "self")
    if len(message) > 2000:
        raise refuse(ReviewError("Keep the message under 2000 characters."), "message")
    try:
        with transaction.atomic():
            request = ReviewRequest.objects.create(
                tenant=report.tenant,
                report=report,
                version=version,
                requested_by=user,
                reviewer=reviewer,
                message=message.strip(),
                created_at=now,
            )
    except IntegrityError:
        raise refuse(
            reports.Conflict("This preliminary is already waiting for validation."), "open"
        ) from None
    _record(
        AuditAction.REVIEW_REQUEST, request, item, actor,
        reviewer=reviewer.pk if reviewer else None,
    )  # fmt: skip
    return request


def cancel(
    *, request: ReviewRequest, user: User, actor: audit.Actor, now: datetime | None = None
) -> ReviewRequest:
    """The author takes the request back (e.g. to revise before anyone validated it)."""
    now = now or timezone.now()
    item = request.report.work_item
    if request.requested_by_id != user.pk:
        _record(AuditAction.REVIEW_CANCEL, request, item, actor, Outcome.FAILURE, why="not author")
        raise reports.NotAllowed("Only who sent the report for review can cancel the request.")
    _decide(request, user, ReviewState.CANCELLED, now, comments="")
    _record(AuditAction.REVIEW_CANCEL, request, item, actor)
    return request


# ---------------------------------------------------------------------------------------------
# Deciding
# ---------------------------------------------------------------------------------------------


def _decide(
    request: ReviewRequest,
    user: User,
    state: str,
    now: datetime,
    *,
    comments: str,
    result: ReportVersion | None = None,
) -> None:
    """Close the still-open request, once; Conflict when someone else decided it first."""
    closed = ReviewRequest.objects.filter(
        pk=request.pk, tenant_id=request.tenant_id, state=ReviewState.OPEN
    ).update(state=state, decided_by=user, decided_at=now, comments=comments, result=result)
    if not closed:
        request.refresh_from_db()
        raise reports.Conflict(
            f"This review request is already {request.get_state_display().lower()}."
        )
    request.refresh_from_db()


def _check_decider(request: ReviewRequest, user: User, action: str, actor: audit.Actor) -> WorkItem:
    item = request.report.work_item
    if not request.may_be_decided_by(user):
        _record(action, request, item, actor, Outcome.FAILURE, why="not reviewer")
        if user.pk == request.version.author_id:
            raise reports.NotAllowed("You cannot validate your own report.")
        raise reports.NotAllowed("This review request is for another radiologist.")
    if not request.is_open:
        _record(action, request, item, actor, Outcome.FAILURE, why=request.state)
        raise reports.Conflict(
            f"This review request is already {request.get_state_display().lower()}."
        )
    return item


def validate(
    *,
    request: ReviewRequest,
    user: User,
    actor: audit.Actor,
    password: str,
    mfa_code: str | None = None,
    sections: dict[str, Any] | None = None,
    comments: str = "",
    now: datetime | None = None,
) -> ReportVersion:
    """The validator signs the preliminary as final: a new final version signed by them (their
    password again), the author kept. The work item is completed."""
    now = now or timezone.now()
    item = _check_decider(request, user, AuditAction.REVIEW_VALIDATE, actor)
    if not reports.verify_step_up(user, password=password, mfa_code=mfa_code):
        _record(AuditAction.REVIEW_VALIDATE, request, item, actor, Outcome.FAILURE, why="step-up")
        raise reports.StepUpFailed("The password is not correct; the report is not signed.")
    preliminary = request.version
    try:
        with transaction.atomic():
            final = reports.seal_final_of(
                preliminary, signer=user, actor=actor, item=item, sections=sections, now=now
            )
            _decide(
                request, user, ReviewState.VALIDATED, now, comments=comments.strip(), result=final
            )
    except reports.Conflict:
        _record(AuditAction.REVIEW_VALIDATE, request, item, actor, Outcome.FAILURE, why="race")
        raise
    _record(AuditAction.REVIEW_VALIDATE, request, item, actor, final=final.number)
    return final


def return_to_author(
    *,
    request: ReviewRequest,
    user: User,
    actor: audit.Actor,
    comments: str,
    now: datetime | None = None,
) -> ReviewRequest:
    """Send the preliminary back to its author with what to change."""
    now = now or timezone.now()
    item = _check_decider(request, user, AuditAction.REVIEW_RETURN, actor)
    if not comments.strip():
        _record(AuditAction.REVIEW_RETURN, request, item, actor, Outcome.FAILURE, why="no comment")
        raise ReviewError("Say what the author should change.")
    _decide(request, user, ReviewState.RETURNED, now, comments=comments.strip()[:4000])
    _record(AuditAction.REVIEW_RETURN, request, item, actor)
    return request
