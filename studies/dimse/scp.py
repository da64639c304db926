"""The DICOM SCP: one listener for every tenant, selected by the called AE title.

Tenancy is resolved once, when the association is requested: the called AE title names the
tenant, the tenant's rules admit (or not) the calling AE title and source address, and the answer
is attached to the association object that every later handler receives. Nothing is kept in
thread-local state: pynetdicom runs each association in its own threads.
"""

from __future__ import annotations

import io
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from pynetdicom import AE, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tenants import audit, rls
from tenants.dicomconfig.status import note_association
from tenants.models import AuditAction, Outcome, Tenant
from tenants.queries import caller_rules, tenant_for_called_ae
from tenants.usage import metrics

from ..dicom.part10 import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, file_meta
from ..dicom.reader import UnreadableObject, read_header
from ..dispatch import dispatcher
from ..models import ReceiptSource
from ..services import ReceiptContext, record_receipts, store_bytes
from ..storage import object_store
from . import qr, transport

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ parameters (PS3.8 9.3.4): result, source, reason.
REJECT_PERMANENT = 0x01
SOURCE_SERVICE_USER = 0x01
REASON_NO_REASON = 0x01
REASON_CALLING_AE_NOT_RECOGNIZED = 0x03
REASON_CALLED_AE_NOT_RECOGNIZED = 0x07

# C-STORE statuses (PS3.4 B.2.3)
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_DATA_SET_DOES_NOT_MATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000


@dataclass(frozen=True)
class Peer:
    """What was resolved about an association at its start."""

    tenant: Tenant
    called_ae_title: str
    calling_ae_title: str
    address: str

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor.for_ae(
            self.calling_ae_title, address=self.address, called_ae=self.called_ae_title
        )


def _decide(called: str, calling: str, address: str) -> tuple[Tenant | None, int | None]:
    """Return (tenant, None) to accept, or (tenant or None, reject reason)."""
    tenant = tenant_for_called_ae(called)
    if tenant is None:
        return None, REASON_CALLED_AE_NOT_RECOGNIZED
    rules = caller_rules(tenant)
    if not any(rule.admits_ae(calling) for rule in rules):
        return tenant, REASON_CALLING_AE_NOT_RECOGNIZED
    if not any(rule.admits_ae(calling) and rule.admits_address(address) for rule in rules):
        # A known AE title from a network the tenant did not allow: refuse without saying why,
        # so a scanner of the network learns nothing about which titles exist.
        return tenant, REASON_NO_REASON
    return tenant, None


def _reject(assoc: Any, result: int, source: int, reason: int) -> None:
    connection.close()
    assoc.acse.send_reject(result, source, reason)
    # As pynetdicom does after its own rejections: wait until the A-ASSOCIATE-RJ is on the wire and
    # the peer has closed, instead of letting the socket be shut under the unsent PDU.
    assoc.kill()


def handle_requested(event: Any) -> None:
    close_old_connections()
    assoc = event.assoc
    request = assoc.requestor.primitive
    called = (request.called_ae_title or "").strip()
    calling = (request.calling_ae_title or "").strip()
    address = assoc.requestor.address
    try:
        tenant, reason = _decide(called, calling, address)
    except Exception:  # noqa: BLE001 - the database is unreachable: refuse for now, transiently
        log.exception("association from %s refused: tenant lookup failed", address)
        _reject(assoc, 0x02, 0x03, 0x01)  # rejected-transient, provider, temporary congestion
        return
    actor = audit.Actor.for_ae(calling, address=address, called_ae=called)
    if reason is not None:
        audit.record(
            action=AuditAction.ASSOCIATION_REJECTED,
            actor=actor,
            tenant=tenant,
            outcome=Outcome.FAILURE,
            detail={"reason": reason},
        )
        if tenant is not None:
            note_association(
                tenant=tenant,
                calling_ae_title=calling,
                called_ae_title=called,
                address=address,
                audit_reason=reason,
            )
        log.info(
            "association rejected: called=%s calling=%s from=%s reason=%d",
            called,
            calling,
            address,
            reason,
        )
        _reject(assoc, REJECT_PERMANENT, SOURCE_SERVICE_USER, reason)
        return
    assert tenant is not None
    acceptors = [a for a in assoc.ae.active_associations if a.is_acceptor]
    if len(acceptors) > assoc.ae.maximum_associations:
        audit.record(
            action=AuditAction.ASSOCIATION_REJECTED,
            actor=actor,
            tenant=tenant,
            outcome=Outcome.FAILURE,
            detail={"reason": "local-limit-exceeded"},
        )
        note_association(
            tenant=tenant,
            calling_ae_title=calling,
            called_ae_title=called,
            address=address,
            audit_reason="local-limit-exceeded",
        )
        _reject(assoc, 0x02, 0x03, 0x02)  # rejected-transient, provider, local limit exceeded
        return
    # From here on this association's connection sees only its tenant's rows (tenants/rls.py).
    rls.use_tenants([tenant.id])
    assoc.skylight_peer = Peer(
        tenant=tenant, called_ae_title=called, calling_ae_title=calling, address=address
    )
    # Answer with the title that was called, whichever of the tenant's titles it is.
    assoc.acceptor.ae_title = called
    audit.record(action=AuditAction.ASSOCIATION_ACCEPTED, actor=actor, tenant=tenant)
    note_association(
        tenant=tenant,
        calling_ae_title=calling,
        called_ae_title=called,
        address=address,
        audit_reason=None,
    )


def handle_echo(event: Any) -> int:
    return STATUS_SUCCESS


def handle_store(event: Any) -> int | tuple[int, Any]:
    peer: Peer | None = getattr(event.assoc, "skylight_peer", None)
    if peer is None:  # cannot happen: associations without a peer are rejected
        return STATUS_OUT_OF_RESOURCES
    request = event.request
    sop_class_uid = str(request.AffectedSOPClassUID or "")
    sop_instance_uid = str(request.AffectedSOPInstanceUID or "")
    data_set = request.DataSet.getvalue() if request.DataSet is not None else b""
    if not data_set or not sop_instance_uid:
        return STATUS_DATA_SET_DOES_NOT_MATCH
    transfer_syntax_uid = str(event.context.transfer_syntax)
    # The File Meta names no sender (the receipt does), so the same data set always gives the same
    # stored bytes, whoever sends it.
    payload = (
        file_meta(
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
            transfer_syntax_uid=transfer_syntax_uid,
        )
        + data_set
    )
    if not _readable(payload):
        log.warning(
            "C-STORE from %s to %s refused: the data set cannot be parsed or is cut short",
            peer.calling_ae_title,
            peer.called_ae_title,
        )
        return STATUS_CANNOT_UNDERSTAND
    try:
        stored = store_bytes(tenant=peer.tenant, data=payload, hashing=_hashing)
    except Exception:  # noqa: BLE001 - storage down: the sender must retry later
        log.exception(
            "C-STORE from %s to %s not stored", peer.calling_ae_title, peer.called_ae_title
        )
        return STATUS_OUT_OF_RESOURCES
    stored.sop_class_uid = sop_class_uid
    stored.sop_instance_uid = sop_instance_uid
    stored.transfer_syntax_uid = transfer_syntax_uid
    try:
        record_receipts(
            tenant=peer.tenant,
            context=ReceiptContext(
                source=ReceiptSource.DIMSE,
                actor=peer.actor,
                calling_ae_title=peer.calling_ae_title,
                called_ae_title=peer.called_ae_title,
                audit_action=AuditAction.DIMSE_STORE,
            ),
            objects=[stored],
            enqueue=dispatcher.submit,
        )
    except Exception:  # noqa: BLE001 - database down: nothing recorded, so nothing acknowledged
        log.exception(
            "C-STORE from %s to %s not recorded", peer.calling_ae_title, peer.called_ae_title
        )
        close_old_connections()
        _forget(stored.storage_key)
        return STATUS_OUT_OF_RESOURCES
    return STATUS_SUCCESS


def _readable(payload: bytes) -> bool:
    """Whether the data set parses up to its pixel data and no element runs past its end.

    An element declaring 4 GB in a small data set, or sequences nested thousands deep, would
    otherwise be acknowledged and fail later in indexing, where the sender can no longer be
    told. Reading the header costs about a millisecond; the pixel data is not read.
    """
    try:
        header = read_header(io.BytesIO(payload), size=len(payload))
    except UnreadableObject:
        return False
    return not header.truncated


_hashing = ThreadPoolExecutor(max_workers=4, thread_name_prefix="scp-hash")


def _forget(storage_key: str) -> None:
    """Delete bytes that no receipt will ever name (best effort: an orphan only costs space)."""
    try:
        object_store().delete(storage_key)
    except Exception:  # noqa: BLE001
        log.warning("could not delete an unrecorded object")


def handle_finished(event: Any) -> None:
    # Each association thread opened its own database connection; give it back.
    connection.close()


def build_ae() -> AE:
    transport.install()
    # Accept every storage SOP class, private ones included, in whatever transfer syntax the
    # sender proposes first: the original bytes are stored as received, so no syntax is foreign.
    _config.UNRESTRICTED_STORAGE_SERVICE = True
    cfg = settings.SKYLIGHT
    ae = AE()
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.maximum_pdu_size = cfg["SCP_MAX_PDU"]
    ae.maximum_associations = cfg["SCP_MAX_ASSOCIATIONS"]
    ae.require_called_aet = False
    ae.require_calling_aet = []
    ae.acse_timeout = 30
    ae.dimse_timeout = 60
    ae.network_timeout = 120
    ae.add_supported_context(Verification)
    # Query/Retrieve (qr.py). C-GET needs no more: the unrestricted storage service above already
    # accepts every storage context with the SCP/SCU role selection the requestor proposes, which
    # is how C-GET's C-STORE sub-operations come back on the same association.
    qr.configure(ae)
    return ae


HANDLERS: list[Any] = [
    (evt.EVT_REQUESTED, handle_requested),
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_STORE, metrics.timed_c_store(handle_store)),
    (evt.EVT_C_FIND, metrics.timed_c_find(qr.handle_find)),
    (evt.EVT_C_MOVE, qr.handle_move),
    (evt.EVT_C_GET, qr.handle_get),
    (evt.EVT_RELEASED, handle_finished),
    (evt.EVT_ABORTED, handle_finished),
]


def start_server(host: str, port: int, *, tls: ssl.SSLContext | None = None) -> Any:
    """Start listening in background threads; call ``shutdown()`` on the result to stop.

    With ``tls`` the listener speaks DICOM over TLS (tls.py); the handshake happens in each
    association's thread (transport.FastRequestHandler), not in pynetdicom's accept loop.
    """
    ae = build_ae()
    server = ae.start_server((host, port), block=False, evt_handlers=HANDLERS)
    assert server is not None  # block=False always returns the server
    server.RequestHandlerClass = transport.FastRequestHandler
    server.skylight_tls = tls  # type: ignore[attr-defined]  # read by FastRequestHandler
    return server
