"""The report as an HL7 v2.5.1 ORU^R01 message, and its sending over MLLP.

A small builder rather than a library: an ORU^R01 of a radiology report is four segment types, and
what matters is escaping every value (``|^~\\&`` and line breaks) and putting each field where
v2.5.1 chapter 7 says; a test parses the message back with python-hl7. Segments end with CR.

- MSH-10 (message control ID) is derived from the version, so a resend is recognisably the same.
- OBR-25 is the report's status (``HL7_OBR25``); OBX-11 each line's (P, F or C).
- One OBX of type TX per line, OBX-3 the section's LOINC code (the codes of DICOM PS3.20's
  imaging report sections), OBX-4 the section's number.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from ..models import HL7_OBR25, SECTIONS, Kind, ReportStatus
from .content import SECTION_TITLES, Document

SECTION_CODES = {
    "clinical_information": "55752-0",
    "technique": "55111-9",
    "comparison": "18834-2",
    "findings": "59776-5",
    "impression": "19005-8",
}
ADDENDUM_CODE = "55107-7"


def escape(value: str) -> str:
    """A value with HL7's delimiters escaped (v2.5.1 2.7.1); the escape character first."""
    value = value.replace("\\", "\\E\\")
    for char, sequence in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        value = value.replace(char, sequence)
    return value.replace("\r", "").replace("\n", "\\.br\\")


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def _xpn(dicom_name: str) -> str:
    """DICOM PN (family^given^middle^prefix^suffix) as HL7 XPN (family^given^middle^suffix^prefix)."""
    parts = (dicom_name.split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (escape(p) for p in parts)
    return "^".join([family, given, middle, suffix, prefix]).rstrip("^")


def control_id(doc: Document) -> str:
    return f"SKY{doc.version.tenant_id}-{doc.version.pk}"


def oru_r01(doc: Document, *, receiving_application: str = "", receiving_facility: str = "") -> str:
    """The ORU^R01 message of a signed version (segments separated by CR)."""
    version, study, patient, tenant = doc.version, doc.study, doc.patient, doc.tenant
    assert version.signed_at and study and patient and tenant
    signed = _ts(version.signed_at)
    obr25 = HL7_OBR25[ReportStatus(doc.report_status)]
    line_status = {"P": "P", "C": "C"}.get(obr25, "F")
    sex = patient.patient_sex if patient.patient_sex in ("M", "F", "O") else "U"
    pid3 = escape(patient.patient_id)
    if patient.issuer_of_patient_id:
        pid3 += "^^^" + escape(patient.issuer_of_patient_id)
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                "SKYLIGHT",
                escape(tenant.slug),
                escape(receiving_application),
                escape(receiving_facility),
                signed,
                "",
                "ORU^R01^ORU_R01",
                control_id(doc),
                "P",
                "2.5.1",
                "",
                "",
                "AL",
                "NE",
                "",
                "UNICODE UTF-8",
            ]
        ),  # fmt: skip
        "|".join(
            [
                "PID",
                "1",
                "",
                pid3,
                "",
                _xpn(patient.patient_name),
                "",
                patient.patient_birth_date.strftime("%Y%m%d") if patient.patient_birth_date else "",
                sex,
            ]
        ),  # fmt: skip
    ]
    obr = [""] * 33
    obr[0] = "OBR"
    obr[1] = "1"
    obr[2] = escape(f"{version.report_id}")  # placer: our report
    obr[3] = escape(study.accession_number)  # filler: the hospital's accession number
    obr[4] = "18748-4^Diagnostic imaging study^LN"
    obr[7] = study.study_date.strftime("%Y%m%d") if study.study_date else ""
    obr[16] = _xpn(study.referring_physician_name)
    if obr[16]:
        obr[16] = "^" + obr[16]  # XCN: ID number first, then the name
    obr[22] = signed
    obr[24] = "RAD"
    obr[25] = obr25
    obr[32] = f"{version.signed_by_id}&{escape(str(version.signed_by or '')).replace('&', '')}"
    segments.append("|".join(obr).rstrip("|"))
    n = 0

    def obx(code: str, title: str, sub_id: int, line: str, when: str, status: str) -> None:
        nonlocal n
        n += 1
        segments.append(
            "|".join(
                [
                    "OBX",
                    str(n),
                    "TX",
                    f"{code}^{escape(title)}^LN",
                    str(sub_id),
                    escape(line),
                    "",
                    "",
                    "",
                    "",
                    "",
                    status,
                    "",
                    "",
                    when,
                ]
            )  # fmt: skip
        )

    for index, name in enumerate(SECTIONS, start=1):
        text = getattr(doc.base, name).strip()
        for line in text.splitlines() or []:
            obx(SECTION_CODES[name], SECTION_TITLES[name], index, line, signed, line_status)
    for index, addendum in enumerate(doc.addenda, start=len(SECTIONS) + 1):
        assert addendum.kind == Kind.ADDENDUM and addendum.signed_at
        for line in doc.addendum_text(addendum).splitlines():
            obx(ADDENDUM_CODE, "Addendum", index, line, _ts(addendum.signed_at), "F")
    return "\r".join(segments) + "\r"


# ---------------------------------------------------------------------------------------------
# MLLP (HL7 v2 minimal lower layer protocol): <VT> message <FS><CR>, answered by an ACK.
# ---------------------------------------------------------------------------------------------

START, END = b"\x0b", b"\x1c\x0d"


class MllpFailed(Exception):
    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


def send_mllp(host: str, port: int, message: str, *, timeout: float = 30) -> None:
    """Send one message and wait for its ACK; raise MllpFailed unless MSA-1 is AA or CA."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(START + message.encode("utf-8") + END)
            answer = b""
            while not answer.endswith(END):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        raise MllpFailed(
            f"The HL7 interface at {host}:{port} could not be reached; it will be retried.",
            transient=True,
        ) from None
    text = answer.strip(START + END).decode("utf-8", "replace")
    msa = next((s for s in text.split("\r") if s.startswith("MSA|")), "")
    code = msa.split("|")[1] if "|" in msa else ""
    if code in ("AA", "CA"):
        return
    raise MllpFailed(
        f"The HL7 interface at {host}:{port} did not accept the message (MSA-1 {code or 'missing'}).",
        transient=code in ("", "AE", "CE"),
    )
