"""The "last association received" panel: what the SCP saw of each modality, and why it refused.

Why a status table and not the audit log alone: the log has one row per association, millions
for a busy hospital, and "the latest row of each calling AE title" over it costs more the longer
the hospital sends. ``AssociationStatus`` keeps one row per (tenant, calling AE title), written by
the SCP with a single upsert, so the panel (polled every few seconds by every admin who has the
page open) reads a handful of rows. The counts of the last 24 hours come from the audit log's
rejected rows, which are rare and have their own partial index (audit_rejected_associations).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from tenants.models import AssociationStatus, AuditAction, AuditEvent, Tenant

log = logging.getLogger(__name__)

# The panel shows the peers seen most recently; a network scanner inventing calling AE titles
# cannot push the real modalities off it for long, and cannot make the read slower.
SHOWN = 50

# Why the SCP refused, as stored here, and in words for the hospital's admin. The admin owns the
# rules, so the page may say plainly what the A-ASSOCIATE-RJ does not tell the caller.
REASONS = {
    "calling-ae-not-allowed": "calling AE title not in the allowed callers",
    "network-not-allowed": "source address not in an allowed network for this AE title",
    "local-limit-exceeded": "too many associations at once (try again)",
    "called-ae-not-recognised": "called AE title not recognised",
}
# The audit rows' ``detail.reason``: the A-ASSOCIATE-RJ reason code, or a word.
_AUDIT_REASONS = {
    3: "calling-ae-not-allowed",
    1: "network-not-allowed",
    7: "called-ae-not-recognised",
    "local-limit-exceeded": "local-limit-exceeded",
}


def reason_code(audit_reason: int | str | None) -> str:
    return _AUDIT_REASONS.get(audit_reason, str(audit_reason or "")) if audit_reason else ""


def in_words(code: str) -> str:
    return REASONS.get(code, code or "unknown reason")


def note_association(
    *,
    tenant: Tenant,
    calling_ae_title: str,
    called_ae_title: str,
    address: str | None,
    audit_reason: int | str | None,
    now: datetime | None = None,
) -> None:
    """Remember this association as the calling AE title's latest (one upsert).

    Called by the SCP after its audit row. A failure here never refuses or breaks an
    association: the audit row already holds the fact, and the panel catches up with the next one.
    """
    row = AssociationStatus(
        tenant=tenant,
        calling_ae_title=calling_ae_title[:16],
        called_ae_title=called_ae_title[:16],
        address=address or None,
        accepted=audit_reason is None,
        reason=reason_code(audit_reason),
        last_at=now or timezone.now(),
    )
    try:
        AssociationStatus.objects.bulk_create(
            [row],
            update_conflicts=True,
            unique_fields=["tenant", "calling_ae_title"],
            update_fields=["called_ae_title", "address", "accepted", "reason", "last_at"],
        )
    except Exception:  # noqa: BLE001 - see the docstring: the status is a convenience
        log.exception("association status of tenant %s not updated", tenant.pk)


@dataclass(frozen=True)
class Peer:
    calling_ae_title: str
    called_ae_title: str
    address: str | None
    accepted: bool
    reason: str  # in words
    last_at: datetime


@dataclass(frozen=True)
class Panel:
    peers: list[Peer]
    rejected_24h: int
    rejected_by_reason: list[tuple[str, int]]  # (reason in words, count), most first


def panel(tenant: Tenant, *, now: datetime | None = None) -> Panel:
    """The status panel's content: two queries, whatever the traffic."""
    now = now or timezone.now()
    peers = [
        Peer(
            calling_ae_title=row.calling_ae_title,
            called_ae_title=row.called_ae_title,
            address=row.address,
            accepted=row.accepted,
            reason=in_words(row.reason) if not row.accepted else "",
            last_at=row.last_at,
        )
        for row in AssociationStatus.objects.filter(tenant=tenant).order_by("-last_at")[:SHOWN]
    ]
    counts = (
        AuditEvent.objects.filter(
            tenant=tenant,
            action=AuditAction.ASSOCIATION_REJECTED,
            occurred_at__gt=now - timedelta(hours=24),
        )
        .order_by()
        .values("detail__reason")
        .annotate(n=Count("id"))
    )
    by_reason: dict[str, int] = {}
    for entry in counts:
        words = in_words(reason_code(entry["detail__reason"]))
        by_reason[words] = by_reason.get(words, 0) + entry["n"]
    ordered = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return Panel(peers=peers, rejected_24h=sum(by_reason.values()), rejected_by_reason=ordered)
