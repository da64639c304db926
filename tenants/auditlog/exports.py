"""The audit log in the forms other systems read: CSV, DICOM audit messages, FHIR AuditEvent.

DICOM PS3.15 Annex A.5 (the RFC 3881 schema as DICOM profiles it) and FHIR R4 AuditEvent describe
the same event the same way: what happened (EventID, a code of DCID 400, refined by an
EventTypeCode of DCID 401), the action (C/R/U/D/E), the outcome (0 success, 4 minor failure,
8 serious failure), who acted (ActiveParticipant / agent), which system saw it
(AuditSourceIdentification / source) and which patient and study it touched
(ParticipantObjectIdentification / entity). ``EVENT_CODES`` maps every Skylight action onto them;
our own action code travels along (an EventTypeCode of our code system) so nothing is lost.

These files contain patient IDs: they are shown to a hospital's admins only, and each export is
itself audited (AUDIT_EXPORT).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from tenants.models import ActorType, AuditAction, AuditEvent, Outcome, Tenant

DCM = "DCM"
DCM_URI = "http://dicom.nema.org/resources/ontology/DCM"
SKYLIGHT_SYSTEM = "urn:skylight:audit-action"
SKYLIGHT_CODE_SYSTEM_NAME = "SKYLIGHT"


@dataclass(frozen=True)
class Code:
    code: str
    meaning: str


# DCID 400 Audit Event ID
APPLICATION_ACTIVITY = Code("110100", "Application Activity")
AUDIT_LOG_USED = Code("110101", "Audit Log Used")
INSTANCES_ACCESSED = Code("110103", "DICOM Instances Accessed")
INSTANCES_TRANSFERRED = Code("110104", "DICOM Instances Transferred")
EXPORT = Code("110106", "Export")
PATIENT_RECORD = Code("110110", "Patient Record")
PROCEDURE_RECORD = Code("110111", "Procedure Record")
QUERY = Code("110112", "Query")
SECURITY_ALERT = Code("110113", "Security Alert")
USER_AUTHENTICATION = Code("110114", "User Authentication")
# DCID 401 Audit Event Type Code
LOGIN = Code("110122", "Login")
LOGOUT = Code("110123", "Logout")
NODE_AUTHENTICATION = Code("110126", "Node Authentication")
EMERGENCY_OVERRIDE_STARTED = Code("110127", "Emergency Override Started")
SOFTWARE_CONFIGURATION = Code("110131", "Software Configuration")
USE_OF_RESTRICTED_FUNCTION = Code("110132", "Use of Restricted Function")
SECURITY_ROLES_CHANGED = Code("110136", "Security Roles Changed")
USER_SECURITY_ATTRIBUTES_CHANGED = Code("110137", "User security Attributes Changed")


@dataclass(frozen=True)
class EventCode:
    """How one Skylight action reads as a DICOM / FHIR audit event."""

    event_id: Code
    action_code: str  # C create, R read, U update, D delete, E execute
    type_code: Code | None = None


A = AuditAction
EVENT_CODES: dict[str, EventCode] = {
    A.ASSOCIATION_ACCEPTED: EventCode(SECURITY_ALERT, "E", NODE_AUTHENTICATION),
    A.ASSOCIATION_REJECTED: EventCode(SECURITY_ALERT, "E", NODE_AUTHENTICATION),
    A.ECHO: EventCode(APPLICATION_ACTIVITY, "E"),
    A.DIMSE_STORE: EventCode(INSTANCES_TRANSFERRED, "C"),
    A.STOW_STORE: EventCode(INSTANCES_TRANSFERRED, "C"),
    A.INDEX: EventCode(INSTANCES_ACCESSED, "C"),
    A.DUPLICATE: EventCode(INSTANCES_ACCESSED, "C"),
    A.REPLACE: EventCode(INSTANCES_ACCESSED, "U"),
    A.SUPERSEDED: EventCode(INSTANCES_ACCESSED, "U"),
    A.UNREADABLE: EventCode(INSTANCES_ACCESSED, "C"),
    A.STUDY_READY: EventCode(APPLICATION_ACTIVITY, "E"),
    A.QIDO_QUERY: EventCode(QUERY, "E"),
    A.DIMSE_FIND: EventCode(QUERY, "E"),
    A.STUDY_LIST: EventCode(QUERY, "E"),
    A.RECEIPT_LIST: EventCode(QUERY, "E"),
    A.WORKLIST_LIST: EventCode(QUERY, "E"),
    A.CRITICAL_LIST: EventCode(QUERY, "E"),
    A.WADO_RETRIEVE: EventCode(INSTANCES_TRANSFERRED, "R"),
    A.DIMSE_MOVE: EventCode(INSTANCES_TRANSFERRED, "R"),
    A.DIMSE_GET: EventCode(INSTANCES_TRANSFERRED, "R"),
    A.STUDY_VIEW: EventCode(INSTANCES_ACCESSED, "R"),
    A.VIEWER_OPEN: EventCode(INSTANCES_ACCESSED, "R"),
    A.ITEM_VIEW: EventCode(PROCEDURE_RECORD, "R"),
    A.REPORT_VIEW: EventCode(PATIENT_RECORD, "R"),
    A.RESULT_VIEW: EventCode(PATIENT_RECORD, "R"),
    A.EVIDENCE_VIEW: EventCode(PATIENT_RECORD, "R"),
    A.REPORT_DRAFT_SAVE: EventCode(PATIENT_RECORD, "U"),
    A.REPORT_SIGN: EventCode(PATIENT_RECORD, "U"),
    A.REPORT_ADDENDUM: EventCode(PATIENT_RECORD, "C"),
    A.REPORT_CORRECTION: EventCode(PATIENT_RECORD, "U"),
    A.REPORT_DISCARD: EventCode(PATIENT_RECORD, "D"),
    A.REPORT_REVISE: EventCode(PATIENT_RECORD, "U"),
    A.REPORT_EXPORT: EventCode(EXPORT, "R"),
    A.DELIVERY_SEND: EventCode(EXPORT, "R"),
    A.DELIVERY_RETRY: EventCode(EXPORT, "R"),
    A.TOKEN_ISSUED: EventCode(SECURITY_ALERT, "E", USER_SECURITY_ATTRIBUTES_CHANGED),
    # Added by the authentication work (tenants 0009); mapped here by its value.
    "token.revoked": EventCode(SECURITY_ALERT, "E", USER_SECURITY_ATTRIBUTES_CHANGED),
    A.CREDENTIAL_CHANGE: EventCode(SECURITY_ALERT, "E", USER_SECURITY_ATTRIBUTES_CHANGED),
    A.MEMBERSHIP_ADD: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.MEMBERSHIP_REMOVE: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.AGREEMENT_ADD: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.SETTINGS_CHANGE: EventCode(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION),
    A.TEMPLATE_CHANGE: EventCode(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION),
    A.ACCESS_DENIED: EventCode(SECURITY_ALERT, "E", USE_OF_RESTRICTED_FUNCTION),
    A.BREAK_GLASS: EventCode(SECURITY_ALERT, "E", EMERGENCY_OVERRIDE_STARTED),
    A.LOGIN: EventCode(USER_AUTHENTICATION, "E", LOGIN),
    A.LOGIN_FAILED: EventCode(USER_AUTHENTICATION, "E", LOGIN),
    A.LOGOUT: EventCode(USER_AUTHENTICATION, "E", LOGOUT),
    A.AUDIT_VIEW: EventCode(AUDIT_LOG_USED, "R"),
    A.AUDIT_EXPORT: EventCode(AUDIT_LOG_USED, "R"),
    A.ITEM_CREATED: EventCode(PROCEDURE_RECORD, "C"),
    # Onboarding and administration (issue 8)
    A.TENANT_CREATE: EventCode(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION),
    A.GROUP_CREATE: EventCode(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION),
    A.INVITE_SEND: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.INVITE_ACCEPT: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.INVITE_REVOKE: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.USER_DEACTIVATE: EventCode(SECURITY_ALERT, "E", USER_SECURITY_ATTRIBUTES_CHANGED),
    A.USER_REACTIVATE: EventCode(SECURITY_ALERT, "E", USER_SECURITY_ATTRIBUTES_CHANGED),
    A.ROLE_CHANGE: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.USERS_IMPORT: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.ECHO_TEST: EventCode(APPLICATION_ACTIVITY, "E"),
    A.AGREEMENT_CHANGE: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.AGREEMENT_END: EventCode(SECURITY_ALERT, "E", SECURITY_ROLES_CHANGED),
    A.SHIFT_CHANGE: EventCode(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION),
    A.CREDENTIAL_REMINDER: EventCode(APPLICATION_ACTIVITY, "E"),
    A.RETENTION_PURGE: EventCode(INSTANCES_ACCESSED, "D"),
    A.DEID_EXPORT: EventCode(EXPORT, "R"),
    A.USAGE_VIEW: EventCode(APPLICATION_ACTIVITY, "E"),
}
# Everything else that changes a work item, a consult, a comment or a critical result updates a
# procedure or patient record; anything unlisted is plain application activity.
_PREFIXES = (
    ("worklist.item.", EventCode(PROCEDURE_RECORD, "U")),
    ("report.review.", EventCode(PATIENT_RECORD, "U")),
    ("consult.", EventCode(PATIENT_RECORD, "U")),
    ("comment.", EventCode(PATIENT_RECORD, "C")),
    ("critical.", EventCode(PATIENT_RECORD, "U")),
    # A share link reads a study on someone's behalf (made, opened, locked, revoked, granted).
    ("share.", EventCode(PATIENT_RECORD, "R")),
)
OUTCOME_CODES: dict[str, str] = {Outcome.SUCCESS: "0", Outcome.WARNING: "4", Outcome.FAILURE: "8"}


def event_code(action: str) -> EventCode:
    if action in EVENT_CODES:
        return EVENT_CODES[action]
    for prefix, code in _PREFIXES:
        if action.startswith(prefix):
            return code
    return EventCode(APPLICATION_ACTIVITY, "E")


@dataclass(frozen=True)
class Row:
    """One audit event with what the exports add: the patient ID its patient_ref/study names."""

    event: AuditEvent
    patient_id: str
    issuer: str


def with_patients(tenant: Tenant, events: Sequence[AuditEvent]) -> list[Row]:
    """Attach patient IDs in two queries, both inside ``tenant``."""
    from studies.models import Patient, Study

    refs = {e.patient_ref for e in events if e.patient_ref}
    uids = {e.study_instance_uid for e in events if e.study_instance_uid and not e.patient_ref}
    by_uid: dict[str, int] = {}
    if uids:
        by_uid = dict(
            Study.objects.filter(tenant=tenant, study_instance_uid__in=uids).values_list(
                "study_instance_uid", "patient_id"
            )
        )
    patients = {
        pk: (pid, issuer)
        for pk, pid, issuer in Patient.objects.filter(
            tenant=tenant, id__in=refs | set(by_uid.values())
        ).values_list("id", "patient_id", "issuer_of_patient_id")
    }
    rows = []
    for e in events:
        ref = e.patient_ref or by_uid.get(e.study_instance_uid)
        pid, issuer = patients.get(ref, ("", "")) if ref else ("", "")
        rows.append(Row(e, pid, issuer))
    return rows


def _who(event: AuditEvent) -> str:
    if event.actor_user_id:
        return event.actor_user.username  # type: ignore[union-attr]
    if event.actor_ae_title:
        return event.actor_ae_title
    return str(event.detail.get("username", "")) or event.actor_type


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id", "occurred_at", "seq", "action", "outcome", "actor_type", "user", "token", "ae_title",
    "source_address", "patient_id", "issuer_of_patient_id", "study_instance_uid",
    "series_instance_uid", "sop_instance_uid", "request_id", "hash",
)  # fmt: skip


def _cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: Iterable[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        e = row.event
        writer.writerow(
            _cell(v)
            for v in (
                e.id,
                e.occurred_at.isoformat(),
                e.seq,
                e.action,
                e.outcome,
                e.actor_type,
                e.actor_user.username if e.actor_user_id else "",  # type: ignore[union-attr]
                e.actor_token.prefix if e.actor_token_id else "",  # type: ignore[union-attr]
                e.actor_ae_title,
                e.source_address,
                row.patient_id,
                row.issuer,
                e.study_instance_uid,
                e.series_instance_uid,
                e.sop_instance_uid,
                e.request_id,
                e.hash,
            )  # fmt: skip
        )
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# DICOM PS3.15 A.5 audit messages
# ---------------------------------------------------------------------------------------------


def _coded(parent: ET.Element, tag: str, code: Code, scheme: str = DCM) -> None:
    ET.SubElement(
        parent, tag, {"csd-code": code.code, "codeSystemName": scheme, "originalText": code.meaning}
    )


def audit_message(row: Row, tenant: Tenant) -> ET.Element:
    """One AuditMessage (DICOM PS3.15 A.5.1) for one audit row."""
    e = row.event
    codes = event_code(e.action)
    message = ET.Element("AuditMessage")
    identification = ET.SubElement(
        message,
        "EventIdentification",
        {
            "EventActionCode": codes.action_code,
            "EventDateTime": e.occurred_at.isoformat(),
            "EventOutcomeIndicator": OUTCOME_CODES.get(e.outcome, "8"),
        },
    )
    _coded(identification, "EventID", codes.event_id)
    if codes.type_code:
        _coded(identification, "EventTypeCode", codes.type_code)
    _coded(
        identification,
        "EventTypeCode",
        Code(e.action, e.get_action_display()),
        SKYLIGHT_CODE_SYSTEM_NAME,
    )
    participant = {"UserID": _who(e), "UserIsRequestor": "true"}
    if e.actor_user_id and e.actor_user.display_name:  # type: ignore[union-attr]
        participant["UserName"] = e.actor_user.display_name  # type: ignore[union-attr]
    if e.actor_token_id:
        participant["AlternativeUserID"] = f"token:{e.actor_token.prefix}"  # type: ignore[union-attr]
    if e.source_address:
        participant["NetworkAccessPointID"] = str(e.source_address)
        participant["NetworkAccessPointTypeCode"] = "2"  # IP address
    ET.SubElement(message, "ActiveParticipant", participant)
    source = ET.SubElement(
        message, "AuditSourceIdentification", {"AuditSourceID": f"skylight/{tenant.slug}"}
    )
    _coded(source, "AuditSourceTypeCode", Code("4", "Application Server"), "DCM")
    if row.patient_id:
        patient = ET.SubElement(
            message,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": row.patient_id,
                "ParticipantObjectTypeCode": "1",  # Person
                "ParticipantObjectTypeCodeRole": "1",  # Patient
            },
        )
        _coded(patient, "ParticipantObjectIDTypeCode", Code("2", "Patient Number"), "RFC-3881")
    if e.study_instance_uid:
        study = ET.SubElement(
            message,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": e.study_instance_uid,
                "ParticipantObjectTypeCode": "2",  # System Object
                "ParticipantObjectTypeCodeRole": "3",  # Report (DICOM uses it for a study)
            },
        )
        _coded(study, "ParticipantObjectIDTypeCode", Code("110180", "Study Instance UID"))
    return message


def to_dicom_xml(rows: Iterable[Row], tenant: Tenant) -> bytes:
    """Audit messages, one per row, inside an ``AuditMessages`` element (a file of many)."""
    root = ET.Element("AuditMessages")
    for row in rows:
        root.append(audit_message(row, tenant))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# ---------------------------------------------------------------------------------------------
# FHIR R4 AuditEvent
# ---------------------------------------------------------------------------------------------


def _coding(code: Code, system: str = DCM_URI) -> dict[str, str]:
    return {"system": system, "code": code.code, "display": code.meaning}


def fhir_audit_event(row: Row, tenant: Tenant) -> dict[str, Any]:
    """One FHIR R4 AuditEvent for one audit row (the DICOM mapping, per FHIR's own table)."""
    e = row.event
    codes = event_code(e.action)
    subtype = [_coding(codes.type_code)] if codes.type_code else []
    subtype.append(_coding(Code(e.action, e.get_action_display()), SKYLIGHT_SYSTEM))
    agent: dict[str, Any] = {
        "who": {"identifier": {"value": _who(e)}},
        "requestor": True,
    }
    if e.actor_user_id:
        agent["who"]["display"] = str(e.actor_user)
    if e.actor_token_id:
        agent["altId"] = f"token:{e.actor_token.prefix}"  # type: ignore[union-attr]
    if e.actor_type == ActorType.AE:
        agent["type"] = {
            "coding": [_coding(Code("110153", "Source Role ID"))],
        }
    if e.source_address:
        agent["network"] = {"address": str(e.source_address), "type": "2"}
    entities: list[dict[str, Any]] = []
    if row.patient_id:
        identifier = {"value": row.patient_id}
        if row.issuer:
            identifier["assigner"] = {"display": row.issuer}  # type: ignore[assignment]
        entities.append(
            {
                "what": {"identifier": identifier},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    if e.study_instance_uid:
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": "urn:dicom:uid",
                        "value": f"urn:oid:{e.study_instance_uid}",
                    }
                },
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "3",
                    "display": "Report",
                },
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(e.id),
        "type": _coding(codes.event_id),
        "action": codes.action_code,
        "recorded": e.occurred_at.isoformat(),
        "outcome": OUTCOME_CODES.get(e.outcome, "8"),
        "agent": [agent],
        "source": {
            "site": tenant.slug,
            "observer": {"display": "Skylight"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if subtype:
        resource["subtype"] = subtype
    if entities:
        resource["entity"] = entities
    return resource


def to_fhir_bundle(rows: Iterable[Row], tenant: Tenant) -> str:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": fhir_audit_event(row, tenant)} for row in rows],
    }
    return json.dumps(bundle, ensure_ascii=False, indent=1)
