"""The destinations page: C-MOVE destinations with their checks, and the report destinations."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tenants import services
from tenants.models import AuditAction, AuditEvent, DicomDestination

URL = "/t/demo-hospital/setup/destinations/"


def _state() -> tuple[Any, ...]:
    return (
        sorted(
            DicomDestination.objects.values_list("tenant_id", "ae_title", "host", "port", "enabled")
        ),
        AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count(),
    )


def _new(**values: str) -> dict[str, str]:
    data = {"op": "add", "new-ae_title": "WS1", "new-host": "10.20.3.4", "new-port": "104"}
    data.update({f"new-{k}": v for k, v in values.items()})
    data["new-enabled"] = "on"
    return data


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"port": "0"}, "Port: Enter a port from 1 to 65535."),
        ({"port": "70000"}, "Port: Enter a port from 1 to 65535."),
        ({"port": "abc"}, "Port: Enter a port from 1 to 65535."),
        ({"ae_title": "C" * 17}, "AE title: An AE title has at most 16 characters."),
        ({"host": "pacs.example:104"}, "Host: Enter a host name"),
        ({"host": ""}, "Host: This field is required."),
    ],
)
def test_a_bad_destination_is_a_form_error_and_changes_nothing(alice, people, values, message):
    before = _state()
    answer = alice.post(URL, _new(**values))
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert _state() == before


def test_a_destination_is_added_edited_disabled_and_removed(alice, people):
    assert alice.post(URL, _new(description="reading station")).status_code == 302
    node = DicomDestination.objects.get(tenant=people.demo, ae_title="WS1")
    assert (node.host, node.port, node.enabled) == ("10.20.3.4", 104, True)
    # The same title again is a form error.
    before = _state()
    twice = alice.post(URL, _new())
    assert (
        twice.status_code == 400
        and "Another destination is called WS1 already." in twice.content.decode()
    )
    assert _state() == before
    p = f"d{node.pk}"
    edited = alice.post(
        URL,
        {
            "op": "edit",
            "id": node.pk,
            f"{p}-ae_title": "WS1",
            f"{p}-host": "ws1.hospital.example",
            f"{p}-port": "11112",
            f"{p}-description": "",
        },
    )
    assert edited.status_code == 302
    node.refresh_from_db()
    assert (node.host, node.port, node.enabled) == ("ws1.hospital.example", 11112, False)
    last = AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).latest("id")
    assert last.detail["settings"] == "destinations"
    assert set(last.detail["fields"]) == {
        "move_destinations.host",
        "move_destinations.port",
        "move_destinations.description",
        "move_destinations.enabled",
    }
    assert alice.post(URL, {"op": "remove", "id": node.pk}).status_code == 302
    assert not DicomDestination.objects.filter(tenant=people.demo).exists()


def test_the_pacs_cannot_be_removed_here_and_report_destinations_are_linked(alice, people):
    alice.post(
        "/t/demo-hospital/setup/dicom/",
        {"op": "pacs", "ae_title": "HOSPPACS", "host": "10.0.0.5", "port": "104"},
    )
    pacs = DicomDestination.objects.get(tenant=people.demo)
    page = alice.get(URL).content.decode()
    assert "(the PACS)" in page
    assert "Final reports are C-STOREd to the PACS HOSPPACS at 10.0.0.5:104." in page
    assert 'href="/reports/delivery/settings/demo-hospital/"' in page
    before = _state()
    refused = alice.post(URL, {"op": "remove", "id": pacs.pk})
    assert refused.status_code == 400 and "is the hospital&#x27;s PACS" in refused.content.decode()
    assert _state() == before


def test_another_hospitals_destination_is_not_found(people):
    theirs = services.register_destination(
        tenant=people.second, ae_title="THEIRS", host="10.9.9.9", port=104
    )
    alice = Client()
    alice.force_login(people.alice)
    before = _state()
    assert alice.post(URL, {"op": "remove", "id": theirs.pk}).status_code == 404
    p = f"d{theirs.pk}"
    assert (
        alice.post(
            URL,
            {
                "op": "edit",
                "id": theirs.pk,
                f"{p}-ae_title": "MINE",
                f"{p}-host": "10.0.0.1",
                f"{p}-port": "104",
            },
        ).status_code
        == 404
    )
    charlie = Client()
    charlie.force_login(people.charlie)
    assert charlie.get(URL).status_code == 404
    assert "THEIRS" not in alice.get(URL).content.decode()
    assert _state() == before
