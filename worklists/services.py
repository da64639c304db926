"""Writes to the worklist: items from ready studies, leased claims, SLA clocks, assignment.

Every change that a person makes is audited with them as the actor; the periodic jobs (lease
expiry, escalation, auto-assignment) are audited as the system. Each function is idempotent or
guarded by a conditional UPDATE, so two web processes, two workers or a retried task cannot
double-claim, double-create or double-escalate.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from studies.models import Study, StudyState
from tenants import audit, rls
from tenants.models import AuditAction, Membership, Outcome, ReadingAgreement, Role, Tenant, User

from . import eligibility
from .models import (
    OPEN_STATES,
    AutoAssignment,
    Decline,
    ItemState,
    PriorityClass,
    ReadingState,
    RoutingRule,
    StudyLink,
    WorkItem,
)

log = logging.getLogger(__name__)

# Built-in classes every tenant has; a tenant's own class with the same code replaces one.
BUILTIN_PRIORITIES = (
    ("stat", "STAT", 60, 10),
    ("urgent", "Urgent", 240, 20),
    ("routine", "Routine", 24 * 60, 30),
)
DEFAULT_PRIORITY = "routine"
# Modalities that are not images to read: a study's reading modality is its first other one.
NON_READING_MODALITIES = {"SR", "PR", "KO", "DOC", "REG", "SEG", "RWV", "OT"}


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.SKYLIGHT["CLAIM_LEASE_SECONDS"])


def ensure_builtin_priorities() -> None:
    """The built-in classes exist (made on first use; row-level security lets only system work
    write them, so a hospital's request makes them as such)."""
    have = set(PriorityClass.objects.filter(tenant=None).values_list("code", flat=True))
    if have >= {code for code, *_ in BUILTIN_PRIORITIES}:
        return
    with rls.system_work():
        for code, name, minutes, rank in BUILTIN_PRIORITIES:
            PriorityClass.objects.get_or_create(
                tenant=None,
                code=code,
                defaults={"name": name, "sla_minutes": minutes, "rank": rank},
            )


def priority_for(tenant: Tenant, code: str) -> PriorityClass:
    """The tenant's own class with this code, else the built-in one (routine when unknown)."""
    ensure_builtin_priorities()
    found = {
        (p.tenant_id is not None, p.code): p
        for p in PriorityClass.objects.filter(
            Q(tenant=tenant) | Q(tenant__isnull=True), code__in=[code, DEFAULT_PRIORITY]
        )
    }
    for key in ((True, code), (False, code), (True, DEFAULT_PRIORITY), (False, DEFAULT_PRIORITY)):
        if key in found:
            return found[key]
    raise PriorityClass.DoesNotExist(code)


def priorities_of(tenant: Tenant) -> list[PriorityClass]:
    """The classes a tenant can use: its own, and the built-in ones it did not replace."""
    ensure_builtin_priorities()
    own = list(PriorityClass.objects.filter(tenant=tenant))
    codes = {p.code for p in own}
    builtin = [p for p in PriorityClass.objects.filter(tenant__isnull=True) if p.code not in codes]
    return sorted(own + builtin, key=lambda p: (p.rank, p.code))


# ---------------------------------------------------------------------------------------------
# Items from ready studies
# ---------------------------------------------------------------------------------------------


def reading_modality(modalities: list[str]) -> str:
    for m in modalities:
        if m.upper() not in NON_READING_MODALITIES:
            return m.upper()
    return modalities[0].upper() if modalities else ""


def classify(tenant: Tenant, study: Study) -> tuple[str, str]:
    """(subspecialty, priority code) from the tenant's routing rules; the first rule that sets
    each output wins."""
    modalities = [m.upper() for m in study.modalities]
    body_part = (study.body_parts_examined.strip("\\").split("\\") or [""])[0]
    subspecialty, priority = "", ""
    for rule in RoutingRule.objects.filter(tenant=tenant):
        if not rule.matches(modalities, body_part, study.study_description):
            continue
        if rule.subspecialty and not subspecialty:
            subspecialty = rule.subspecialty
        if rule.priority_code and not priority:
            priority = rule.priority_code
    return subspecialty, priority or DEFAULT_PRIORITY


def item_key(study: Study) -> str:
    accession = study.accession_number.strip()
    return f"acc:{accession}" if accession else f"study:{study.study_instance_uid}"


@dataclass
class Ensured:
    item: WorkItem
    created: bool


def ensure_item(study_id: int, *, now: datetime | None = None) -> Ensured | None:
    """The work item of a ready study, created on first call. Safe to call any number of times
    from any number of processes; a study that is not (yet) ready gets none."""
    now = now or timezone.now()
    study = Study.objects.select_related("patient", "tenant").filter(pk=study_id).first()
    if study is None or study.state != StudyState.READY:
        return None
    link = StudyLink.objects.select_related("item").filter(study=study).first()
    if link is not None:
        return Ensured(link.item, False)
    tenant = study.tenant
    key = item_key(study)
    subspecialty, code = classify(tenant, study)
    priority = priority_for(tenant, code)
    arrived = study.first_received_at
    modality = reading_modality(study.modalities)
    sla = sla_minutes(tenant.pk, priority, modality, subspecialty, now)
    patient = study.patient
    try:
        with transaction.atomic():
            item, created = WorkItem.objects.get_or_create(
                tenant=tenant,
                key=key,
                defaults={
                    "study": study,
                    "patient": patient,
                    "accession_number": study.accession_number,
                    "patient_name": patient.patient_name,
                    "patient_name_search": patient.patient_name_search,
                    "patient_identifier": patient.patient_id,
                    "study_description": study.study_description,
                    "modality": modality,
                    "modalities": "\\".join(study.modalities),
                    "body_part": (study.body_parts_examined.strip("\\").split("\\") or [""])[0],
                    "subspecialty": subspecialty,
                    "priority": priority,
                    "priority_rank": priority.rank,
                    "arrived_at": arrived,
                    "sla_due_at": arrived + timedelta(minutes=sla),
                    "created_at": now,
                    "updated_at": now,
                },
            )
            StudyLink.objects.create(item=item, study=study)
            if not created:
                # Another study of the same accession joins the item; the list shows it.
                extra = [m for m in study.modalities if m not in item.modalities.split("\\")]
                if extra:
                    item.modalities = "\\".join([*item.modalities.split("\\"), *extra])
                    item.version = F("version") + 1
                    item.save(update_fields=["modalities", "version"])
                    item.refresh_from_db()
            audit.record(
                action=AuditAction.ITEM_CREATED,
                actor=audit.Actor.system(),
                tenant=tenant,
                study_instance_uid=study.study_instance_uid,
                patient_ref=patient.pk,
                detail={"item": item.pk, "joined": not created, "priority": priority.code},
            )
    except IntegrityError:
        # Another process linked this study at the same moment: theirs is the item.
        link = StudyLink.objects.select_related("item").get(study=study)
        return Ensured(link.item, False)
    return Ensured(item, created)


def sla_minutes(
    tenant_id: int, priority: PriorityClass, modality: str, subspecialty: str, now: datetime
) -> int:
    """The SLA of an item: the shortest a reading agreement in force sets for its class (see
    worklists/groupadmin/agreements.py), else the class's own."""
    from .groupadmin.agreements import sla_minutes_for

    contracted = sla_minutes_for(
        tenant_id=tenant_id,
        code=priority.code,
        modality=modality,
        subspecialty=subspecialty,
        day=timezone.localdate(now),
    )
    return contracted or priority.sla_minutes


def ensure_items_for_ready_studies(*, limit: int = 500) -> int:
    """The safety net behind the ``study_ready`` signal: every ready study has an item."""
    missing = list(
        Study.objects.filter(state=StudyState.READY, work_item_link__isnull=True)
        .order_by("first_ready_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    made = 0
    for study_id in missing:
        ensured = ensure_item(study_id)
        if ensured is not None and ensured.created:
            made += 1
            after_create(ensured.item)
    return made


def housekeeping(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic jobs, in one call (Celery beat, or runall's loop in the embedded mode)."""
    now = now or timezone.now()
    return {
        "items": ensure_items_for_ready_studies(),
        "expired": expire_leases(now=now),
        "escalated": escalate_overdue(now=now),
    }


def after_create(item: WorkItem) -> None:
    """Queue what a new item needs, and only that: its priors when the patient has other ready
    studies here, auto-assignment when a group reading for the tenant switched it on."""
    from studies.models import Study

    from . import tasks

    has_priors = (
        Study.objects.filter(
            tenant_id=item.tenant_id, patient_id=item.patient_id, state=StudyState.READY
        )
        .exclude(work_item_link__item=item)
        .exists()
    )
    if has_priors:
        transaction.on_commit(lambda: tasks.prefetch_priors.delay(item.pk))
    if AutoAssignment.objects.filter(
        enabled=True,
        group__is_active=True,
        group__agreements__tenant_id=item.tenant_id,
        group__agreements__is_active=True,
    ).exists():
        transaction.on_commit(lambda: tasks.auto_assign.delay(item.tenant_id))


# ---------------------------------------------------------------------------------------------
# Claims are leases
# ---------------------------------------------------------------------------------------------


class WorklistError(Exception):
    """A request that cannot be done; the message is safe to show (no patient data)."""

    status = 400


class NotVisible(WorklistError):
    status = 404


class Conflict(WorklistError):
    status = 409

    def __init__(self, message: str, holder: User | None = None, since: datetime | None = None):
        super().__init__(message)
        self.holder = holder
        self.since = since


class NotAllowed(WorklistError):
    status = 403


def _record(
    action: str,
    item: WorkItem,
    actor: audit.Actor,
    outcome: str = Outcome.SUCCESS,
    **detail: Any,
) -> None:
    audit.record(
        action=action,
        actor=actor,
        tenant=item.tenant,
        outcome=outcome,
        study_instance_uid=item.study.study_instance_uid,
        patient_ref=item.patient_id,
        detail={"item": item.pk, **detail},
    )


def visible_item(user: User, item_id: int) -> WorkItem:
    """The item if ``user`` may read it (or manage it as an admin), else NotVisible."""
    item = (
        WorkItem.objects.select_related("tenant", "priority", "study", "holder", "assigned_to")
        .filter(pk=item_id)
        .first()
    )
    if item is None:
        raise NotVisible("No such work item.")
    # A token kept to one hospital (tenants.auth) finds nothing of the others.
    scope = getattr(user, "token_tenant_id", None)
    if scope is not None and item.tenant_id != scope:
        raise NotVisible("No such work item.")
    readable = eligibility.may_read(user, item)
    if not (
        readable or can_manage(user, item) or _consulted(user, item) or _broken_glass(user, item)
    ):
        raise NotVisible("No such work item.")
    # Remembered for this request, so a claim that follows does not compute the coverage again.
    item._readable_by = user.pk if readable else None  # type: ignore[attr-defined]
    return item


def _consulted(user: User, item: WorkItem) -> bool:
    """An open consult lets its consultant see this one item, read-only: neither eligible nor a
    manager, they cannot claim, sign or manage it. Asked last, so readers pay nothing for it;
    imported here because reports is built on worklists, not the reverse."""
    from reports.collab.access import consults_item

    return consults_item(user, item.pk)


def _broken_glass(user: User, item: WorkItem) -> bool:
    """A hospital's own radiologist or admin who broke the glass for this item sees it, read-only,
    for a short time (tenants/auditlog/breakglass.py). Asked last, like consults."""
    from tenants.auditlog.breakglass import grants_item

    return grants_item(user, item.pk)


def can_manage(user: User, item: WorkItem) -> bool:
    """Group admins of a group reading for the item's tenant, and the tenant's admins."""
    if not user.is_active:
        return False
    if Membership.objects.filter(
        user=user, tenant_id=item.tenant_id, role=Role.TENANT_ADMIN
    ).exists():
        return True
    return ReadingAgreement.objects.filter(
        tenant_id=item.tenant_id,
        is_active=True,
        group__memberships__user=user,
        group__memberships__role=Role.GROUP_ADMIN,
    ).exists()


def claim(
    item: WorkItem, user: User, actor: audit.Actor, *, now: datetime | None = None
) -> WorkItem:
    """Take the item for reading. Exactly one of any number of simultaneous callers wins; the
    others get Conflict naming the holder and since when. Claiming an item you hold renews it."""
    now = now or timezone.now()
    known = getattr(item, "_readable_by", None) == user.pk
    if not known and not eligibility.may_read(user, item):
        _record(AuditAction.ITEM_CLAIM, item, actor, Outcome.FAILURE, why="not eligible")
        raise NotAllowed("You are not credentialed to read this study.")
    token = uuid.uuid4()
    free = Q(holder__isnull=True) | Q(lease_expires_at__lte=now) | Q(holder=user)
    # A preliminary report is finalised by its author or validated by the hospital, neither of
    # which needs the claim: the item is not there to be read again.
    unread = ~Q(reading_state=ReadingState.PRELIMINARY)
    won = WorkItem.objects.filter(Q(pk=item.pk, state__in=OPEN_STATES) & free & unread).update(
        holder=user,
        lease_token=token,
        lease_expires_at=now + lease_duration(),
        claimed_at=now,
        state=ItemState.IN_PROGRESS,
        reading_state=_claimed_state(),
        version=F("version") + 1,
        updated_at=now,
    )
    item.refresh_from_db()
    if not won:
        holder = item.holder if item.lease_is_live(now) else None
        _record(
            AuditAction.ITEM_CLAIM,
            item,
            actor,
            Outcome.FAILURE,
            why="held"
            if holder
            else item.reading_state
            if item.state in OPEN_STATES
            else item.state,
            holder=holder.pk if holder else None,
        )
        if holder is not None:
            raise Conflict(
                f"{holder} is reading this study (since {item.claimed_at:%H:%M}).",
                holder=holder,
                since=item.claimed_at,
            )
        if item.reading_state == ReadingState.PRELIMINARY and item.state in OPEN_STATES:
            raise Conflict(
                "This study has a preliminary report: its author finalises it, or the "
                "hospital validates it. Nobody claims it again."
            )
        raise Conflict(f"This item is {item.get_state_display().lower()}.")
    expires = item.lease_expires_at
    _record(AuditAction.ITEM_CLAIM, item, actor, lease_expires=expires and expires.isoformat())
    return item


def _claimed_state() -> Any:
    # Unread becomes claimed; a preliminary stays preliminary while someone finalises it.
    from django.db.models import Case, Value, When

    return Case(
        When(reading_state=ReadingState.UNREAD, then=Value(ReadingState.CLAIMED)),
        default=F("reading_state"),
    )


def heartbeat(
    item: WorkItem, user: User, lease_token: str, *, now: datetime | None = None
) -> WorkItem:
    """Extend the holder's lease. A lease that ran out and was taken is lost (Conflict)."""
    now = now or timezone.now()
    try:
        token = uuid.UUID(str(lease_token))
    except ValueError:
        raise WorklistError("The lease token is not a valid token.") from None
    renewed = WorkItem.objects.filter(
        pk=item.pk, holder=user, lease_token=token, state__in=OPEN_STATES
    ).update(lease_expires_at=now + lease_duration(), updated_at=now)
    item.refresh_from_db()
    if not renewed:
        raise Conflict("Your claim on this study has ended; claim it again to go on reading.")
    return item


def release(
    item: WorkItem,
    user: User,
    actor: audit.Actor,
    *,
    reason: str = "",
    now: datetime | None = None,
) -> WorkItem:
    """Give the item back. The holder may always; a manager may with a reason."""
    now = now or timezone.now()
    as_manager = item.holder_id != user.pk
    if as_manager:
        if not can_manage(user, item):
            raise NotAllowed("Only the radiologist holding this study or an admin can release it.")
        if not reason.strip():
            raise WorklistError("Say why you release another radiologist's claim.")
    previous = item.holder_id
    _free(item, now)
    _record(
        AuditAction.ITEM_RELEASE,
        item,
        actor,
        previous_holder=previous,
        by_admin=as_manager,
        reason=reason.strip()[:200],
    )
    return item


def _freed(now: datetime) -> dict[str, Any]:
    """The UPDATE that ends a claim: back on the list, unread again if it was only claimed."""
    return {
        "holder": None,
        "lease_token": None,
        "lease_expires_at": None,
        "claimed_at": None,
        "state": ItemState.SCHEDULED,
        "reading_state": _unclaimed_state(),
        "version": F("version") + 1,
        "updated_at": now,
    }


def _free(item: WorkItem, now: datetime) -> None:
    WorkItem.objects.filter(pk=item.pk).update(**_freed(now))
    item.refresh_from_db()


def _unclaimed_state() -> Any:
    from django.db.models import Case, Value, When

    return Case(
        When(reading_state=ReadingState.CLAIMED, then=Value(ReadingState.UNREAD)),
        default=F("reading_state"),
    )


def reassign(
    item: WorkItem,
    admin: User,
    to_user: User,
    actor: audit.Actor,
    *,
    reason: str,
    now: datetime | None = None,
) -> WorkItem:
    """Move the item to another eligible radiologist, who holds it with a fresh lease."""
    now = now or timezone.now()
    if not can_manage(admin, item):
        raise NotAllowed("Only an admin can reassign a study.")
    if not reason.strip():
        raise WorklistError("Say why you reassign this study.")
    if not eligibility.may_read(to_user, item):
        raise WorklistError(f"{to_user} is not credentialed to read this study.")
    previous = item.holder_id
    WorkItem.objects.filter(pk=item.pk).update(
        holder=to_user,
        lease_token=uuid.uuid4(),
        lease_expires_at=now + lease_duration(),
        claimed_at=now,
        assigned_to=to_user,
        assigned_at=now,
        state=ItemState.IN_PROGRESS,
        reading_state=_claimed_state(),
        version=F("version") + 1,
        updated_at=now,
    )
    item.refresh_from_db()
    _record(
        AuditAction.ITEM_REASSIGN,
        item,
        actor,
        previous_holder=previous,
        to_user=to_user.pk,
        reason=reason.strip()[:200],
    )
    return item


def expire_leases(*, now: datetime | None = None) -> int:
    """Return items whose lease ran out to the list (periodic). Visibility does not wait for
    this: a lapsed lease is claimable at once; this tidies the row and audits the expiry."""
    now = now or timezone.now()
    expired = list(
        WorkItem.objects.filter(holder__isnull=False, lease_expires_at__lte=now).select_related(
            "tenant", "study"
        )[:1000]
    )
    count = 0
    for item in expired:
        lapsed = WorkItem.objects.filter(
            pk=item.pk, holder_id=item.holder_id, lease_token=item.lease_token
        ).update(**_freed(now))
        if lapsed:
            count += 1
            _record(
                AuditAction.ITEM_LEASE_EXPIRED,
                item,
                audit.Actor.system(),
                previous_holder=item.holder_id,
            )
    return count


# ---------------------------------------------------------------------------------------------
# Reading sub-states (driven by the reports issue)
# ---------------------------------------------------------------------------------------------


def mark_read(item: WorkItem, state: str, *, now: datetime | None = None) -> WorkItem:
    """Preliminary or final. Final completes the item (UPS: completed) and frees the claim."""
    now = now or timezone.now()
    if state == ReadingState.PRELIMINARY:
        WorkItem.objects.filter(pk=item.pk).update(
            reading_state=ReadingState.PRELIMINARY,
            preliminary_at=item.preliminary_at or now,
            version=F("version") + 1,
            updated_at=now,
        )
    elif state == ReadingState.FINAL:
        WorkItem.objects.filter(pk=item.pk).update(
            reading_state=ReadingState.FINAL,
            state=ItemState.COMPLETED,
            final_at=now,
            preliminary_at=item.preliminary_at or now,
            lease_token=None,
            lease_expires_at=None,
            version=F("version") + 1,
            updated_at=now,
        )
    else:
        raise WorklistError(f"Unknown reading state {state!r}.")
    item.refresh_from_db()
    return item


def cancel(item: WorkItem, user: User, actor: audit.Actor, *, reason: str) -> WorkItem:
    if not can_manage(user, item):
        raise NotAllowed("Only an admin can cancel a work item.")
    if not reason.strip():
        raise WorklistError("Say why the work item is canceled.")
    WorkItem.objects.filter(pk=item.pk, state__in=OPEN_STATES).update(
        state=ItemState.CANCELED,
        holder=None,
        lease_token=None,
        lease_expires_at=None,
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    item.refresh_from_db()
    _record(AuditAction.ITEM_RELEASE, item, actor, canceled=True, reason=reason.strip()[:200])
    return item


# ---------------------------------------------------------------------------------------------
# SLA clocks
# ---------------------------------------------------------------------------------------------


def pause_sla(
    item: WorkItem, user: User, actor: audit.Actor, *, reason: str, now: datetime | None = None
) -> WorkItem:
    now = now or timezone.now()
    if not (item.holder_id == user.pk or can_manage(user, item)):
        raise NotAllowed("Only the radiologist holding this study or an admin can pause its clock.")
    if not reason.strip():
        raise WorklistError("Say why the clock is paused (e.g. waiting for priors).")
    paused = WorkItem.objects.filter(pk=item.pk, sla_paused_at__isnull=True).update(
        sla_paused_at=now,
        sla_pause_reason=reason.strip()[:200],
        version=F("version") + 1,
        updated_at=now,
    )
    item.refresh_from_db()
    if not paused:
        raise Conflict("The clock is already paused.")
    _record(AuditAction.ITEM_SLA_PAUSE, item, actor, reason=reason.strip()[:200])
    return item


def resume_sla(
    item: WorkItem, user: User, actor: audit.Actor, *, now: datetime | None = None
) -> WorkItem:
    """Restart the clock; the deadline moves by the time it was paused."""
    now = now or timezone.now()
    if not (item.holder_id == user.pk or can_manage(user, item)):
        raise NotAllowed(
            "Only the radiologist holding this study or an admin can resume its clock."
        )
    if item.sla_paused_at is None:
        raise Conflict("The clock is not paused.")
    paused_for = now - item.sla_paused_at
    resumed = WorkItem.objects.filter(pk=item.pk, sla_paused_at=item.sla_paused_at).update(
        sla_due_at=F("sla_due_at") + paused_for,
        sla_paused_at=None,
        sla_pause_reason="",
        version=F("version") + 1,
        updated_at=now,
    )
    item.refresh_from_db()
    if not resumed:
        raise Conflict("The clock was resumed by someone else.")
    _record(
        AuditAction.ITEM_SLA_RESUME, item, actor, paused_seconds=int(paused_for.total_seconds())
    )
    return item


def escalate_overdue(*, now: datetime | None = None) -> int:
    """Tell the group leads about overdue items, once per item (periodic)."""
    from django.core.mail import send_mail

    now = now or timezone.now()
    overdue = list(
        WorkItem.objects.filter(
            state__in=OPEN_STATES,
            sla_paused_at__isnull=True,
            sla_due_at__lt=now,
            escalated_at__isnull=True,
        )
        # The reading deadline is met by the preliminary report; its validation is the
        # hospital's (the review queue), not the reading group's.
        .exclude(reading_state=ReadingState.PRELIMINARY)
        .select_related("tenant", "study", "priority")[:500]
    )
    count = 0
    for item in overdue:
        if not WorkItem.objects.filter(pk=item.pk, escalated_at__isnull=True).update(
            escalated_at=now, version=F("version") + 1
        ):
            continue
        count += 1
        leads = list(
            User.objects.filter(
                is_active=True,
                memberships__role=Role.GROUP_ADMIN,
                memberships__group__agreements__tenant=item.tenant,
                memberships__group__agreements__is_active=True,
            )
            .exclude(email="")
            .distinct()
            .values_list("email", flat=True)
        )
        _record(AuditAction.ITEM_ESCALATE, item, audit.Actor.system(), notified=len(leads))
        if leads:
            # Identifiers only: no patient data leaves by mail.
            send_mail(
                subject=f"Skylight: work item {item.pk} at {item.tenant.name} is overdue",
                message=(
                    f"Work item {item.pk} ({item.priority.name}, {item.modality}) at "
                    f"{item.tenant.name} passed its SLA deadline at {item.sla_due_at:%Y-%m-%d %H:%M} "
                    "UTC. Open the worklist to reassign it."
                ),
                from_email=None,
                recipient_list=leads,
                fail_silently=True,
            )
    return count


# ---------------------------------------------------------------------------------------------
# Auto-assignment
# ---------------------------------------------------------------------------------------------


def auto_assign(tenant_id: int, *, now: datetime | None = None) -> int:
    """Offer the tenant's unassigned open items, most urgent first, to eligible radiologists of
    groups that switched auto-assignment on, by subspecialty fit and current load."""
    now = now or timezone.now()
    settings_by_group = {
        a.group_id: a
        for a in AutoAssignment.objects.filter(
            enabled=True,
            group__is_active=True,
            group__agreements__tenant_id=tenant_id,
            group__agreements__is_active=True,
        )
    }
    if not settings_by_group:
        return 0
    readers = list(
        User.objects.filter(
            is_active=True,
            memberships__group_id__in=list(settings_by_group),
            memberships__role=Role.RADIOLOGIST,
        )
        .distinct()
        .order_by("id")
    )
    if not readers:
        return 0
    group_of = dict(
        Membership.objects.filter(
            user__in=readers, group_id__in=list(settings_by_group), role=Role.RADIOLOGIST
        ).values_list("user_id", "group_id")
    )
    readers = _on_shift(readers, group_of, now)
    if not readers:
        return 0
    coverage = {u.pk: eligibility.coverage(u, now.date()) for u in readers}
    load = dict(
        WorkItem.objects.filter(state__in=OPEN_STATES)
        .filter(Q(assigned_to__in=readers) | Q(holder__in=readers))
        .values("assigned_to")
        .annotate(n=Count("id"))
        .values_list("assigned_to", "n")
    )
    pending = list(
        WorkItem.objects.filter(
            tenant_id=tenant_id,
            state=ItemState.SCHEDULED,
            assigned_to__isnull=True,
            holder__isnull=True,
        )
        .exclude(reading_state=ReadingState.PRELIMINARY)
        .select_related("priority", "tenant", "study")
        .order_by("priority_rank", "sla_due_at")[:200]
    )
    declined: dict[int, set[int]] = {}
    for item_id, user_id in Decline.objects.filter(item__in=pending).values_list(
        "item_id", "user_id"
    ):
        declined.setdefault(item_id, set()).add(user_id)
    assigned = 0
    for item in pending:
        candidates = []
        for user in readers:
            limit = settings_by_group[group_of[user.pk]].max_open_per_reader
            if user.pk in declined.get(item.pk, set()) or load.get(user.pk, 0) >= limit:
                continue
            if not any(c.covers(item) for c in coverage[user.pk]):
                continue
            # A subspecialist first for a subspecialty item; then the least loaded.
            fit = 0 if item.subspecialty and _holds_subspecialty(coverage[user.pk], item) else 1
            candidates.append((fit, load.get(user.pk, 0), user.pk, user))
        if not candidates:
            continue
        user = min(candidates)[3]
        if WorkItem.objects.filter(
            pk=item.pk, assigned_to__isnull=True, holder__isnull=True
        ).update(assigned_to=user, assigned_at=now, version=F("version") + 1, updated_at=now):
            load[user.pk] = load.get(user.pk, 0) + 1
            assigned += 1
            item.assigned_to = user
            _record(AuditAction.ITEM_ASSIGN, item, audit.Actor.system(), to_user=user.pk)
    return assigned


def _on_shift(readers: list[User], group_of: dict[int, int], now: datetime) -> list[User]:
    """A group that keeps a roster (any shift at all) has its items offered only to members on
    shift now; a group without one offers them to every member."""
    from .models import Shift

    groups = set(group_of.values())
    rostered = set(
        Shift.objects.filter(group_id__in=groups).values_list("group_id", flat=True).distinct()
    )
    if not rostered:
        return readers
    on = set(
        Shift.objects.filter(
            group_id__in=rostered, starts_at__lte=now, ends_at__gt=now
        ).values_list("group_id", "user_id")
    )
    return [u for u in readers if group_of[u.pk] not in rostered or (group_of[u.pk], u.pk) in on]


def _holds_subspecialty(clauses: list[eligibility.Clause], item: WorkItem) -> bool:
    return any(
        c.subspecialties is not None and item.subspecialty in c.subspecialties
        for c in clauses
        if c.tenant_id == item.tenant_id
    )


def decline(
    item: WorkItem, user: User, actor: audit.Actor, *, reason: str, now: datetime | None = None
) -> WorkItem:
    """Turn down an item assigned to you; it goes to someone else and never back to you."""
    now = now or timezone.now()
    if item.assigned_to_id != user.pk:
        raise WorklistError("Only the radiologist this study is assigned to can decline it.")
    if not reason.strip():
        raise WorklistError("Say why you decline this study.")
    with transaction.atomic():
        Decline.objects.get_or_create(item=item, user=user, defaults={"reason": reason[:200]})
        WorkItem.objects.filter(pk=item.pk, assigned_to=user).update(
            assigned_to=None, assigned_at=None, version=F("version") + 1, updated_at=now
        )
        if item.holder_id == user.pk:
            _free(item, now)
        _record(AuditAction.ITEM_DECLINE, item, actor, reason=reason.strip()[:200])
    item.refresh_from_db()
    from . import tasks

    transaction.on_commit(lambda: tasks.auto_assign.delay(item.tenant_id))
    return item


def set_priority(
    item: WorkItem, user: User, actor: audit.Actor, *, code: str, clinical_question: str | None
) -> WorkItem:
    """A hospital (or group) admin changes the class; the deadline follows from arrival."""
    if not can_manage(user, item):
        raise NotAllowed("Only an admin can change a study's priority.")
    priority = priority_for(item.tenant, code)
    if priority.code != code:
        raise WorklistError(f"This hospital has no priority class {code!r}.")
    changes: dict[str, Any] = {
        "priority": priority,
        "priority_rank": priority.rank,
        "sla_due_at": item.arrived_at
        + timedelta(
            minutes=sla_minutes(
                item.tenant_id, priority, item.modality, item.subspecialty, timezone.now()
            )
        ),
        "version": F("version") + 1,
        "updated_at": timezone.now(),
    }
    if clinical_question is not None:
        changes["clinical_question"] = clinical_question.strip()[:2000]
    WorkItem.objects.filter(pk=item.pk).update(**changes)
    item.refresh_from_db()
    _record(AuditAction.ITEM_PRIORITY, item, actor, priority=priority.code)
    return item
