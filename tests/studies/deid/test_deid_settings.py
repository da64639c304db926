"""The hospital's de-identification and share-link settings: the page (admins only, others 404),
errors that change nothing, the wizard's YAML sections, and the policy's rules on new links."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from studies.deid.models import DeidPolicy
from studies.deid.sections import SECTIONS
from studies.models import Study
from studies.sharing import services
from studies.sharing.models import ShareLink, SharePolicy
from tenants import audit
from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now
from tests.studies.test_sharing import CT_SMALL_STUDY, create, part10, staff

URL = "/t/demo-hospital/setup/deid/"
SECTION = {s.key: s for s in SECTIONS}
VALID = {
    "required_for_shares": "on",
    "dates": "shift",
    "burned_in": "exclude",
    "clean_descriptors": "on",
    "default_days": "5",
    "max_days": "20",
    "max_attempts": "4",
    "allow_download": "on",
}


def changes() -> int:
    return AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count()


def test_the_admin_sets_the_policy_and_the_change_is_audited(people):
    alice = staff(people.alice)
    page = alice.get(URL)
    assert page.status_code == 200 and "De-identification" in page.text
    assert alice.post(URL, VALID).status_code == 302
    deid, sharing = (
        DeidPolicy.objects.get(tenant=people.demo),
        SharePolicy.objects.get(tenant=people.demo),
    )
    assert deid.required_for_shares and deid.dates == "shift" and deid.clean_descriptors
    assert (sharing.default_days, sharing.max_days, sharing.max_attempts) == (5, 20, 4)
    event = AuditEvent.objects.get(action=AuditAction.SETTINGS_CHANGE)
    assert event.actor_user == people.alice and "deid.dates" in event.detail["fields"]
    assert alice.post(URL, VALID).status_code == 302  # the same again: nothing to record
    assert changes() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("default_days", "40", "default validity must be from 1 day"),
        ("max_days", "0", "longest validity is from 1 to 365"),
        ("dates", "sometimes", "Select a valid choice"),
        ("max_attempts", "x", "Enter a whole number"),
    ],
)
def test_a_bad_value_is_named_and_changes_nothing(people, field, value, message):
    response = staff(people.alice).post(URL, {**VALID, field: value})
    assert response.status_code == 400 and message in response.text
    assert not DeidPolicy.objects.exists() and not SharePolicy.objects.exists()
    assert changes() == 0


def test_only_the_hospitals_admin_finds_the_page(people):
    for user in (people.charlie, people.bob):  # another hospital's admin, a radiologist
        client = staff(user)
        assert client.get(URL).status_code == 404
        assert client.post(URL, VALID).status_code == 404
    assert Client().get(URL).status_code == 302  # to the login
    assert not DeidPolicy.objects.exists() and changes() == 0


def test_the_wizard_sections_apply_yaml_with_the_same_checks_once(people):
    deid, sharing = SECTION["deid"], SECTION["sharing"]
    deid.apply(people.demo, {"required_for_shares": True, "dates": "keep"}, people.alice)
    sharing.apply(people.demo, {"max_days": 60, "require_second_factor": True}, people.alice)
    assert deid.export(people.demo)["dates"] == "keep"
    assert sharing.export(people.demo)["max_days"] == 60
    assert changes() == 2
    deid.apply(people.demo, deid.export(people.demo), people.alice)  # again: nothing changes
    sharing.apply(people.demo, sharing.export(people.demo), None)
    assert changes() == 2
    for section, data, named in [
        (sharing, {"max_days": 500}, "max_days"),
        (sharing, {"default_days": 90}, "default_days"),
        (deid, {"dates": "never"}, "dates"),
        (deid, {"colour": "blue"}, "colour"),
        (deid, ["dates"], "mapping"),
    ]:
        with pytest.raises(ValidationError) as error:
            section.apply(people.demo, data, people.alice)
        assert named in str(error.value)
    assert SharePolicy.objects.get().max_days == 60 and changes() == 2
    assert "required for every share" in deid.summary(people.demo)


@pytest.fixture
def ct(people: Any) -> None:
    ingest_now(people.demo, [part10("CT_small.dcm", PatientBirthDate="19600214")])


def test_a_hospital_that_requires_deidentification_gets_it_on_every_link(people, ct):
    DeidPolicy.objects.create(tenant=people.demo, required_for_shares=True)
    alice = staff(people.alice)
    page = alice.get(f"/s/t/demo-hospital/new/?study={CT_SMALL_STUDY}")
    assert "de-identified only" in page.text and 'name="deidentified"' not in page.text
    response, token = create(alice)  # no choice posted
    assert response.status_code == 201 and ShareLink.objects.get().deidentified
    with pytest.raises(services.ShareError, match="de-identified only"):
        services.create_share(
            tenant=people.demo,
            actor=audit.Actor.for_user(people.alice),
            studies=[Study.objects.get(tenant=people.demo)],
            deidentified=False,
        )
    assert ShareLink.objects.count() == 1


def test_the_share_policy_bounds_new_links(people, ct):
    SharePolicy.objects.create(
        tenant=people.demo, require_second_factor=True, allow_download=False, default_days=3
    )
    alice = staff(people.alice)
    page = alice.get("/s/t/demo-hospital/new/")
    assert 'name="days" type="number" min="1" max="30" value="3"' in page.text
    assert 'name="allow_download"' not in page.text
    response, _ = create(alice, second_factor="none", pin="")
    assert response.status_code == 400 and "requires a PIN" in response.text
    response, _ = create(alice, allow_download="on")
    assert response.status_code == 400 and "does not allow downloads" in response.text
    assert not ShareLink.objects.exists()
