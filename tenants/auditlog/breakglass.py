"""Break-glass: a hospital's own radiologist or admin opens one work item their privileges do not
cover, in an emergency, by giving a reason.

The fence, deliberately small:
- **who**: a member of the item's own hospital with role radiologist or tenant admin. Reading-group
  radiologists are not included: their access is the contract (agreement, privilege, licence),
  and a gap in it is for their group admin to fix, not to bypass.
- **what**: one work item (its study), **read-only** — like a consult, break-glass makes the item
  visible; it does not make the user eligible to claim, report or sign it.
- **how long**: ``BREAK_GLASS_MINUTES`` (default 60), then it lapses by itself.
- **trace**: an audit row BREAK_GLASS in the hospital's log (the grant's id, never the reason,
  which may describe the patient) and an e-mail to every admin of the hospital naming who, which
  work item and a link to the audit page. The reason is on the grant row, shown in the audit page.

``visible_item`` (worklists.services) asks ``grants_item`` last, after its own rules, so readers
pay nothing for this.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, BreakGlass, Membership, Role, User

if TYPE_CHECKING:
    from worklists.models import WorkItem

log = logging.getLogger(__name__)

ROLES = (Role.RADIOLOGIST, Role.TENANT_ADMIN)
REASON_MIN, REASON_MAX = 10, 500


class Refused(ValueError):
    """The reason is not acceptable; the message says why."""


def minutes() -> int:
    return int(getattr(settings, "BREAK_GLASS_MINUTES", 60))


def may_break_glass(user: User, tenant_id: int) -> bool:
    return (
        user.is_active
        and Membership.objects.filter(user=user, tenant_id=tenant_id, role__in=ROLES).exists()
    )


def grants_item(user: User, item_id: int, now: datetime | None = None) -> bool:
    """Whether a live break-glass lets ``user`` see this work item (read-only)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return BreakGlass.objects.filter(
        user=user, work_item_id=item_id, expires_at__gt=now or timezone.now()
    ).exists()


def item_for(user: User, item_id: int) -> WorkItem | None:
    """The work item, if ``user`` may break glass for it; None otherwise (then: not found)."""
    from worklists.models import WorkItem

    item = WorkItem.objects.select_related("tenant", "study").filter(pk=item_id).first()
    if item is None or not may_break_glass(user, item.tenant_id):
        return None
    return item


def open_item(
    user: User, item_id: int, reason: str, actor: audit.Actor, *, now: datetime | None = None
) -> BreakGlass | None:
    """Grant ``user`` read access to the work item for a short time. None: no such item for this
    user (not found). Refused: no usable reason."""
    reason = " ".join(reason.split())
    if len(reason) < REASON_MIN:
        raise Refused(
            f"Say why you need this study (at least {REASON_MIN} characters): it is shown to "
            "your hospital's admins."
        )
    if len(reason) > REASON_MAX:
        raise Refused(f"Keep the reason under {REASON_MAX} characters.")
    item = item_for(user, item_id)
    if item is None:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        grant = BreakGlass.objects.create(
            tenant=item.tenant,
            user=user,
            work_item_id=item.pk,
            study_instance_uid=item.study.study_instance_uid,
            reason=reason,
            granted_at=now,
            expires_at=now + timedelta(minutes=minutes()),
        )
        audit.record(
            action=AuditAction.BREAK_GLASS,
            actor=actor,
            tenant=item.tenant,
            study_instance_uid=item.study.study_instance_uid,
            patient_ref=item.patient_id,
            detail={"grant": grant.pk, "item": item.pk, "minutes": minutes()},
        )
        transaction.on_commit(lambda: _tell_admins(grant))
    return grant


def _tell_admins(grant: BreakGlass) -> None:
    """Mail every admin of the hospital: who, which work item, until when. No patient data."""
    admins = list(
        User.objects.filter(
            is_active=True,
            memberships__tenant_id=grant.tenant_id,
            memberships__role=Role.TENANT_ADMIN,
        )
        .exclude(email="")
        .distinct()
        .values_list("email", flat=True)
    )
    if not admins:
        return
    root = getattr(settings, "PUBLIC_URL", "") or ""
    try:
        send_mail(
            subject=f"Skylight: break-glass access at {grant.tenant.name}",
            message=(
                f"{grant.user} opened work item {grant.work_item_id} at {grant.tenant.name} by "
                f"break-glass at {grant.granted_at:%Y-%m-%d %H:%M} UTC, until "
                f"{grant.expires_at:%H:%M} UTC (access {grant.pk}). The reason they gave is in the "
                f"audit log:\n\n{root}/audit/\n\n-- Skylight"
            ),
            from_email=None,
            recipient_list=admins,
        )
    except OSError as error:
        # The audit row stands; the admins see it in the log.
        log.warning("break-glass e-mail %d not sent: %s", grant.pk, type(error).__name__)
