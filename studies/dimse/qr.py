"""Query/Retrieve SCP: C-FIND, C-MOVE and C-GET, each scoped to the tenant of the called AE title.

The tenant comes from the association (``assoc.skylight_peer``, resolved in ``scp.py`` when the
association was requested), never from the request, so a called AE of one hospital cannot reach
another hospital's rows or bytes: every lookup here filters by that tenant first.

Retrieves hand pynetdicom one placeholder data set per matched instance. The real bytes are only
read when pynetdicom sends that sub-operation, by a wrapper around the sending association's
``send_c_store``: when the peer accepted the stored transfer syntax the stored data set goes out
byte for byte (pynetdicom's chunked file sending, which never decodes it); otherwise it is decoded
with pydicom, decompressed if need be, and sent in an uncompressed syntax the peer accepted.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pydicom
from django.db import DatabaseError
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import _config, build_context, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

from tenants import audit
from tenants.models import AuditAction, DicomDestination, Outcome, Tenant

from ..dicom.part10 import data_set_offset, file_meta
from ..models import Instance

# The matching engine is shared with QIDO-RS.
from ..query import QueryError, audit_keys, find_matches
from ..storage import object_store

log = logging.getLogger(__name__)

# Query/Retrieve statuses (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4).
STATUS_PENDING = 0xFF00
STATUS_CANCEL = 0xFE00
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_UNABLE_TO_CALCULATE_MATCHES = 0xA701
STATUS_IDENTIFIER_DOES_NOT_MATCH = 0xA900
STATUS_UNABLE_TO_PROCESS = 0xC000
# C-STORE statuses for a sub-operation that was not sent (PS3.4 B.2.3, PS3.7 C).
STORE_OUT_OF_RESOURCES = 0xA700
STORE_SOP_CLASS_NOT_SUPPORTED = 0x0122

PATIENT_ROOT = "patient"
STUDY_ROOT = "study"
FIND_MODELS = {
    PatientRootQueryRetrieveInformationModelFind: PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelFind: STUDY_ROOT,
}
MOVE_MODELS = {
    PatientRootQueryRetrieveInformationModelMove: PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelMove: STUDY_ROOT,
}
GET_MODELS = {
    PatientRootQueryRetrieveInformationModelGet: PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelGet: STUDY_ROOT,
}
LEVELS = {
    PATIENT_ROOT: ("PATIENT", "STUDY", "SERIES", "IMAGE"),
    STUDY_ROOT: ("STUDY", "SERIES", "IMAGE"),
}
# The unique key of each level and the index column it matches (PS3.4 C.6.1.1, C.6.2.1).
UNIQUE_KEYS = {
    "PATIENT": ("PatientID", "study__patient__patient_id"),
    "STUDY": ("StudyInstanceUID", "study__study_instance_uid"),
    "SERIES": ("SeriesInstanceUID", "series__series_instance_uid"),
    "IMAGE": ("SOPInstanceUID", "sop_instance_uid"),
}
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
# An A-ASSOCIATE-RQ carries at most 128 presentation contexts (PS3.8 9.3.2.2: odd ids 1-255).
MAX_CONTEXTS = 128
# The File Meta of a stored object is read from its first bytes.
HEAD_BYTES = 64 * 1024


def configure(ae: Any) -> None:
    """Accept the Q/R information models on ``ae`` and set how sub-operations are sent."""
    for uid in (*FIND_MODELS, *MOVE_MODELS, *GET_MODELS):
        ae.add_supported_context(uid)
    # send_c_store(path) then streams the data set from the file without decoding it: the
    # stored bytes go out unchanged. Skylight never calls send_c_store with a path otherwise.
    _config.STORE_SEND_CHUNKED_DATASET = True
    # Connecting to a C-MOVE destination that does not answer fails after this many seconds.
    ae.connection_timeout = 10


class IdentifierError(Exception):
    """The request identifier cannot be matched; the message is safe to send and to log."""

    def __init__(self, message: str, status: int = STATUS_IDENTIFIER_DOES_NOT_MATCH):
        super().__init__(message)
        self.status = status


def _failure(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    # ErrorComment is LO: at most 64 characters. Comments here never hold patient data.
    ds.ErrorComment = comment[:64]
    return ds


def _values(identifier: Dataset, keyword: str) -> list[str]:
    """The values of a unique key: one, or a backslash-separated list (PS3.4 C.2.2.2.2)."""
    value = identifier.get(keyword)
    if value is None or value == "":
        return []
    items = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def _level(identifier: Dataset, root: str) -> str:
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if level not in LEVELS[root]:
        raise IdentifierError("QueryRetrieveLevel must be one of " + ", ".join(LEVELS[root]) + ".")
    return level


# ---------------------------------------------------------------------------------------------
# Which instances a retrieve names
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    instance_id: int
    study_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    storage_key: str


def retrieve_matches(tenant: Tenant, root: str, identifier: Dataset) -> tuple[str, list[Match]]:
    """The tenant's instances a C-MOVE/C-GET identifier names, with its level.

    Hierarchical retrieve (PS3.4 C.4.2.2.1): the unique key of the level is required; unique keys
    of the levels above it narrow the match when given. UIDs of another tenant match nothing.
    """
    level = _level(identifier, root)
    levels = LEVELS[root]
    instances = Instance.objects.filter(tenant=tenant)
    for current in levels[: levels.index(level) + 1]:
        keyword, column = UNIQUE_KEYS[current]
        values = _values(identifier, keyword)
        if current == level and not values:
            raise IdentifierError(f"{keyword} is required at the {level} level.")
        if values:
            instances = instances.filter(**{f"{column}__in": values})
    rows = instances.order_by("study_id", "series_id", "instance_number", "id").values_list(
        "id",
        "study__study_instance_uid",
        "sop_class_uid",
        "sop_instance_uid",
        "transfer_syntax_uid",
        "storage_key",
    )
    return level, [Match(*row) for row in rows]


def requested_keys(identifier: Dataset, level: str, root: str) -> dict[str, list[str]]:
    """The unique keys of a retrieve request, for the audit row."""
    levels = LEVELS[root]
    keys = {}
    for current in levels[: levels.index(level) + 1] if level in levels else []:
        keyword = UNIQUE_KEYS[current][0]
        values = _values(identifier, keyword)
        if values:
            # Patient ID is patient data: recorded as given, not by value (AuditEvent.detail).
            keys[keyword] = ["(value)"] if keyword == "PatientID" else values
    return keys


# ---------------------------------------------------------------------------------------------
# Sending: placeholders in pynetdicom's loop, bytes read when each sub-operation goes out
# ---------------------------------------------------------------------------------------------


class Placeholder(Dataset):
    """Stands for one stored instance in pynetdicom's sub-operation loop.

    It carries the two UIDs pynetdicom reads (SOP Class for the context, SOP Instance for the
    Failed SOP Instance UID List); ``Outgoing.send`` replaces it with the real data set.
    """

    def __init__(self, match: Match):
        super().__init__()
        self.SOPClassUID = match.sop_class_uid
        self.SOPInstanceUID = match.sop_instance_uid
        self.__dict__["skylight_match"] = match


def _status(code: int) -> Dataset:
    ds = Dataset()
    ds.Status = code
    return ds


def _accepted_syntaxes(assoc: Any, sop_class_uid: str) -> set[UID]:
    return {
        UID(cx.transfer_syntax[0])
        for cx in assoc.accepted_contexts
        if cx.abstract_syntax == sop_class_uid and cx.as_scu
    }


def _copy_to_file(match: Match, target: Any) -> None:
    """Write the stored object as Part 10 with a File Meta built from the index row."""
    with object_store().open(match.storage_key, "rb") as source:
        head = source.read(HEAD_BYTES)
        offset = data_set_offset(head)
        if offset > len(head):
            raise ValueError("File Meta larger than the head read")
        target.write(
            file_meta(
                sop_class_uid=match.sop_class_uid,
                sop_instance_uid=match.sop_instance_uid,
                transfer_syntax_uid=match.transfer_syntax_uid,
            )
        )
        target.write(head[offset:])
        shutil.copyfileobj(source, target, 1024 * 1024)
    target.flush()


def _uncompressed(path: str) -> Dataset:
    """The stored object decoded, pixel data decompressed, ready to encode little endian."""
    ds = pydicom.dcmread(path)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if syntax.is_compressed:
        # To Explicit VR Little Endian with pydicom's pixel data plugins; the instance keeps its
        # UID (pydicom would make a new one by default): a change of transfer syntax is not a new
        # instance (PS3.5 10), lossy originals keep their Lossy Image Compression attributes.
        ds.decompress(generate_instance_uid=False)
    elif not syntax.is_little_endian:
        raise ValueError("big endian objects are sent only where big endian is accepted")
    elif syntax.is_deflated:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@dataclass
class Outgoing:
    """The C-STORE sub-operations of one C-MOVE or C-GET, and what became of each."""

    tenant: Tenant
    move_originator: str = ""
    completed: list[str] = field(default_factory=list)
    warning: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    decompressed: int = 0
    association: Any = None

    def attach(self, assoc: Any) -> None:
        """Route ``assoc``'s C-STORE requests through ``send`` for this retrieve."""
        self.association = assoc
        original = assoc.send_c_store

        def send_c_store(dataset: Any, *args: Any, **kwargs: Any) -> Dataset:
            return self.send(original, dataset, *args, **kwargs)

        assoc.send_c_store = send_c_store

    def send(
        self, original: Callable[..., Dataset], dataset: Any, *args: Any, **kw: Any
    ) -> Dataset:
        match = dataset.__dict__.get("skylight_match") if isinstance(dataset, Placeholder) else None
        if match is None:
            return original(dataset, *args, **kw)
        if self.move_originator and "originator_aet" in kw:
            # pynetdicom names its own AE here; PS3.7 9.1.1.1 wants the C-MOVE requestor's.
            kw["originator_aet"] = self.move_originator
        status = self._send_one(original, match, *args, **kw)
        # Counted as pynetdicom counts them for the responses: unknown or missing is a failure.
        category = STORAGE_SERVICE_CLASS_STATUS.get(status.get("Status", -1), ("Failure",))[0]
        if category == "Success":
            self.completed.append(match.sop_instance_uid)
        elif category == "Warning":
            self.warning.append(match.sop_instance_uid)
        else:
            self.failed.append(match.sop_instance_uid)
        return status

    def _send_one(
        self, original: Callable[..., Dataset], match: Match, *args: Any, **kw: Any
    ) -> Dataset:
        accepted = _accepted_syntaxes(self.association, match.sop_class_uid)
        stored = UID(match.transfer_syntax_uid or ExplicitVRLittleEndian)
        if stored not in accepted and not accepted & set(UNCOMPRESSED):
            log.info("instance %d not sent: no acceptable presentation context", match.instance_id)
            return _status(STORE_SOP_CLASS_NOT_SUPPORTED)
        try:
            with tempfile.NamedTemporaryFile(suffix=".dcm", prefix="skylight-qr-") as temp:
                _copy_to_file(match, temp)
                if stored in accepted:
                    return original(temp.name, *args, **kw)
                dataset = _uncompressed(temp.name)
                if stored.is_compressed:
                    self.decompressed += 1
                return original(dataset, *args, **kw)
        except Exception as exc:  # noqa: BLE001 - one bad object fails only its sub-operation
            # The type only: a decoder's message may quote element values.
            log.warning("instance %d not sent: %s", match.instance_id, type(exc).__name__)
            return _status(STORE_OUT_OF_RESOURCES)


def sub_association_contexts(matches: list[Match]) -> list[PresentationContext]:
    """Per SOP class: one context with the uncompressed syntaxes, one per other stored syntax.

    Separate contexts let the destination accept the stored syntax (sent byte for byte) and still
    fall back to an uncompressed one; a single context would get only the acceptor's favourite.
    """
    classes: dict[str, set[str]] = {}
    for match in matches:
        classes.setdefault(match.sop_class_uid, set()).add(
            match.transfer_syntax_uid or ExplicitVRLittleEndian
        )
    contexts = [build_context(uid, list(UNCOMPRESSED)) for uid in classes]
    for uid, syntaxes in classes.items():
        for syntax in sorted(syntaxes - set(UNCOMPRESSED)):
            contexts.append(build_context(uid, syntax))
    return contexts[:MAX_CONTEXTS]


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def _peer(event: Any) -> Any:
    return getattr(event.assoc, "skylight_peer", None)


def _study_of(matches: list[Match]) -> str:
    studies = {m.study_instance_uid for m in matches}
    return studies.pop() if len(studies) == 1 else ""


def _record(
    *,
    action: str,
    peer: Any,
    outcome: str,
    detail: dict[str, Any],
    matches: list[Match] | None = None,
) -> None:
    try:
        audit.record(
            action=action,
            actor=peer.actor,
            tenant=peer.tenant,
            outcome=outcome,
            study_instance_uid=_study_of(matches or []),
            detail=detail,
        )
    except Exception:  # noqa: BLE001 - the answer is already decided; say so loudly
        log.exception("audit row for a %s at tenant %d not written", action, peer.tenant.id)


def _outcome(outgoing: Outgoing, total: int) -> str:
    if len(outgoing.completed) == total:
        return Outcome.SUCCESS
    if outgoing.completed or outgoing.warning:
        return Outcome.WARNING
    return Outcome.FAILURE


@dataclass
class Retrieve:
    """One C-MOVE or C-GET request: what it names, or why it cannot be answered."""

    peer: Any
    action: str
    detail: dict[str, Any]
    matches: list[Match] = field(default_factory=list)
    failure: Dataset | None = None

    def record(self, outcome: str) -> None:
        _record(
            action=self.action,
            peer=self.peer,
            outcome=outcome,
            detail=self.detail,
            matches=self.matches,
        )


def _resolve(
    event: Any, *, action: str, models: dict[str, str], detail: dict[str, Any]
) -> Retrieve:
    peer = _peer(event)
    root = models[str(event.request.AffectedSOPClassUID)]
    detail["root"] = root
    retrieve = Retrieve(peer=peer, action=action, detail=detail)
    try:
        identifier = event.identifier
        level, retrieve.matches = retrieve_matches(peer.tenant, root, identifier)
    except IdentifierError as exc:
        detail["error"] = str(exc)
        retrieve.failure = _failure(exc.status, str(exc))
    except DatabaseError:
        log.exception("%s at tenant %d: index unavailable", action, peer.tenant.id)
        detail["error"] = "index unavailable"
        retrieve.failure = _failure(STATUS_UNABLE_TO_CALCULATE_MATCHES, "Index unavailable.")
    except Exception:  # noqa: BLE001 - an identifier pydicom cannot decode
        log.warning("%s at tenant %d: identifier not decodable", action, peer.tenant.id)
        detail["error"] = "identifier not decodable"
        retrieve.failure = _failure(STATUS_UNABLE_TO_PROCESS, "The identifier cannot be decoded.")
    else:
        detail.update(
            level=level,
            keys=requested_keys(identifier, level, root),
            matches=len(retrieve.matches),
        )
    return retrieve


def _suboperations(event: Any, retrieve: Retrieve, outgoing: Outgoing) -> Iterator[Any]:
    """What pynetdicom's C-MOVE/C-GET loop asks for: a count, then (status, data set) pairs."""
    if retrieve.failure is not None:
        retrieve.record(Outcome.FAILURE)
        # pynetdicom sends a failure only from its sub-operation loop: announce one
        # sub-operation, then fail the request with the status and comment.
        yield 1
        yield retrieve.failure, None
        return
    matches = retrieve.matches
    if not matches:
        retrieve.record(Outcome.SUCCESS)
        yield 0  # pynetdicom answers 0x0000 with no sub-operations and stops asking
        return
    cancelled = False
    try:
        yield len(matches)
        for match in matches:
            if event.is_cancelled:
                cancelled = True
                yield STATUS_CANCEL, None
                return
            yield STATUS_PENDING, Placeholder(match)
    finally:
        retrieve.detail.update(
            sop_instance_uids=outgoing.completed + outgoing.warning,
            failed_sop_instance_uids=outgoing.failed,
            completed=len(outgoing.completed),
            warning=len(outgoing.warning),
            failed=len(outgoing.failed),
            decompressed=outgoing.decompressed,
            cancelled=cancelled,
        )
        retrieve.record(_outcome(outgoing, len(matches)))
        log.info(
            "%s at tenant %d: %d matched, %d sent, %d failed",
            retrieve.action,
            retrieve.peer.tenant.id,
            len(matches),
            len(outgoing.completed) + len(outgoing.warning),
            len(outgoing.failed),
        )


def handle_get(event: Any) -> Iterator[Any]:
    peer = _peer(event)
    if peer is None:  # cannot happen: associations without a peer are rejected
        yield 1
        yield _failure(STATUS_UNABLE_TO_PROCESS, "No tenant."), None
        return
    retrieve = _resolve(event, action=AuditAction.DIMSE_GET, models=GET_MODELS, detail={})
    outgoing = Outgoing(tenant=peer.tenant)
    outgoing.attach(event.assoc)
    try:
        yield from _suboperations(event, retrieve, outgoing)
    finally:
        # Later requests on this association send through pynetdicom's own method again.
        event.assoc.__dict__.pop("send_c_store", None)


def move_destination(tenant: Tenant, ae_title: str) -> DicomDestination | None:
    """The tenant's enabled destination with this AE title; another tenant's is not found."""
    return DicomDestination.objects.filter(
        tenant=tenant, ae_title=ae_title.strip(), enabled=True
    ).first()


def handle_move(event: Any) -> Iterator[Any]:
    peer = _peer(event)
    title = (event.move_destination or "").strip()
    destination = move_destination(peer.tenant, title) if peer is not None and title else None
    if destination is None:
        if peer is not None:
            _record(
                action=AuditAction.DIMSE_MOVE,
                peer=peer,
                outcome=Outcome.FAILURE,
                detail={"destination": title, "error": "move destination unknown"},
            )
        yield None, None  # pynetdicom answers 0xA801, Move Destination unknown
        return
    retrieve = _resolve(
        event,
        action=AuditAction.DIMSE_MOVE,
        models=MOVE_MODELS,
        detail={"destination": destination.ae_title, "destination_id": destination.id},
    )
    outgoing = Outgoing(tenant=peer.tenant, move_originator=peer.calling_ae_title)
    calling = peer.called_ae_title

    def on_connection_open(open_event: Any) -> None:
        # Before the A-ASSOCIATE-RQ is encoded: the destination sees the tenant's AE title
        # calling (not pynetdicom's default), and its C-STOREs go through ``outgoing``.
        open_event.assoc.requestor.ae_title = calling
        open_event.assoc.requestor.primitive.calling_ae_title = calling
        outgoing.attach(open_event.assoc)

    contexts = sub_association_contexts(retrieve.matches) or [build_context(Verification)]
    yield (
        destination.host,
        destination.port,
        {"contexts": contexts, "evt_handlers": [(evt.EVT_CONN_OPEN, on_connection_open)]},
    )
    yield from _suboperations(event, retrieve, outgoing)


def handle_find(event: Any) -> Iterator[Any]:
    peer = _peer(event)
    if peer is None:  # cannot happen: associations without a peer are rejected
        yield _failure(STATUS_UNABLE_TO_PROCESS, "No tenant."), None
        return
    root = FIND_MODELS[str(event.request.AffectedSOPClassUID)]
    detail: dict[str, Any] = {"root": root}
    try:
        identifier = event.identifier
        level = _level(identifier, root)
        detail.update(level=level, keys=audit_keys(identifier))
        result = find_matches(peer.tenant, level, identifier, root=root)
    except IdentifierError as exc:
        failure = _failure(exc.status, str(exc))
    except QueryError as exc:
        failure = _failure(STATUS_IDENTIFIER_DOES_NOT_MATCH, _query_error_comment(exc))
    except DatabaseError:
        log.exception("C-FIND at tenant %d: index unavailable", peer.tenant.id)
        failure = _failure(STATUS_OUT_OF_RESOURCES, "Index unavailable; try again.")
    except Exception:  # noqa: BLE001 - an identifier pydicom cannot decode
        log.warning("C-FIND at tenant %d: identifier not decodable", peer.tenant.id)
        failure = _failure(STATUS_UNABLE_TO_PROCESS, "The identifier cannot be decoded.")
    else:
        datasets = result.datasets
        detail.update(results=len(datasets), truncated=bool(getattr(result, "truncated", False)))
        _record(action=AuditAction.DIMSE_FIND, peer=peer, outcome=Outcome.SUCCESS, detail=detail)
        for ds in datasets:
            if event.is_cancelled:
                yield STATUS_CANCEL, None
                return
            ds.QueryRetrieveLevel = level
            yield STATUS_PENDING, ds
        return
    detail["error"] = str(failure.ErrorComment)
    _record(action=AuditAction.DIMSE_FIND, peer=peer, outcome=Outcome.FAILURE, detail=detail)
    yield failure, None


def _query_error_comment(exc: Exception) -> str:
    """An ErrorComment for a key the matcher refused, naming the attribute, never its value."""
    keyword = getattr(exc, "keyword", "") or getattr(exc, "attribute", "")
    if keyword:
        return f"Cannot match on {keyword}."
    return "The identifier has a key that cannot be matched."
