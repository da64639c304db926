"""Mail a radiologist and their group admins before a licence or privilege ends.

One mail per credential per threshold (30 and 7 days before its end), whoever runs the job and
however often: the ``CredentialReminder`` row is inserted in the same transaction as the mail is
sent, and its unique constraint refuses a second one. A renewed credential (new end date) gets
reminders again. The mails name the credential, never a patient.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, Membership, ReadingAgreement, Role

from ..models import CredentialReminder, Licence, Privilege
from .access import group_admins

THRESHOLDS = (30, 7)  # days before the end, largest first


def _groups_of(user_id: int) -> list[int]:
    return list(
        Membership.objects.filter(
            user_id=user_id, role=Role.RADIOLOGIST, group__is_active=True
        ).values_list("group_id", flat=True)
    )


def _what(kind: str, obj: Any) -> str:
    if kind == "licence":
        return f"licence {obj.number} for {obj.jurisdiction}"
    return f"privileges at {obj.tenant.name} ({', '.join(obj.modalities)})"


def _due(days_left: int) -> int | None:
    """The smallest threshold reached, if one is."""
    reached = [t for t in THRESHOLDS if days_left <= t]
    return min(reached) if reached else None


def remind_expiring_credentials(*, now: datetime | None = None) -> int:
    """Send what is due now; return the number of mails sent."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    horizon = today + timedelta(days=max(THRESHOLDS))
    members = Membership.objects.filter(
        role=Role.RADIOLOGIST, group__is_active=True, user__is_active=True
    ).values("user_id")
    sent = 0
    candidates: list[tuple[str, Any]] = [
        ("licence", lic)
        for lic in Licence.objects.filter(
            user_id__in=members, valid_to__gte=today, valid_to__lte=horizon
        ).select_related("user")
    ]
    candidates += [
        ("privilege", p)
        for p in Privilege.objects.filter(
            user_id__in=members, valid_to__gte=today, valid_to__lte=horizon
        ).select_related("user", "tenant")
    ]
    for kind, obj in candidates:
        days_left = (obj.valid_to - today).days
        threshold = _due(days_left)
        if threshold is None:
            continue
        if _send_once(kind, obj, threshold, days_left):
            sent += 1
    return sent


def _send_once(kind: str, obj: Any, threshold: int, days_left: int) -> bool:
    # A reminder of a larger threshold not sent yet is superseded by this one: record them too,
    # so that a credential first seen 5 days before its end gets one mail, not two.
    thresholds = [t for t in THRESHOLDS if t >= threshold]
    groups = _groups_of(obj.user_id)
    if kind == "privilege":
        linked = set(
            ReadingAgreement.objects.filter(tenant_id=obj.tenant_id).values_list(
                "group_id", flat=True
            )
        )
        groups = [g for g in groups if g in linked]
    admins = group_admins(groups)
    recipients = sorted({u.email for u in [obj.user, *admins] if u.email})
    try:
        with transaction.atomic():
            if CredentialReminder.objects.filter(
                kind=kind, credential_id=obj.pk, days_before=threshold, valid_to=obj.valid_to
            ).exists():
                return False
            # The unique constraint makes this insert the "once": a concurrent run fails here.
            CredentialReminder.objects.create(
                kind=kind, credential_id=obj.pk, days_before=threshold, valid_to=obj.valid_to
            )
            CredentialReminder.objects.bulk_create(
                [
                    CredentialReminder(
                        kind=kind, credential_id=obj.pk, days_before=t, valid_to=obj.valid_to
                    )
                    for t in thresholds
                    if t != threshold
                ],
                ignore_conflicts=True,
            )
            audit.record(
                action=AuditAction.CREDENTIAL_REMINDER,
                actor=audit.Actor.system(),
                tenant=getattr(obj, "tenant", None),
                detail={
                    "kind": kind,
                    "id": obj.pk,
                    "user": obj.user_id,
                    "days_before": threshold,
                    "valid_to": obj.valid_to.isoformat(),
                    "recipients": len(recipients),
                },
            )
            if recipients:
                # Raises on failure: the transaction rolls back and the next run tries again.
                send_mail(
                    subject=f"Skylight: {_what(kind, obj)} ends in {days_left} days",
                    message=(
                        f"The {_what(kind, obj)} of {obj.user} ends on "
                        f"{obj.valid_to.isoformat()} ({days_left} days from today). Until it is "
                        "renewed, the studies it covers leave this radiologist's worklist on "
                        "that date. A group admin renews it on the group's credentials page."
                    ),
                    from_email=None,
                    recipient_list=recipients,
                )
    except IntegrityError:
        return False  # another run sent it at the same moment
    return True
