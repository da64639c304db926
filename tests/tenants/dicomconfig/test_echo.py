"""The connection test: Skylight C-ECHOes a registered node and says plainly what happened."""

from __future__ import annotations

from django.test import Client

from tenants import services
from tenants.models import AuditAction, AuditEvent, Outcome
from tests.conftest import free_port


def _echo(client: Client, node_id: int, slug: str = "demo-hospital") -> tuple[int, str]:
    answer = client.post(f"/t/{slug}/setup/dicom/echo/{node_id}/", HTTP_HX_REQUEST="true")
    return answer.status_code, answer.content.decode()


def test_the_echo_reaches_a_listening_pacs_and_is_audited(alice, people, hospital_pacs):
    node = services.register_destination(
        tenant=people.demo, ae_title="HOSPPACS", host="127.0.0.1", port=hospital_pacs
    )
    status, text = _echo(alice, node.pk)
    assert status == 200
    assert "Success: HOSPPACS at 127.0.0.1" in text
    event = AuditEvent.objects.get(action=AuditAction.ECHO_TEST)
    assert event.tenant == people.demo and event.actor_user == people.alice
    assert event.outcome == Outcome.SUCCESS
    assert event.detail["result"] == "success" and event.detail["destination"] == "HOSPPACS"


def test_a_pacs_that_does_not_know_the_called_ae_rejects_in_words(alice, people, hospital_pacs):
    node = services.register_destination(
        tenant=people.demo, ae_title="WRONGAE", host="127.0.0.1", port=hospital_pacs
    )
    status, text = _echo(alice, node.pk)
    assert status == 200 and "Association rejected: called AE not recognised." in text
    event = AuditEvent.objects.get(action=AuditAction.ECHO_TEST)
    assert event.outcome == Outcome.FAILURE and event.detail["result"] == "rejected"


def test_a_closed_port_is_refused(alice, people):
    closed = free_port()  # bound and released: nothing listens there
    node = services.register_destination(
        tenant=people.demo, ae_title="DEADPACS", host="127.0.0.1", port=closed
    )
    status, text = _echo(alice, node.pk)
    assert status == 200
    assert f"Refused: nothing accepts connections on 127.0.0.1:{closed}." in text
    assert AuditEvent.objects.get(action=AuditAction.ECHO_TEST).detail["result"] == "refused"


def test_skylight_echoes_its_own_scp_and_an_unknown_title_is_rejected(alice, people, skylight_port):
    """Skylight's SCP as a stand-in for any PACS: the called AE title decides."""
    good = services.register_destination(
        tenant=people.demo, ae_title="DEMOHOSP", host="localhost", port=skylight_port
    )
    assert "Success" in _echo(alice, good.pk)[1]
    bad = services.register_destination(
        tenant=people.demo, ae_title="NOSUCHAE", host="127.0.0.1", port=skylight_port
    )
    assert "Association rejected: called AE not recognised." in _echo(alice, bad.pk)[1]


def test_a_link_local_address_is_not_called(alice, people):
    node = services.register_destination(
        tenant=people.demo, ae_title="METADATA", host="169.254.169.254", port=80
    )
    text = _echo(alice, node.pk)[1]
    assert "Not tested: that address is link-local" in text


def test_another_hospitals_node_is_not_found_and_nothing_is_sent(people, hospital_pacs):
    theirs = services.register_destination(
        tenant=people.second, ae_title="HOSPPACS", host="127.0.0.1", port=hospital_pacs
    )
    alice = Client()
    alice.force_login(people.alice)
    assert _echo(alice, theirs.pk)[0] == 404  # through her own hospital's URL
    assert _echo(alice, theirs.pk, slug="second-hospital")[0] == 404
    assert not AuditEvent.objects.filter(action=AuditAction.ECHO_TEST).exists()
    assert alice.get(f"/t/demo-hospital/setup/dicom/echo/{theirs.pk}/").status_code == 405


def test_without_htmx_the_result_comes_back_as_a_message_on_the_page(alice, people):
    node = services.register_destination(
        tenant=people.demo, ae_title="DEADPACS", host="127.0.0.1", port=free_port()
    )
    page = alice.post(
        f"/t/demo-hospital/setup/dicom/echo/{node.pk}/", {"back": "destinations"}, follow=True
    )
    assert page.redirect_chain[-1][0] == "/t/demo-hospital/setup/destinations/"
    assert "Refused: nothing accepts connections" in page.content.decode()


def test_a_peer_that_accepts_the_connection_but_never_answers_timed_out(alice, people):
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever reads it
        node = services.register_destination(
            tenant=people.demo, ae_title="SILENT", host="127.0.0.1", port=silent.getsockname()[1]
        )
        text = _echo(alice, node.pk)[1]
    assert "Timed out: 127.0.0.1:" in text and "did not answer the association request" in text
    assert AuditEvent.objects.get(action=AuditAction.ECHO_TEST).detail["result"] == "timeout"
