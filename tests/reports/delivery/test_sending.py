"""Sending: the webhook retried until accepted and delivered once, C-STORE to the hospital's PACS,
"retry now", and what a preliminary report sends. The real Celery worker sends (production mode).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import free_port, wait_for

from .helpers import actor, delivery, real_item, sign_final, status_of

SECRET = "s3cret-for-tests"


@dataclass
class Endpoint:
    """A FHIR receiver on loopback that fails its first ``failures`` POSTs with 503."""

    url: str
    failures: int = 2
    refuse_with: int = 503
    posts: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    port = free_port()
    state = Endpoint(url=f"http://127.0.0.1:{port}/fhir/DiagnosticReport")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.posts.append({"headers": dict(self.headers), "body": body})
                fail = len(state.posts) <= state.failures
                if not fail:
                    state.accepted += 1
            self.send_response(state.refuse_with if fail else 201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()


def _settings(tenant: Any, **values: Any) -> Any:
    from reports.models import DeliverySettings

    return DeliverySettings.objects.create(tenant=tenant, **values)


def test_the_webhook_is_retried_until_accepted_and_delivered_once(
    reading: Any, indexer: Any, endpoint: Endpoint
) -> None:
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    from reports.delivery import services

    _settings(reading.people.demo, webhook_url=endpoint.url, webhook_secret=SECRET)
    version = sign_final(reading, reading.item())  # a study without stored instances
    wait_for(lambda: status_of(version, "fhir") == "sent", timeout=120, what="the webhook")

    row = delivery(version, "fhir")
    assert endpoint.accepted == 1 and len(endpoint.posts) == 3
    assert row.attempts == 3 and row.last_error == ""
    keys = {p["headers"]["Idempotency-Key"] for p in endpoint.posts}
    assert keys == {str(row.idempotency_key)}  # every attempt is recognisably the same delivery
    bodies = {p["body"] for p in endpoint.posts}
    assert len(bodies) == 1
    [body] = bodies
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert {p["headers"]["X-Skylight-Signature"] for p in endpoint.posts} == {expected}
    assert endpoint.posts[0]["headers"]["Content-Type"] == "application/fhir+json"
    resource = DiagnosticReport.model_validate(json.loads(body))
    assert resource.status == "final"

    # The task redelivered, the signal sent again: nothing is POSTed again.
    assert services.deliver(tenant_id=version.tenant_id, delivery_id=row.pk) == "sent"
    services.start(version)
    from reports.delivery.tasks import deliver

    deliver.apply(args=(version.tenant_id, row.pk))
    assert len(endpoint.posts) == 3 and endpoint.accepted == 1
    assert delivery(version, "fhir").attempts == 3


def test_a_refused_webhook_fails_and_its_author_retries_it_now(
    reading: Any, indexer: Any, endpoint: Endpoint, client: Any
) -> None:
    endpoint.failures, endpoint.refuse_with = 1, 400
    _settings(reading.people.demo, webhook_url=endpoint.url, webhook_secret=SECRET)
    item = reading.item()
    version = sign_final(reading, item)
    wait_for(lambda: status_of(version, "fhir") == "failed", timeout=60, what="the refusal")
    row = delivery(version, "fhir")
    assert row.attempts == 1  # a 400 is not retried on its own
    assert "HTTP 400" in row.last_error and "check its URL and secret" in row.last_error

    client.force_login(reading.bob)
    panel = client.get(f"/reports/delivery/items/{item.pk}/panel/").content.decode()
    assert 'data-channel="fhir" data-status="failed"' in panel and "Retry now" in panel

    client.force_login(reading.people.charlie)
    assert client.post(f"/api/reports/delivery/deliveries/{row.pk}/retry").status_code == 404
    client.force_login(reading.dave)  # a radiologist who may not read this study
    assert client.post(f"/api/reports/delivery/deliveries/{row.pk}/retry").status_code == 404

    client.force_login(reading.bob)
    response = client.post(f"/api/reports/delivery/deliveries/{row.pk}/retry")
    assert response.status_code == 202, response.content
    wait_for(lambda: status_of(version, "fhir") == "sent", timeout=60, what="the retry")
    assert endpoint.accepted == 1
    again = client.post(f"/api/reports/delivery/deliveries/{row.pk}/retry")
    assert again.status_code == 409
    assert again.json()["detail"] == "Only a failed delivery can be retried; this one is sent."


def test_the_report_object_is_sent_to_the_hospitals_pacs(reading: Any, indexer: Any) -> None:
    from pynetdicom import AE, evt

    from tenants.models import DicomDestination

    received: list[Any] = []

    def on_store(event: Any) -> int:
        received.append((event.assoc.requestor.ae_title, event.dataset))
        return 0x0000

    port = free_port()
    ae = AE(ae_title="HOSPPACS")
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.104.1")
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        destination = DicomDestination.objects.create(
            tenant=reading.people.demo, ae_title="HOSPPACS", host="127.0.0.1", port=port
        )
        _settings(reading.people.demo, pacs_destination=destination)
        item, ds = real_item(reading)
        version = sign_final(reading, item)
        wait_for(lambda: status_of(version, "pacs") == "sent", timeout=120, what="the C-STORE")
    finally:
        server.shutdown()
    [(calling, obj)] = received
    assert calling == "DEMOHOSP"  # the hospital's own AE title calls its PACS
    assert obj.SOPInstanceUID == delivery(version, "dicom").artefact_uid
    assert obj.StudyInstanceUID == ds.StudyInstanceUID
    assert bytes(obj.EncapsulatedDocument).startswith(b"%PDF")


def test_a_preliminary_goes_to_the_hospitals_systems_but_not_into_the_archive(
    reading: Any, indexer: Any
) -> None:
    from reports import services as reports
    from worklists import services

    bob = reading.bob
    item = reading.item()
    services.claim(item, bob, actor(bob))
    draft = reports.save_draft(
        item=item, user=bob, actor=actor(bob), sections={"impression": "Preliminary: normal."}
    )
    version = reports.sign(
        version=draft, user=bob, actor=actor(bob), status="preliminary", password=reading.password
    )
    wait_for(lambda: status_of(version, "pdf") == "sent", timeout=60, what="the PDF")
    assert status_of(version, "dicom") == "skipped"
    assert status_of(version, "pacs") == "skipped"
    assert status_of(version, "fhir") == "skipped"  # no webhook set
    wait_for(lambda: status_of(version, "hl7") == "skipped", timeout=60, what="the HL7 message")
    assert delivery(version, "hl7").artefact_uid  # built and kept for the API


def test_a_delivery_whose_worker_died_while_sending_is_sent_again_by_the_sweep(
    reading: Any, indexer: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from reports.delivery import services
    from reports.models import Delivery

    version = sign_final(reading, reading.item())
    wait_for(lambda: status_of(version, "pdf") == "sent", timeout=60, what="the PDF")
    row = delivery(version, "pdf")
    # As a worker that died after claiming the row leaves it: sending, under its lease.
    Delivery.objects.filter(pk=row.pk).update(
        status="sending", lease_until=timezone.now() + timedelta(minutes=5)
    )
    assert services.sweep() == 0  # the lease is live: somebody may still be sending
    assert services.deliver(tenant_id=row.tenant_id, delivery_id=row.pk) == "sending"
    # The lease runs out (the worker is gone for good).
    Delivery.objects.filter(pk=row.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.sweep() == 1
    wait_for(lambda: status_of(version, "pdf") == "sent", timeout=60, what="the resend")
    assert delivery(version, "pdf").attempts == row.attempts + 1
