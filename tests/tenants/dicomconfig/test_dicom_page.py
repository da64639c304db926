"""The DICOM page: called AE titles, allowed callers and the PACS; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from reports.delivery.models import DeliverySettings
from tenants.models import AllowedCaller, AuditAction, AuditEvent, CalledAETitle, DicomDestination

URL = "/t/demo-hospital/setup/dicom/"


def _state() -> tuple[Any, ...]:
    """Every row the page could change, and the audit rows of configuration changes."""
    return (
        sorted(CalledAETitle.objects.values_list("tenant_id", "ae_title")),
        sorted(
            AllowedCaller.objects.values_list("tenant_id", "ae_title", "network", "description")
        ),
        sorted(DicomDestination.objects.values_list("tenant_id", "ae_title", "host", "port")),
        sorted(DeliverySettings.objects.values_list("tenant_id", "pacs_destination_id")),
        AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count(),
    )


def test_the_page_shows_the_called_ae_title_the_callers_and_where_to_send(alice, people):
    page = alice.get(URL)
    assert page.status_code == 200
    text = page.content.decode()
    assert "DEMOHOSP" in text and "127.0.0.0/8" in text
    assert "11112" in text  # Skylight's port from the settings
    assert "SECONDHOSP" not in text


def test_another_hospitals_admin_and_a_radiologist_get_not_found(people):
    charlie = Client()
    charlie.force_login(people.charlie)
    before = _state()
    assert charlie.get(URL).status_code == 404
    assert charlie.post(URL, {"op": "add-title", "ae_title": "STOLEN"}).status_code == 404
    assert charlie.get(URL + "status/").status_code == 404
    bob = Client()
    bob.force_login(people.bob)
    assert bob.get(URL).status_code == 404
    assert _state() == before


def test_charlie_cannot_remove_a_demo_row_through_his_own_page(people):
    """A row id of another hospital, posted to one's own page, is not found."""
    charlie = Client()
    charlie.force_login(people.charlie)
    demo_rule = AllowedCaller.objects.get(tenant=people.demo)
    demo_title = CalledAETitle.objects.get(tenant=people.demo)
    before = _state()
    page = "/t/second-hospital/setup/dicom/"
    assert charlie.post(page, {"op": "remove-caller", "id": demo_rule.pk}).status_code == 404
    assert charlie.post(page, {"op": "remove-title", "id": demo_title.pk}).status_code == 404
    assert _state() == before


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("SECONDHOSP", "SECONDHOSP is already in use on Skylight"),  # another hospital's
        ("DEMOHOSP", "DEMOHOSP is already in use on Skylight"),  # our own
        ("A" * 17, "An AE title has at most 16 characters. This one has 17."),
        ("BACK\\SLASH", "without a backslash"),
    ],
)
def test_a_bad_called_ae_title_is_a_form_error_and_changes_nothing(alice, people, title, message):
    before = _state()
    answer = alice.post(URL, {"op": "add-title", "ae_title": title})
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert "AE title: " in answer.content.decode()  # the error names its field
    assert _state() == before


def test_a_second_called_ae_title_is_added_and_only_the_last_cannot_be_removed(alice, people):
    answer = alice.post(URL, {"op": "add-title", "ae_title": " DEMO2 "}, follow=True)
    assert answer.status_code == 200 and "Called AE title DEMO2 added." in answer.content.decode()
    new = CalledAETitle.objects.get(ae_title="DEMO2")
    assert new.tenant == people.demo
    event = AuditEvent.objects.get(action=AuditAction.SETTINGS_CHANGE)
    assert event.tenant == people.demo and event.actor_user == people.alice
    assert event.detail == {"settings": "dicom", "fields": ["called_ae_titles"], "added": "DEMO2"}

    old = CalledAETitle.objects.get(ae_title="DEMOHOSP")
    assert alice.post(URL, {"op": "remove-title", "id": old.pk}).status_code == 302
    assert list(
        CalledAETitle.objects.filter(tenant=people.demo).values_list("ae_title", flat=True)
    ) == ["DEMO2"]
    before = _state()
    last = alice.post(URL, {"op": "remove-title", "id": new.pk})
    assert last.status_code == 400
    assert "keeps at least one called AE title" in last.content.decode()
    assert _state() == before


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"network": "10.0.0.300/8"}, "Network: Enter a network such as 10.20.0.0/16"),
        ({"network": "not-a-network"}, "Network: Enter a network such as 10.20.0.0/16"),
        ({"ae_title": "B" * 17}, "AE title: An AE title has at most 16 characters."),
        # The rule the people fixture made: any AE title from 127.0.0.0/8.
        ({"network": "127.0.0.0/8"}, "This rule exists already"),
        (
            {"network": "127.1.2.3/8"},
            "This rule exists already",
        ),  # the same network, written otherwise
    ],
)
def test_a_bad_allowed_caller_is_a_form_error_and_changes_nothing(alice, people, values, message):
    before = _state()
    data = {"op": "add-caller", "new-ae_title": "", "new-network": "", "new-description": ""}
    data.update({f"new-{k}": v for k, v in values.items()})
    answer = alice.post(URL, data)
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert _state() == before


def test_an_allowed_caller_is_added_edited_and_removed_each_audited(alice, people):
    added = alice.post(
        URL,
        {
            "op": "add-caller",
            "new-ae_title": "CT1",
            "new-network": "10.20.0.0/16",
            "new-description": "CT room 1",
        },
    )
    assert added.status_code == 302
    rule = AllowedCaller.objects.get(tenant=people.demo, ae_title="CT1")
    assert rule.network == "10.20.0.0/16"
    prefix = f"c{rule.pk}"
    # An edit into a duplicate of the other rule is refused, naming the field.
    before = _state()
    clash = alice.post(
        URL,
        {
            "op": "edit-caller",
            "id": rule.pk,
            f"{prefix}-ae_title": "",
            f"{prefix}-network": "127.0.0.0/8",
            f"{prefix}-description": "",
        },
    )
    assert clash.status_code == 400 and "This rule exists already" in clash.content.decode()
    assert _state() == before
    edited = alice.post(
        URL,
        {
            "op": "edit-caller",
            "id": rule.pk,
            f"{prefix}-ae_title": "CT1",
            f"{prefix}-network": "10.21.0.5",
            f"{prefix}-description": "CT room 1",
        },
    )
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert rule.network == "10.21.0.5/32"
    assert alice.post(URL, {"op": "remove-caller", "id": rule.pk}).status_code == 302
    assert not AllowedCaller.objects.filter(pk=rule.pk).exists()
    details = [
        e.detail
        for e in AuditEvent.objects.filter(
            action=AuditAction.SETTINGS_CHANGE, tenant=people.demo
        ).order_by("id")
    ]
    assert [d["fields"] for d in details] == [["callers"], ["callers.network"], ["callers"]]
    assert details[0]["added"] == "CT1 from 10.20.0.0/16"


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("0", "Enter a port from 1 to 65535."),
        ("70000", "Enter a port from 1 to 65535."),
        ("abc", "Enter a port from 1 to 65535."),
    ],
)
def test_an_invalid_pacs_port_is_a_form_error_and_changes_nothing(alice, people, port, message):
    before = _state()
    answer = alice.post(
        URL, {"op": "pacs", "ae_title": "HOSPPACS", "host": "10.0.0.5", "port": port}
    )
    assert answer.status_code == 400
    assert f"Port: {message}" in answer.content.decode()
    assert _state() == before


def test_a_pacs_host_that_is_a_url_is_refused(alice, people):
    before = _state()
    answer = alice.post(
        URL, {"op": "pacs", "ae_title": "HOSPPACS", "host": "http://pacs:104/", "port": "104"}
    )
    assert answer.status_code == 400 and "Host: Enter a host name" in answer.content.decode()
    assert _state() == before


def test_the_pacs_is_a_destination_and_the_report_delivery_pacs(alice, people):
    assert (
        alice.post(
            URL,
            {"op": "pacs", "ae_title": "HOSPPACS", "host": "PACS.Hospital.example", "port": "104"},
        ).status_code
        == 302
    )
    node = DicomDestination.objects.get(tenant=people.demo)
    assert (node.ae_title, node.host, node.port, node.enabled) == (
        "HOSPPACS",
        "pacs.hospital.example",
        104,
        True,
    )
    assert DeliverySettings.objects.get(tenant=people.demo).pacs_destination == node
    # Saving it again unchanged writes nothing; a new port changes the same row.
    audits = AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count()
    alice.post(
        URL, {"op": "pacs", "ae_title": "HOSPPACS", "host": "pacs.hospital.example", "port": "104"}
    )
    assert AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count() == audits
    alice.post(
        URL,
        {"op": "pacs", "ae_title": "HOSPPACS", "host": "pacs.hospital.example", "port": "11112"},
    )
    node.refresh_from_db()
    assert node.port == 11112 and DicomDestination.objects.filter(tenant=people.demo).count() == 1
    last = AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).latest("id")
    assert last.detail["fields"] == ["pacs.port"]
    # The delivery settings page offers the same node.
    assert "HOSPPACS" in alice.get("/reports/delivery/settings/demo-hospital/").content.decode()
