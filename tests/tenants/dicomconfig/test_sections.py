"""The wizard's sections applied from a tenant.yaml: the page's checks, all-or-nothing, idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from reports.delivery.models import DeliverySettings
from tenants.models import AllowedCaller, AuditAction, AuditEvent, CalledAETitle, DicomDestination
from tenants.onboarding.sections import sections

DICOM = {
    "called_ae_titles": ["DEMOHOSP", "DEMOCT"],
    "callers": [
        {"ae_title": "CT1", "network": "10.20.0.0/16", "description": "CT room 1"},
        {"ae_title": "", "network": "192.0.2.7", "description": "the PACS"},
    ],
    "pacs": {"ae_title": "HOSPPACS", "host": "192.0.2.7", "port": 104},
}
DESTINATIONS = {"move_destinations": [{"ae_title": "WS1", "host": "10.20.3.4", "port": 104}]}


def _section(key: str) -> Any:
    return next(s for s in sections() if s.key == key)


def _state() -> tuple[Any, ...]:
    return (
        sorted(CalledAETitle.objects.values_list("tenant_id", "ae_title")),
        sorted(
            AllowedCaller.objects.values_list("tenant_id", "ae_title", "network", "description")
        ),
        sorted(
            DicomDestination.objects.values_list("tenant_id", "ae_title", "host", "port", "enabled")
        ),
        sorted(DeliverySettings.objects.values_list("tenant_id", "pacs_destination_id")),
        AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count(),
    )


def test_both_sections_are_registered_in_the_wizard(people):
    dicom, destinations = _section("dicom"), _section("destinations")
    assert (
        dicom.url_name == "dicomconfig:dicom"
        and destinations.url_name == "dicomconfig:destinations"
    )
    assert dicom.order < destinations.order
    assert dicom.summary(people.demo) == "1 called AE title, 1 allowed caller, no PACS"
    assert dicom.done(people.demo)


def test_apply_replaces_the_lists_once_and_a_second_time_changes_nothing(people):
    dicom, destinations = _section("dicom"), _section("destinations")
    dicom.apply(people.demo, DICOM, people.alice)
    destinations.apply(people.demo, DESTINATIONS, people.alice)
    assert sorted(
        CalledAETitle.objects.filter(tenant=people.demo).values_list("ae_title", flat=True)
    ) == ["DEMOCT", "DEMOHOSP"]
    assert sorted(
        AllowedCaller.objects.filter(tenant=people.demo).values_list("ae_title", "network")
    ) == [("", "192.0.2.7/32"), ("CT1", "10.20.0.0/16")]
    assert DeliverySettings.objects.get(tenant=people.demo).pacs_destination.ae_title == "HOSPPACS"
    assert sorted(
        DicomDestination.objects.filter(tenant=people.demo).values_list("ae_title", flat=True)
    ) == ["HOSPPACS", "WS1"]
    events = AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE, tenant=people.demo)
    assert {tuple(e.detail["fields"]) for e in events} >= {
        ("called_ae_titles", "callers"),
        ("move_destinations",),
    }
    assert all(e.actor_user == people.alice for e in events)
    before = _state()
    dicom.apply(people.demo, DICOM, people.alice)
    destinations.apply(people.demo, DESTINATIONS, people.alice)
    assert _state() == before
    # Export gives back what apply takes.
    exported = dicom.export(people.demo)
    assert exported["called_ae_titles"] == ["DEMOCT", "DEMOHOSP"]
    assert exported["pacs"] == {"ae_title": "HOSPPACS", "host": "192.0.2.7", "port": 104}
    assert destinations.export(people.demo) == {
        "move_destinations": [
            {
                "ae_title": "WS1",
                "host": "10.20.3.4",
                "port": 104,
                "description": "",
                "enabled": True,
            }
        ]
    }
    dicom.apply(people.demo, exported, None)
    destinations.apply(people.demo, destinations.export(people.demo), None)
    assert _state() == before
    # A shorter list removes the rest (the PACS stays: it is the dicom section's).
    destinations.apply(people.demo, {"move_destinations": []}, None)
    assert list(
        DicomDestination.objects.filter(tenant=people.demo).values_list("ae_title", flat=True)
    ) == ["HOSPPACS"]


@pytest.mark.parametrize(
    ("data", "messages"),
    [
        (
            {
                "callers": [
                    {"ae_title": "CT1", "network": "10.0.0.0/8"},
                    {"ae_title": "CT2", "network": "10.0.0.300/8"},
                ]
            },
            [
                "callers[1].network: Enter a network such as 10.20.0.0/16 (or one address, such as 192.0.2.7)."
            ],
        ),
        (
            {"called_ae_titles": ["SECONDHOSP", "X" * 17]},
            [
                "called_ae_titles[0].ae_title: SECONDHOSP is already in use on Skylight; choose another.",
                "called_ae_titles[1].ae_title: An AE title has at most 16 characters. This one has 17.",
            ],
        ),
        (
            {"called_ae_titles": []},
            ["called_ae_titles: a hospital keeps at least one called AE title."],
        ),
        (
            {"callers": [{"network": "not-a-network"}]},
            [
                "callers[0].network: Enter a network such as 10.20.0.0/16 (or one address, such as 192.0.2.7)."
            ],
        ),
        (
            {"callers": [{"network": "10.0.0.0/8"}, {"network": "10.1.0.0/8"}]},
            ["callers[1].network: listed twice."],
        ),
        (
            {"pacs": {"ae_title": "P", "host": "10.0.0.1", "port": 70000}},
            ["pacs.port: Enter a port from 1 to 65535."],
        ),
        (
            {"pacs": {"ae_title": "P", "host": "10.0.0.1", "port": "abc"}},
            ["pacs.port: Enter a port from 1 to 65535."],
        ),
        (
            {"ae_titles": ["X"]},
            ["dicom: unknown key ae_titles; expected called_ae_titles, callers, pacs."],
        ),
    ],
)
def test_bad_dicom_data_names_the_item_and_changes_nothing(people, data, messages):
    before = _state()
    with pytest.raises(ValidationError) as raised:
        _section("dicom").apply(
            people.demo, {**DICOM, **data} if "ae_titles" not in data else data, people.alice
        )
    assert raised.value.messages == messages
    assert _state() == before


@pytest.mark.parametrize(
    ("items", "messages"),
    [
        (
            [{"ae_title": "WS1", "host": "10.0.0.1", "port": 0}],
            ["move_destinations[0].port: Enter a port from 1 to 65535."],
        ),
        (
            [
                {"ae_title": "WS1", "host": "10.0.0.1", "port": 104},
                {"ae_title": "WS1", "host": "10.0.0.2", "port": 104},
            ],
            ["move_destinations[1].ae_title: listed twice."],
        ),
        (
            [{"ae_title": "WS1", "host": "a b", "port": 104}],
            [
                "move_destinations[0].host: Enter a host name such as pacs.hospital.example or an IP address (no port or URL)."
            ],
        ),
    ],
)
def test_bad_destinations_name_the_item_and_change_nothing(people, items, messages):
    before = _state()
    with pytest.raises(ValidationError) as raised:
        _section("destinations").apply(people.demo, {"move_destinations": items}, None)
    assert raised.value.messages == messages
    assert _state() == before
