"""Writes of critical results: flag, communicate, acknowledge, escalate.

- A radiologist who may read the item flags a finding critical with an ACR category; it is due
  for acknowledgement within the hospital's limit for that category.
- Each communication is recorded (who was told, how, when, by whom). A phone call or a talk in
  person whose recipient confirmed (read back) acknowledges at once; a secure link carries a
  single-purpose token with which the recipient acknowledges themselves.
- Acknowledging twice changes nothing: the first acknowledgement stands (conditional UPDATE).
- ``escalate(now)`` escalates each overdue, unacknowledged result exactly once, however often
  and from however many workers it runs (conditional UPDATE on ``escalated_at``), then notifies
  the hospital's escalation contacts and admins.

Every step writes an audit row; texts that leave Skylight (e-mails, notifications) name no
patient, only the hospital, the modality and the category.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.urls import reverse
from django.utils import timezone

from tenants import audit, rls
from tenants.models import AuditAction, Membership, Outcome, ReadingAgreement, Role, Tenant, User
from worklists import eligibility
from worklists import services as worklist
from worklists.models import WorkItem

from ..collab import services as collab
from ..collab.models import NotificationKind
from ..models import Report
from .models import (
    Category,
    CommunicationMethod,
    CriticalCommunication,
    CriticalResult,
    CriticalSettings,
)

log = logging.getLogger(__name__)

CriticalError = worklist.WorklistError
NotFound = worklist.NotVisible
NotAllowed = worklist.NotAllowed

MAX_FINDING = 4000


def settings_for(tenant: Tenant) -> CriticalSettings:
    """The hospital's settings; the defaults (60 min / 6 h / 3 days) until it sets its own."""
    found, _ = CriticalSettings.objects.get_or_create(tenant=tenant)
    return found


def _words(critical: CriticalResult, item: WorkItem) -> str:
    """A critical result in words without patient data."""
    modality = item.modality or "imaging"
    return f"a category {critical.category} critical result on a {modality} study of {item.tenant.name}"


def ack_path(token: str) -> str:
    return reverse("reports:critical:ack", args=[token])


def visible_critical(user: User, critical_id: int) -> CriticalResult:
    """A critical result of an item the user may see, else NotFound (missing or not theirs)."""
    critical = CriticalResult.objects.filter(pk=critical_id).first()
    if critical is None:
        raise NotFound("No such critical result.")
    try:
        critical.work_item = worklist.visible_item(user, critical.work_item_id)
    except worklist.NotVisible:
        raise NotFound("No such critical result.") from None
    return critical


def _may_act(user: User, item: WorkItem) -> bool:
    """Readers of the item and its managers (a consultant only looks)."""
    return eligibility.may_read(user, item) or worklist.can_manage(user, item)


def flag(
    *,
    item: WorkItem,
    user: User,
    actor: audit.Actor,
    category: int,
    finding: str,
    recipient: str = "",
    now: datetime | None = None,
) -> CriticalResult:
    now = now or timezone.now()
    item = worklist.visible_item(user, item.pk)
    if not eligibility.may_read(user, item):
        worklist._record(AuditAction.CRITICAL_FLAG, item, actor, Outcome.FAILURE, why="reader")
        raise NotAllowed("Only a radiologist who may read this study can flag a critical result.")
    if category not in Category.values:
        raise CriticalError("The ACR category is 1 (minutes), 2 (hours) or 3 (days).")
    finding = (finding or "").strip()
    if not finding:
        raise CriticalError("Describe the critical finding.")
    if len(finding) > MAX_FINDING:
        raise CriticalError(f"The finding is longer than {MAX_FINDING} characters.")
    limit = settings_for(item.tenant).limit(category)
    with transaction.atomic():
        critical = CriticalResult.objects.create(
            tenant=item.tenant, work_item=item, study=item.study,
            report=Report.objects.filter(work_item=item).first(), category=category,
            finding=finding, recipient=(recipient or "").strip()[:200], flagged_by=user,
            flagged_at=now, due_at=now + limit,
        )  # fmt: skip
        worklist._record(
            AuditAction.CRITICAL_FLAG, item, actor, critical=critical.pk, category=category,
            due_at=critical.due_at.isoformat(),
        )  # fmt: skip
    return critical


@dataclass
class Communicated:
    communication: CriticalCommunication
    # The acknowledgement link's path, for a secure link only: shown once, never stored.
    ack_path: str | None


def communicate(
    *,
    critical: CriticalResult,
    user: User,
    actor: audit.Actor,
    method: str,
    recipient_name: str,
    recipient_role: str = "",
    recipient_user: User | None = None,
    recipient_contact: str = "",
    note: str = "",
    confirmed: bool = False,
    now: datetime | None = None,
) -> Communicated:
    """Record that someone was told. ``confirmed`` (phone or in person: they read it back)
    acknowledges; a secure link makes a token and sends it to the recipient's e-mail."""
    now = now or timezone.now()
    critical = visible_critical(user, critical.pk)
    item = critical.work_item
    if not _may_act(user, item):
        raise NotAllowed("Only the study's radiologists and the hospital's admins record this.")
    if method not in CommunicationMethod.values:
        raise CriticalError("How was it communicated: phone, in_person, message or secure_link?")
    recipient_name = (recipient_name or "").strip() or (
        str(recipient_user) if recipient_user else ""
    )
    if not recipient_name:
        raise CriticalError("Name the person who was told.")
    if confirmed and method not in (CommunicationMethod.PHONE, CommunicationMethod.IN_PERSON):
        raise CriticalError("Only a call or a talk in person is confirmed on the spot.")
    email = (recipient_contact or "").strip() or (recipient_user.email if recipient_user else "")
    token = None
    if method == CommunicationMethod.SECURE_LINK:
        token = secrets.token_urlsafe(32)
    with transaction.atomic():
        communication = CriticalCommunication.objects.create(
            tenant=critical.tenant, critical=critical, recipient_user=recipient_user,
            recipient_name=recipient_name[:200], recipient_role=(recipient_role or "")[:100],
            recipient_contact=email[:254], method=method, note=note or "", communicated_at=now,
            communicated_by=user,
            token_hash=CriticalCommunication.hash_token(token) if token else "",
        )  # fmt: skip
        worklist._record(
            AuditAction.CRITICAL_COMMUNICATE, item, actor, critical=critical.pk,
            communication=communication.pk, method=method, confirmed=confirmed,
        )  # fmt: skip
        if token is not None:
            link = ack_path(token)
            text = f"Please acknowledge {_words(critical, item)}."
            if recipient_user is not None:
                collab.notify(
                    user=recipient_user, tenant=critical.tenant, kind=NotificationKind.CRITICAL,
                    text=text, link=link, key=f"critical-link:{communication.pk}", now=now,
                )  # fmt: skip
            elif "@" in email:
                transaction.on_commit(
                    lambda: collab.email(email, "Critical result to acknowledge", text, link)
                )
        if confirmed:
            _acknowledge(critical, communication, actor, name=recipient_name, user=None, now=now)
    return Communicated(communication, ack_path(token) if token else None)


def by_token(token: str) -> CriticalCommunication | None:
    """The communication whose link carries this token, or None."""
    if not token or len(token) > 100:
        return None
    return (
        CriticalCommunication.objects.select_related(
            "critical", "critical__work_item", "critical__flagged_by", "tenant"
        )
        .filter(token_hash=CriticalCommunication.hash_token(token))
        .first()
    )


def _acknowledge(
    critical: CriticalResult,
    communication: CriticalCommunication,
    actor: audit.Actor,
    *,
    name: str,
    user: User | None,
    now: datetime,
) -> bool:
    """Acknowledge once. Returns whether this call did (False: it had been already)."""
    first = CriticalResult.objects.filter(pk=critical.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now,
        acknowledged_via=communication,
        acknowledged_name=(name or communication.recipient_name)[:200],
        acknowledged_by=user,
    )
    item = critical.work_item
    worklist._record(
        AuditAction.CRITICAL_ACKNOWLEDGE, item, actor, critical=critical.pk,
        communication=communication.pk, first=bool(first),
    )  # fmt: skip
    if first:
        collab.notify(
            user=critical.flagged_by, tenant=critical.tenant, kind=NotificationKind.CRITICAL,
            text=f"Acknowledged: {_words(critical, item)}.",
            link=reverse("worklists:item", args=[item.pk]), key=f"critical-ack:{critical.pk}",
            now=now,
        )  # fmt: skip
    critical.refresh_from_db()
    return bool(first)


def open_link(token: str) -> CriticalCommunication | None:
    """The communication an acknowledgement link's token names, or None; and the request's
    database context narrowed to its tenant (tenants/rls.py). The token is the key: which tenant
    it belongs to is only known once it is found, so the look-up itself is system work."""
    rls.use_all_tenants()
    communication = by_token(token)
    if communication is None:
        rls.clear()
        return None
    rls.use_tenants([communication.tenant_id])
    return communication


def acknowledge_by_link(
    *, token: str, actor: audit.Actor, name: str = "", now: datetime | None = None
) -> tuple[CriticalResult, bool]:
    """The recipient acknowledges with their link. Idempotent: (result, whether this did)."""
    now = now or timezone.now()
    communication = by_token(token)
    if communication is None:
        raise NotFound("This acknowledgement link is not valid.")
    critical = communication.critical
    user = actor.user if actor.user is not None and actor.user.is_authenticated else None
    with transaction.atomic():
        first = _acknowledge(
            critical, communication, actor, name=(name or "").strip(), user=user, now=now
        )
    return critical, first


# ---------------------------------------------------------------------------------------------
# Escalation
# ---------------------------------------------------------------------------------------------


def _admins(tenant: Tenant) -> list[User]:
    return list(
        User.objects.filter(
            is_active=True, memberships__tenant=tenant, memberships__role=Role.TENANT_ADMIN
        ).distinct()
    )


def escalate(*, now: datetime | None = None) -> int:
    """Escalate every overdue, unacknowledged critical result once. Returns how many this run
    escalated (0 when another run got there first)."""
    now = now or timezone.now()
    due = list(
        CriticalResult.objects.filter(
            acknowledged_at__isnull=True, escalated_at__isnull=True, due_at__lte=now
        ).values_list("id", flat=True)[:500]
    )
    escalated = 0
    for critical_id in due:
        with transaction.atomic():
            won = CriticalResult.objects.filter(
                pk=critical_id, acknowledged_at__isnull=True, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not won:
                continue
            critical = CriticalResult.objects.select_related(
                "work_item", "work_item__tenant", "work_item__study", "tenant", "flagged_by"
            ).get(pk=critical_id)
            _tell_escalation(critical, now)
            escalated += 1
    return escalated


def _tell_escalation(critical: CriticalResult, now: datetime) -> None:
    item = critical.work_item
    contacts = settings_for(critical.tenant).escalation_contacts or []
    text = (
        f"Not acknowledged within {_duration(critical.limit())}: {_words(critical, item)}. "
        "Make sure the referring physician is told."
    )
    link = reverse("reports:critical:dashboard")
    told: set[int] = set()
    for user in [*_admins(critical.tenant), critical.flagged_by]:
        if user.pk in told:
            continue
        told.add(user.pk)
        collab.notify(
            user=user, tenant=critical.tenant, kind=NotificationKind.CRITICAL_ESCALATION,
            text=text, link=link, key=f"critical-escalation:{critical.pk}", now=now,
        )  # fmt: skip
    addresses = [str(c.get("email")) for c in contacts if isinstance(c, dict) and c.get("email")]
    for address in addresses:
        transaction.on_commit(
            lambda a=address: collab.email(a, "Critical result not acknowledged", text, link)  # type: ignore[misc]
        )
    worklist._record(
        AuditAction.CRITICAL_ESCALATE, item, audit.Actor.system(), critical=critical.pk,
        notified_users=sorted(told), contacts=len(addresses),
    )  # fmt: skip


def _duration(limit: Any) -> str:
    minutes = int(limit.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    if minutes < 48 * 60:
        return f"{minutes // 60} hours"
    return f"{minutes // (24 * 60)} days"


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def open_for(user: User, *, now: datetime | None = None) -> QuerySet[CriticalResult]:
    """Unacknowledged critical results the user looks after: all of the hospitals where they are
    an admin or a staff radiologist, and those of items they may read for other hospitals.
    Escalated first, then by how soon they are due."""
    now = now or timezone.now()
    staff = Membership.objects.filter(
        user=user, tenant__isnull=False, role__in=[Role.TENANT_ADMIN, Role.RADIOLOGIST]
    ).values("tenant_id")
    managed = ReadingAgreement.objects.filter(
        is_active=True, group__memberships__user=user, group__memberships__role=Role.GROUP_ADMIN
    ).values("tenant_id")
    readable = WorkItem.objects.filter(
        eligibility.visible_q(eligibility.coverage(user, now.date()))
    ).values("id")
    return (
        CriticalResult.objects.filter(acknowledged_at__isnull=True)
        .filter(Q(tenant_id__in=staff) | Q(tenant_id__in=managed) | Q(work_item_id__in=readable))
        .select_related("tenant", "work_item", "flagged_by")
        .annotate(
            escalated_first=Case(
                When(escalated_at__isnull=False, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("escalated_first", "due_at", "id")
    )


def of_item(item: WorkItem) -> list[CriticalResult]:
    return list(
        CriticalResult.objects.filter(tenant=item.tenant, work_item=item)
        .select_related("flagged_by", "acknowledged_via")
        .prefetch_related("communications__communicated_by")
        .order_by("-flagged_at", "-id")
    )
