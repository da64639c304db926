"""A hospital contracts reading groups: the page, its validation, the SLA it sets, ending it, the
wizard section. Over HTTP with Django's test client, against the real database."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants.models import AuditAction, AuditEvent, ReadingAgreement
from tests.worklists.conftest import make_item
from worklists.models import AgreementTerms, Licence, Privilege

URL = "/t/demo-hospital/setup/agreements/"


def _state() -> list[Any]:
    agreements = sorted(
        ReadingAgreement.objects.values_list(
            "id", "tenant_id", "group_id", "is_active", "modalities", "priority_codes"
        )
    )
    terms = sorted(AgreementTerms.objects.values_list("id", "sla_minutes", "active_to"))
    changes = AuditEvent.objects.filter(
        action__in=[AuditAction.AGREEMENT_CHANGE, AuditAction.AGREEMENT_ADD]
    ).count()
    return [agreements, terms, changes]


def _night_reader_can_read_demo(reading: Any) -> None:
    """erin (night-readers) holds what reading demo-hospital's CT takes, but for the agreement."""
    Licence.objects.create(
        user=reading.erin, jurisdiction="US-CA", number="CA-9", valid_from=date(2020, 1, 1)
    )
    Privilege.objects.create(
        user=reading.erin,
        tenant=reading.people.demo,
        modalities=["CT"],
        valid_from=date(2020, 1, 1),
    )


def _worklist_ids(client: Any) -> set[int]:
    response = client.get("/api/worklist/items/")
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_contracted_group_sees_the_hospitals_new_study_with_the_agreements_sla(reading, login):
    _night_reader_can_read_demo(reading)
    before = make_item(reading.people.demo, modality="CT")
    assert before.id not in _worklist_ids(login(reading.erin))

    response = login(reading.people.alice).post(
        URL,
        {
            "action": "save",
            "group": "night-readers",
            "modalities": "ct",
            "priorities": ["routine", "stat"],
            "sla_routine": "90",
        },
    )
    assert response.status_code == 302, response.content.decode()

    item = make_item(reading.people.demo, modality="CT", arrived_minutes_ago=5)
    assert item.sla_due_at == item.arrived_at + timedelta(minutes=90)
    assert item.priority.code == "routine"
    assert item.id in _worklist_ids(login(reading.erin))
    # Modalities outside the agreement stay off the group's worklist.
    mr = make_item(reading.people.demo, modality="MR")
    assert mr.id not in _worklist_ids(login(reading.erin))
    # The hospital's other group (demo-readers, no SLA of its own) keeps the class default for
    # MR, which the night agreement does not cover.
    assert mr.sla_due_at == mr.arrived_at + timedelta(minutes=24 * 60)
    change = AuditEvent.objects.get(action=AuditAction.AGREEMENT_CHANGE)
    assert change.tenant == reading.people.demo
    assert change.actor_user == reading.people.alice
    assert "sla_minutes" in change.detail["fields"]

    page = login(reading.people.alice).get(URL)
    assert b"Night Readers" in page.content and b"90 min (agreed)" in page.content
    # "Change" fills the form with the agreement's terms.
    form = login(reading.people.alice).get(URL + "?edit=night-readers").context["form"]
    assert form.initial["modalities"] == "CT" and form.initial["sla_routine"] == 90
    assert sorted(form.initial["priorities"]) == ["routine", "stat"]


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"modalities": "CT, CTX"}, "modalities", "Unknown modality code CTX"),
        ({"sla_stat": "0"}, "sla_stat", "SLA minutes must be more than 0"),
        ({"sla_stat": "-5"}, "sla_stat", "SLA minutes must be more than 0"),
        (
            {"active_from": "2026-05-01", "active_to": "2026-04-01"},
            "active_to",
            "cannot end before it starts",
        ),
        ({"group": "no-such-group"}, "group", "No active reading group has the slug"),
    ],
)
def test_bad_agreement_input_is_a_form_error_and_changes_nothing(
    reading, login, fields, field, message
):
    before = _state()
    data = {"action": "save", "group": "night-readers", "modalities": "CT", **fields}
    response = login(reading.people.alice).post(URL, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert message in response.content.decode()
    assert _state() == before


def test_ending_an_agreement_takes_the_hospital_off_the_groups_worklist(reading, login):
    item = make_item(reading.people.demo, modality="CT")
    assert item.id in _worklist_ids(login(reading.bob))
    agreement = ReadingAgreement.objects.get(tenant=reading.people.demo, group=reading.people.group)
    response = login(reading.people.alice).post(
        URL, {"action": "end", "agreement": str(agreement.pk)}
    )
    assert response.status_code == 302
    agreement.refresh_from_db()
    assert not agreement.is_active
    assert agreement.terms.active_to == timezone.localdate()
    assert item.id not in _worklist_ids(login(reading.bob))
    assert AuditEvent.objects.filter(action=AuditAction.AGREEMENT_END).count() == 1
    # Ending it again changes nothing.
    login(reading.people.alice).post(URL, {"action": "end", "agreement": str(agreement.pk)})
    assert AuditEvent.objects.filter(action=AuditAction.AGREEMENT_END).count() == 1


def test_an_agreement_outside_its_period_covers_nothing(reading, login):
    item = make_item(reading.people.demo, modality="CT")
    tomorrow = timezone.localdate() + timedelta(days=1)
    response = login(reading.people.alice).post(
        URL, {"action": "save", "group": "demo-readers", "active_from": tomorrow.isoformat()}
    )
    assert response.status_code == 302
    assert item.id not in _worklist_ids(login(reading.bob))


def test_another_hospitals_admin_and_a_group_admin_get_404_and_change_nothing(reading, login):
    agreement = ReadingAgreement.objects.get(tenant=reading.people.demo, group=reading.people.group)
    before = _state()
    for user in (reading.people.charlie, reading.grace, reading.bob):
        client = login(user)
        assert client.get(URL).status_code == 404
        assert client.post(URL, {"action": "save", "group": "night-readers"}).status_code == 404
        assert client.post(URL, {"action": "end", "agreement": agreement.pk}).status_code == 404
    # The hospital's admin cannot end another hospital's agreement by its id either.
    other = ReadingAgreement.objects.get(tenant=reading.people.second, group=reading.people.group)
    response = login(reading.people.alice).post(URL, {"action": "end", "agreement": other.pk})
    assert response.status_code == 404
    assert _state() == before


def test_the_wizard_section_applies_a_file_idempotently_and_exports_it(reading):
    from worklists.groupadmin.sections import SECTION

    demo = reading.people.demo
    data = [
        {
            "group": "night-readers",
            "modalities": ["CT"],
            "priorities": {"stat": 30, "routine": 1440},
        }
    ]
    SECTION.apply(demo, data, reading.people.alice)
    after_first = _state()
    SECTION.apply(demo, data, reading.people.alice)
    assert _state() == after_first
    exported = {e["group"]: e for e in SECTION.export(demo)}
    assert exported["night-readers"] == data[0]
    assert SECTION.done(demo)
    assert "Night Readers" in SECTION.summary(demo)

    with pytest.raises(ValidationError) as refused:
        SECTION.apply(
            demo,
            [
                {"group": "demo-readers", "modalities": ["MR"]},
                {"group": "night-readers", "modalities": ["XX"], "priorities": {"stat": 0}},
            ],
            None,
        )
    text = " ".join(refused.value.messages)
    assert "agreements[1].modalities: Unknown modality code XX" in text
    assert "agreements[1].priorities: SLA minutes must be more than 0" in text
    assert _state() == after_first  # the valid first entry was not applied either
