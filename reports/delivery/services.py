"""Writes of delivery: which channels a signed version goes out on, sending each once, retrying.

    signed version ─▶ start(): one Delivery row per channel (unique), pending or skipped
                      └─▶ one task per pending row ─▶ deliver(): claim ─▶ send ─▶ sent / failed

``deliver`` claims its row with a conditional UPDATE (pending or failed, and no live lease), so of
two runs of the same task — a redelivery by the broker, a signal sent twice, a "retry now" racing
Celery's own retry — exactly one sends; the other finds nothing to do. A worker that dies while
sending leaves a lease that runs out, and the sweep queues the row again. What each channel makes
is deterministic (the same PDF bytes, the same SOP Instance UID, the same HL7 control ID, the same
webhook Idempotency-Key), so even a send repeated after a crash is recognisably the same one.

Preliminary reports: the hospital's RIS and EHR get them (FHIR status "preliminary", HL7 OBR-25
"P") with their PDF, because a hospital buying teleradiology acts on the preliminary before the
final arrives; the archive does not (no DICOM object, no C-STORE), because a preliminary left in a
PACS cannot be recalled from every system it was forwarded to, and the final follows.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from studies.storage import derived_key, object_store
from tenants import audit
from tenants.models import AuditAction, User
from worklists import services as worklist

from ..models import ReportVersion, Status
from . import dicom, fhir, hl7, webhook
from .content import Document, document
from .models import Channel, Delivery, DeliverySettings, DeliveryStatus
from .pdf import build_pdf

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# A pending row whose task has not run after this long (the broker lost it) is queued again.
STALE_PENDING = timedelta(minutes=10)

NotFound = worklist.NotVisible
NotAllowed = worklist.NotAllowed
Conflict = worklist.Conflict


class Transient(Exception):
    """A send that may succeed later (endpoint down, PACS busy); the task retries it."""


class _Waiting(Exception):
    transient = True


@dataclass
class Outcome:
    status: str = DeliveryStatus.SENT
    note: str = ""
    artefact_key: str = ""
    artefact_uid: str = ""


def settings_for(tenant_id: int) -> DeliverySettings | None:
    return (
        DeliverySettings.objects.select_related("tenant", "pacs_destination__tenant")
        .filter(tenant_id=tenant_id)
        .first()
    )


# ---------------------------------------------------------------------------------------------
# Starting: the rows
# ---------------------------------------------------------------------------------------------


def _plan(version: ReportVersion, settings: DeliverySettings | None) -> dict[str, str | None]:
    """Each channel, and why it is skipped (None: it goes out)."""
    final = version.status == Status.FINAL
    archive = None if final else "A preliminary report is not archived; the final one will be."
    pacs = settings.pacs_destination if settings else None
    return {
        Channel.PDF: None,
        Channel.DICOM: archive,
        Channel.PACS: archive
        or (None if pacs and pacs.enabled else "No PACS destination is set for this hospital."),
        Channel.FHIR: (
            None
            if settings and settings.fhir_enabled and settings.webhook_url
            else "No FHIR webhook is set for this hospital."
        ),
        Channel.HL7: None if settings is None or settings.hl7_enabled else "HL7 is turned off.",
    }


def start(version: ReportVersion, *, now: datetime | None = None) -> list[Delivery]:
    """Create the version's delivery rows (once, whoever calls) and queue the pending ones."""
    now = now or timezone.now()
    if version.status == Status.DRAFT:
        return []
    plan = _plan(version, settings_for(version.tenant_id))
    Delivery.objects.bulk_create(
        [
            Delivery(
                tenant_id=version.tenant_id,
                version=version,
                channel=channel,
                status=DeliveryStatus.SKIPPED if why else DeliveryStatus.PENDING,
                last_error=why or "",
                created_at=now,
                updated_at=now,
            )
            for channel, why in plan.items()
        ],
        ignore_conflicts=True,
    )
    rows = list(Delivery.objects.filter(version=version).order_by("id"))
    for row in rows:
        # The C-STORE sends the stored DICOM object: it is queued once that exists.
        if row.status == DeliveryStatus.PENDING and row.channel != Channel.PACS:
            queue(row)
    return rows


def queue(row: Delivery) -> None:
    """Send the row from a worker once the current transaction commits."""
    from .tasks import deliver

    tenant_id, row_id = row.tenant_id, row.pk
    if django_settings.CELERY_TASK_ALWAYS_EAGER:
        # Embedded mode (tasks in-process): Celery would retry an eager task at once, back to back,
        # inside the request that signed. One attempt instead; a failure stays failed, shown in
        # the panel with "retry now".
        transaction.on_commit(lambda: _attempt_once(tenant_id, row_id))
        return
    transaction.on_commit(lambda: deliver.delay(tenant_id, row_id))


def _attempt_once(tenant_id: int, delivery_id: int) -> None:
    try:
        deliver(tenant_id=tenant_id, delivery_id=delivery_id)
    except Transient:
        pass  # recorded on the row as failed, with its reason
    except Exception as exc:  # noqa: BLE001 - delivery must never undo or break the signature
        log.warning("delivery %s not attempted (%s)", delivery_id, type(exc).__name__)


# ---------------------------------------------------------------------------------------------
# Sending one row
# ---------------------------------------------------------------------------------------------


def deliver(*, tenant_id: int, delivery_id: int, now: datetime | None = None) -> str:
    """Send one row if it still needs sending and nobody else is. Returns its status afterwards;
    raises Transient when a retry may succeed (the row is then failed, with the reason)."""
    now = now or timezone.now()
    claimed = (
        Delivery.objects.filter(
            pk=delivery_id,
            tenant_id=tenant_id,
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.SENDING],
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            status=DeliveryStatus.SENDING,
            attempts=F("attempts") + 1,
            lease_until=now + LEASE,
            updated_at=now,
        )
    )
    row = (
        Delivery.objects.select_related("version__report__tenant", "version__signed_by", "tenant")
        .filter(pk=delivery_id, tenant_id=tenant_id)
        .first()
    )
    if row is None:
        return "gone"  # nothing to send (a task outliving its row: tests empty the database)
    if not claimed:
        return row.status  # sent, skipped, or being sent by another worker right now
    try:
        settings = settings_for(tenant_id)
        doc = document(row.version)
        outcome = RUNNERS[Channel(row.channel)](row, doc, settings)
    except (dicom.StoreFailed, webhook.WebhookFailed, hl7.MllpFailed, _Waiting) as exc:
        _fail(row, str(exc), now)
        if exc.transient:
            raise Transient(str(exc)) from None
        return DeliveryStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - recorded on the row, retried by the task
        # The exception's type and where it was raised, never its message: that may quote the
        # report or the patient (reportlab's layout errors quote the paragraph).
        log.error(
            "delivery %s (%s) failed with %s at\n%s",
            row.pk,
            row.channel,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        _fail(row, f"Unexpected error ({type(exc).__name__}); it will be retried.", now)
        raise Transient(type(exc).__name__) from None
    _finish(row, outcome, timezone.now())
    return outcome.status


def _fail(row: Delivery, message: str, now: datetime) -> None:
    Delivery.objects.filter(pk=row.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.FAILED, last_error=message[:300], lease_until=None, updated_at=now
    )


def _finish(row: Delivery, outcome: Outcome, now: datetime) -> None:
    with transaction.atomic():
        done = Delivery.objects.filter(pk=row.pk, status=DeliveryStatus.SENDING).update(
            status=outcome.status,
            last_error=outcome.note[:300],
            lease_until=None,
            updated_at=now,
            sent_at=now,
            artefact_key=outcome.artefact_key,
            artefact_uid=outcome.artefact_uid,
        )
        if done and outcome.status == DeliveryStatus.SENT:
            report = row.version.report
            audit.record(
                action=AuditAction.DELIVERY_SEND,
                actor=audit.Actor.system(),
                tenant=row.tenant,
                study_instance_uid=report.study.study_instance_uid,
                patient_ref=report.study.patient_id,
                detail={
                    "report": report.pk,
                    "version": row.version.number,
                    "channel": row.channel,
                    "delivery": row.pk,
                },
            )
        if done and row.channel == Channel.DICOM:
            pacs = Delivery.objects.filter(
                version_id=row.version_id, channel=Channel.PACS, status=DeliveryStatus.PENDING
            ).first()
            if pacs is not None:
                queue(pacs)


def pdf_key(version: ReportVersion) -> str:
    """Our ids, and the signed content's hash: a key can never name another version's PDF."""
    name = f"{version.pk}-{version.content_sha256[:16]}.pdf"
    return derived_key(version.tenant_id, "reports", name)


def pdf_bytes(doc: Document, settings: DeliverySettings | None) -> tuple[bytes, str]:
    """The version's PDF: the stored one, else built and stored (the first one made is kept,
    so a letterhead changed later does not change what was delivered)."""
    key = pdf_key(doc.version)
    store = object_store()
    if store.exists(key):
        with store.open(key, "rb") as f:
            return f.read(), key
    data = build_pdf(doc, settings)
    store.put(key, data, len(data))
    return data, key


def _pdf(row: Delivery, doc: Document, settings: DeliverySettings | None) -> Outcome:
    _, key = pdf_bytes(doc, settings)
    return Outcome(artefact_key=key)


def _dicom(row: Delivery, doc: Document, settings: DeliverySettings | None) -> Outcome:
    pdf, _ = pdf_bytes(doc, settings)
    data = dicom.build(doc, pdf)
    key = dicom.store_in_study(doc, data)
    return Outcome(artefact_key=key, artefact_uid=dicom.sop_instance_uid(doc))


def _pacs(row: Delivery, doc: Document, settings: DeliverySettings | None) -> Outcome:
    destination = settings.pacs_destination if settings else None
    if destination is None or not destination.enabled:
        return Outcome(DeliveryStatus.SKIPPED, "No PACS destination is set for this hospital.")
    stored = Delivery.objects.filter(version_id=row.version_id, channel=Channel.DICOM).first()
    if stored is None or stored.status != DeliveryStatus.SENT:
        raise _Waiting("Waiting for the DICOM object to be stored in the study.")
    with object_store().open(stored.artefact_key, "rb") as f:
        data = f.read()
    dicom.c_store(destination, data)
    return Outcome(artefact_uid=stored.artefact_uid, note=f"Stored at {destination.ae_title}.")


def _fhir(row: Delivery, doc: Document, settings: DeliverySettings | None) -> Outcome:
    if settings is None or not settings.fhir_enabled or not settings.webhook_url:
        return Outcome(DeliveryStatus.SKIPPED, "No FHIR webhook is set for this hospital.")
    pdf, _ = pdf_bytes(doc, settings)
    body = fhir.encode(fhir.diagnostic_report(doc, pdf))
    webhook.post(settings.webhook_url, settings.webhook_secret, body, str(row.idempotency_key))
    return Outcome(
        artefact_uid=f"DiagnosticReport/{doc.version.report_id}/_history/{doc.version.number}"
    )


def _hl7(row: Delivery, doc: Document, settings: DeliverySettings | None) -> Outcome:
    message = hl7.oru_r01(doc)
    control = hl7.control_id(doc)
    if settings is None or not settings.mllp_host or not settings.mllp_port:
        return Outcome(
            DeliveryStatus.SKIPPED,
            "Built and kept for the API; no MLLP destination is set.",
            artefact_uid=control,
        )
    hl7.send_mllp(settings.mllp_host, settings.mllp_port, message)
    return Outcome(artefact_uid=control, note=f"Sent to {settings.mllp_host}:{settings.mllp_port}.")


RUNNERS: dict[Channel, Callable[[Delivery, Document, DeliverySettings | None], Outcome]] = {
    Channel.PDF: _pdf,
    Channel.DICOM: _dicom,
    Channel.PACS: _pacs,
    Channel.FHIR: _fhir,
    Channel.HL7: _hl7,
}


# ---------------------------------------------------------------------------------------------
# Retry now, and the sweep for lost tasks
# ---------------------------------------------------------------------------------------------


def retry(
    *, delivery_id: int, user: User, actor: audit.Actor, now: datetime | None = None
) -> Delivery:
    """Queue a failed delivery again: the version's author or signer, or an admin of the study."""
    now = now or timezone.now()
    row = (
        Delivery.objects.select_related("version__report", "tenant").filter(pk=delivery_id).first()
    )
    if row is None:
        raise NotFound("No such delivery.")
    try:
        item = worklist.visible_item(user, row.version.report.work_item_id)
    except worklist.NotVisible:
        raise NotFound("No such delivery.") from None
    version = row.version
    if user.pk not in (version.author_id, version.signed_by_id) and not worklist.can_manage(
        user, item
    ):
        raise NotAllowed("Only the report's author or an admin can retry its delivery.")
    with transaction.atomic():
        again = Delivery.objects.filter(pk=row.pk, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING, lease_until=None, updated_at=now
        )
        if not again:
            row.refresh_from_db()
            raise Conflict(
                f"Only a failed delivery can be retried; this one is {row.get_status_display().lower()}."
            )
        worklist._record(
            AuditAction.DELIVERY_RETRY, item, actor, report=version.report_id,
            version=version.number, channel=row.channel, delivery=row.pk,
        )  # fmt: skip
        queue(row)
    row.refresh_from_db()
    return row


def sweep(*, now: datetime | None = None) -> int:
    """Queue rows whose task was lost: pending for long, or sending with a lapsed lease."""
    now = now or timezone.now()
    lost = Delivery.objects.filter(
        Q(status=DeliveryStatus.PENDING, updated_at__lt=now - STALE_PENDING)
        | Q(status=DeliveryStatus.SENDING, lease_until__lt=now)
    )
    n = 0
    for row in lost[:500]:
        Delivery.objects.filter(pk=row.pk).update(updated_at=now)
        queue(row)
        n += 1
    return n
