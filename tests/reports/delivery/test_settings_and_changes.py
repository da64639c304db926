"""A hospital's delivery settings (its admins only), addenda delivered with their report, and the
HL7 message sent over MLLP."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import hl7
from PIL import Image

from tests.conftest import free_port, wait_for

from .helpers import FINDINGS, actor, delivery, sign_final, status_of


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 60), (20, 60, 160)).save(out, format="PNG")
    return out.getvalue()


def test_a_hospital_admin_sets_the_letterhead_and_others_find_no_such_page(
    reading: Any, indexer: Any, client: Any, tmp_path: Path
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from reports.models import DeliverySettings

    url = "/reports/delivery/settings/demo-hospital/"
    client.force_login(reading.people.alice)
    assert client.get("/reports/delivery/settings/").status_code == 302
    assert client.get(url).status_code == 200
    bad = client.post(url, {"hospital_name": "X", "webhook_url": "https://ris.example/fhir"})
    assert bad.status_code == 400
    assert "Set a secret" in bad.content.decode()
    response = client.post(
        url,
        {
            "hospital_name": "Demo Hospital Radiology",
            "address": "1 Main Street\nSpringfield",
            "fhir_enabled": "on",
            "hl7_enabled": "on",
            "logo_file": SimpleUploadedFile("logo.png", _png(), content_type="image/png"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    saved = DeliverySettings.objects.get(tenant=reading.people.demo)
    assert saved.address_lines() == ["1 Main Street", "Springfield"]
    assert bytes(saved.logo).startswith(b"\x89PNG")

    client.force_login(reading.people.charlie)  # another hospital's admin
    assert client.get(url).status_code == 404
    client.force_login(reading.bob)  # a radiologist, not an admin
    assert client.get(url).status_code == 404

    # The letterhead is on the PDF of the next report.
    version = sign_final(reading, reading.item())
    wait_for(lambda: status_of(version, "pdf") == "sent", timeout=60, what="the PDF")
    client.force_login(reading.people.alice)
    pdf = client.get(f"/reports/delivery/versions/{version.pk}/report.pdf").content
    (tmp_path / "r.pdf").write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "r.pdf"), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Demo Hospital Radiology" in text and "Springfield" in text
    assert "FINAL REPORT" in text and version.content_sha256 in text


def test_an_addendum_is_delivered_with_the_report_it_adds_to(
    reading: Any, indexer: Any, client: Any, tmp_path: Path
) -> None:
    from reports import services as reports

    bob = reading.bob
    final = sign_final(reading, reading.item())
    draft = reports.start_change(
        report=final.report, user=bob, actor=actor(bob), kind="addendum",
        sections={"findings": "Small renal cyst, benign."},
    )  # fmt: skip
    addendum = reports.sign(
        version=draft, user=bob, actor=actor(bob), status="final", password=reading.password
    )
    wait_for(lambda: status_of(addendum, "pdf") == "sent", timeout=60, what="the PDF")

    client.force_login(reading.people.alice)
    pdf = client.get(f"/reports/delivery/versions/{addendum.pk}/report.pdf").content
    (tmp_path / "a.pdf").write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "a.pdf"), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "ADDENDUM REPORT" in text
    assert FINDINGS["impression"] in text and "Small renal cyst, benign." in text

    body = json.loads(
        client.get(f"/api/reports/delivery/fhir/DiagnosticReport/{final.report_id}").content
    )
    assert body["status"] == "appended" and body["meta"]["versionId"] == str(addendum.number)
    message = hl7.parse(
        client.get(f"/api/reports/delivery/versions/{addendum.pk}/hl7").content.decode()
    )
    assert str(message.segment("OBR")[25]) == "A"
    assert any(str(s[3][0][0]) == "55107-7" for s in message.segments("OBX"))
    # The final's own delivery is untouched: its own PDF, its own status.
    assert delivery(final, "pdf").artefact_key != delivery(addendum, "pdf").artefact_key


def test_the_hl7_message_is_sent_over_mllp_when_an_interface_is_set(
    reading: Any, indexer: Any
) -> None:
    from reports.models import DeliverySettings

    port = free_port()
    received: list[str] = []
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while not data.endswith(b"\x1c\x0d"):
                data += conn.recv(65536)
            message = data.strip(b"\x0b\x1c\x0d").decode()
            received.append(message)
            control = message.split("\r")[0].split("|")[9]
            ack = (
                f"MSH|^~\\&|RIS|HOSP|SKYLIGHT|X|20260101000000||ACK|A1|P|2.5.1\rMSA|AA|{control}\r"
            )
            conn.sendall(b"\x0b" + ack.encode() + b"\x1c\x0d")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        DeliverySettings.objects.create(
            tenant=reading.people.demo, mllp_host="127.0.0.1", mllp_port=port
        )
        version = sign_final(reading, reading.item())
        wait_for(lambda: status_of(version, "hl7") == "sent", timeout=60, what="the MLLP send")
    finally:
        listener.close()
    [message] = received
    assert hl7.parse(message).segment("MSH")[10][0] == delivery(version, "hl7").artefact_uid


def test_a_correction_is_delivered_as_corrected_everywhere(
    reading: Any, indexer: Any, client: Any
) -> None:
    from reports import services as reports

    bob = reading.bob
    final = sign_final(reading, reading.item())
    draft = reports.start_change(
        report=final.report, user=bob, actor=actor(bob), kind="correction",
        sections={"impression": "Left renal stone, 4 mm."},
    )  # fmt: skip
    correction = reports.sign(
        version=draft, user=bob, actor=actor(bob), status="final", password=reading.password
    )
    wait_for(lambda: status_of(correction, "dicom") == "sent", timeout=60, what="the object")
    # A new object in the study's report series, not a change to the final's.
    assert delivery(correction, "dicom").artefact_uid != delivery(final, "dicom").artefact_uid

    client.force_login(reading.people.alice)
    body = json.loads(
        client.get(f"/api/reports/delivery/fhir/DiagnosticReport/{final.report_id}").content
    )
    assert body["status"] == "corrected" and body["conclusion"] == "Left renal stone, 4 mm."
    message = hl7.parse(
        client.get(f"/api/reports/delivery/versions/{correction.pk}/hl7").content.decode()
    )
    assert str(message.segment("OBR")[25]) == "C"
    assert {str(s[11]) for s in message.segments("OBX")} == {"C"}
