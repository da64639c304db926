"""Writing the audit log, sealing it into per-tenant hash chains, and checking those chains.

Callers describe who acted; this module never sees patient data.

Why seal later: audit rows are written on every DICOMweb request. Chaining at insert time would
make every writer of a tenant wait for the previous one (each row needs the hash before it). So
rows go in unsealed, and ``seal`` — run every few seconds by Celery beat, by the embedded
housekeeping thread and by ``verify_audit_chain`` — takes one tenant's chain at a time under a
PostgreSQL advisory lock and links its new rows in id order. The chain order is ``seq``: a row
whose transaction committed late is simply sealed into a later place.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from .models import ActorType, ApiToken, AuditEvent, Outcome, Tenant, User

log = logging.getLogger(__name__)

# The advisory-lock namespace of the sealing step (the first key of pg_advisory_xact_lock).
SEAL_LOCK_NAMESPACE = 0x5A0D17
# Rows per tenant per transaction; a long backlog is sealed over several turns.
SEAL_BATCH = 2000


@dataclass(frozen=True)
class Actor:
    """Who did something: a user (maybe through a token), a DICOM peer, or the system itself."""

    type: str
    user: User | None = None
    token: ApiToken | None = None
    ae_title: str = ""
    address: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def system(cls) -> Actor:
        return cls(type=ActorType.SYSTEM)

    @classmethod
    def for_user(
        cls, user: User, *, token: ApiToken | None = None, address: str | None = None
    ) -> Actor:
        return cls(
            type=ActorType.TOKEN if token else ActorType.USER,
            user=user,
            token=token,
            address=address,
        )

    @classmethod
    def for_ae(cls, ae_title: str, *, address: str | None = None, called_ae: str = "") -> Actor:
        return cls(
            type=ActorType.AE,
            ae_title=ae_title.strip(),
            address=address,
            extra={"called_ae": called_ae},
        )


def build(
    *,
    action: str,
    actor: Actor,
    tenant: Tenant | None,
    outcome: str = Outcome.SUCCESS,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    sop_instance_uid: str = "",
    patient_ref: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    merged = dict(actor.extra)
    merged.update(detail or {})
    return AuditEvent(
        tenant=tenant,
        actor_type=actor.type,
        actor_user=actor.user,
        actor_token=actor.token,
        actor_ae_title=actor.ae_title,
        action=action,
        outcome=outcome,
        source_address=actor.address,
        patient_ref=patient_ref,
        study_instance_uid=study_instance_uid or "",
        series_instance_uid=series_instance_uid or "",
        sop_instance_uid=sop_instance_uid or "",
        detail=merged,
    )


def record(**kwargs: Any) -> AuditEvent:
    event = build(**kwargs)
    event.save()
    return event


def record_many(events: Iterable[AuditEvent]) -> None:
    AuditEvent.objects.bulk_create(list(events), batch_size=500)


# ---------------------------------------------------------------------------------------------
# The chain
# ---------------------------------------------------------------------------------------------

# What is hashed: every column that says what happened, plus the chain position. Read back from the
# database (never from the object a writer built) so that sealing and verifying see the same text.
_COLUMNS = (
    "id", "occurred_at", "tenant_id", "actor_type", "actor_user_id", "actor_token_id",
    "actor_ae_title", "action", "outcome", "source_address", "patient_ref",
    "study_instance_uid", "series_instance_uid", "sop_instance_uid", "request_id", "detail",
)  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if value is None or isinstance(value, (int, str, dict, list, bool, float)):
        return value
    return str(value)  # UUID


def row_hash(row: dict[str, Any], *, seq: int, prev_hash: str) -> str:
    """SHA-256 (hex) of the canonical JSON of a row's content, its ``seq`` and ``prev_hash``."""
    content = {name: _plain(row[name]) for name in _COLUMNS}
    content["seq"] = seq
    content["prev_hash"] = prev_hash
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _rows(queryset: Any) -> Iterator[dict[str, Any]]:
    return queryset.values(*_COLUMNS, "seq", "prev_hash", "hash").iterator(chunk_size=SEAL_BATCH)


def _lock_chain(tenant_id: int | None) -> None:
    """Only one sealer per chain at a time (PostgreSQL; SQLite serialises writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [SEAL_LOCK_NAMESPACE, tenant_id or 0]
            )


def _chain(tenant_id: int | None) -> QuerySet[AuditEvent]:
    """One tenant's rows, or the platform's (tenant NULL)."""
    if tenant_id is None:
        return AuditEvent.objects.filter(tenant__isnull=True)
    return AuditEvent.objects.filter(tenant_id=tenant_id)


def _seal_chain(tenant_id: int | None) -> int:
    with transaction.atomic():
        _lock_chain(tenant_id)
        chain = _chain(tenant_id)
        last = chain.exclude(hash="").order_by("-seq").values("seq", "hash").first()
        seq, prev = (int(last["seq"] or 0), str(last["hash"])) if last else (0, "")
        updates = []
        for row in _rows(chain.filter(hash="").order_by("id")[:SEAL_BATCH]):
            seq += 1
            digest = row_hash(row, seq=seq, prev_hash=prev)
            updates.append((seq, prev, digest, row["id"]))
            prev = digest
        if not updates:
            return 0
        with connection.cursor() as cursor:
            # The append-only trigger lets exactly this update through: on an unsealed row.
            cursor.executemany(
                f"UPDATE {AuditEvent._meta.db_table} SET seq = %s, prev_hash = %s, hash = %s "
                "WHERE id = %s AND hash = ''",
                updates,
            )
        return len(updates)


def seal_chain(tenant_id: int | None) -> int:
    """Seal every unsealed row of one chain (tenant id, or None for the platform's)."""
    sealed = 0
    while True:
        done = _seal_chain(tenant_id)
        sealed += done
        if done < SEAL_BATCH:
            return sealed


def seal() -> int:
    """Link every unsealed row into its tenant's chain; return how many were sealed.

    Safe to run at any time and from several processes at once: each chain is sealed under its
    lock, and a row is sealed once (the update needs an empty hash).
    """
    chains = (
        AuditEvent.objects.filter(hash="").order_by().values_list("tenant_id", flat=True).distinct()
    )
    return sum(seal_chain(tenant_id) for tenant_id in list(chains))


@dataclass(frozen=True)
class ChainReport:
    """The result of checking one chain: how many rows, and the first broken link if any."""

    tenant_id: int | None
    rows: int
    unsealed: int
    broken_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None and not self.problem


def verify(tenant_id: int | None) -> ChainReport:
    """Recompute one chain from its first row; stop at the first row that does not fit."""
    chain = _chain(tenant_id)
    unsealed = chain.filter(hash="").count()
    expected_seq, prev, rows = 1, "", 0
    for row in _rows(chain.exclude(hash="").order_by("seq")):
        rows += 1
        if row["seq"] != expected_seq:
            return ChainReport(
                tenant_id, rows, unsealed, row["id"],
                f"expected position {expected_seq}, found {row['seq']}: rows are missing",
            )  # fmt: skip
        if row["prev_hash"] != prev:
            return ChainReport(
                tenant_id, rows, unsealed, row["id"], "does not link to the row before it"
            )
        digest = row_hash(row, seq=row["seq"], prev_hash=prev)
        if digest != row["hash"]:
            return ChainReport(
                tenant_id, rows, unsealed, row["id"], "content changed after it was sealed"
            )
        prev, expected_seq = digest, expected_seq + 1
    return ChainReport(tenant_id, rows, unsealed)
