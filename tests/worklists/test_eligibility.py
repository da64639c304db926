"""Who sees and may claim which items: agreement ∩ privilege ∩ licence, over the REST API.

Validity dates are checked with a frozen clock handed to the worklist (``now=``), not by patching
the process's time: a patched clock also reaches the test process's background threads (the
ingest dispatcher, the broker connection), which then stalled later tests for minutes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from tests.worklists.conftest import Api


def test_bob_sees_ct_items_of_both_hospitals(web, reading, token_for):
    demo_ct = reading.item(reading.people.demo)
    second_ct = reading.item(reading.people.second)
    bob = Api(web, token_for(reading.bob))
    assert bob.id_set() == {demo_ct.pk, second_ct.pk}
    assert {row["tenant"]["slug"] for row in bob.get("items/").json()["results"]} == {
        "demo-hospital",
        "second-hospital",
    }


def test_dave_without_a_privilege_sees_nothing_and_gets_404_on_an_item(web, reading, token_for):
    item = reading.item(reading.people.demo)
    dave = Api(web, token_for(reading.dave))
    assert dave.id_set() == set()
    detail = dave.get(f"items/{item.pk}/")
    assert detail.status_code == 404
    assert detail.json() == {"detail": "No such work item."}
    # A missing item answers exactly the same.
    assert dave.get(f"items/{item.pk + 1000}/").json() == detail.json()
    assert dave.post(f"items/{item.pk}/claim/").status_code == 404


def test_erin_sees_only_second_hospital_ct_not_mr_despite_her_mr_privilege(web, reading, token_for):
    second_ct = reading.item(reading.people.second)
    second_mr = reading.item(reading.people.second, modality="MR", description="MR KNEE")
    reading.item(reading.people.demo)
    erin = Api(web, token_for(reading.erin))
    assert erin.id_set() == {second_ct.pk}
    assert erin.get(f"items/{second_mr.pk}/").status_code == 404
    # Bob, whose group's agreement covers everything, does see the MR.
    assert second_mr.pk in Api(web, token_for(reading.bob)).id_set()


def test_fay_with_an_expired_licence_sees_nothing(web, reading, token_for):
    item = reading.item(reading.people.demo)
    fay = Api(web, token_for(reading.fay))
    assert fay.id_set() == set()
    assert fay.get(f"items/{item.pk}/").status_code == 404


def test_a_neuro_item_is_for_neuro_privileges_only(web, reading, token_for):
    from worklists.models import RoutingRule

    # Erin's group now reads MR too, so only the subspecialty keeps the neuro item from her.
    agreement = reading.night.agreements.get()
    agreement.modalities = ["CT", "MR"]
    agreement.save()
    RoutingRule.objects.create(
        tenant=reading.people.second, modality="MR", body_part="HEAD", subspecialty="neuro"
    )
    neuro = reading.item(
        reading.people.second, modality="MR", description="MR BRAIN", body_part="HEAD"
    )
    general = reading.item(reading.people.second, modality="MR", description="MR KNEE")
    assert neuro.subspecialty == "neuro" and general.subspecialty == ""
    erin, bob = Api(web, token_for(reading.erin)), Api(web, token_for(reading.bob))
    assert general.pk in erin.id_set() and neuro.pk not in erin.id_set()
    assert erin.get(f"items/{neuro.pk}/").status_code == 404
    assert {neuro.pk, general.pk} <= bob.id_set()
    assert bob.id_set(subspecialty="neuro") == {neuro.pk}


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def test_a_privilege_counts_from_valid_from_through_valid_to(reading):
    from worklists import eligibility, queries
    from worklists.models import Privilege

    item = reading.item(reading.people.demo)
    start, end = date(2030, 1, 10), date(2030, 2, 20)
    Privilege.objects.filter(user=reading.bob, tenant=reading.people.demo).update(
        valid_from=start, valid_to=end
    )
    seen = {}
    for day in (start - timedelta(days=1), start, end, end + timedelta(days=1)):
        now = _noon(day)  # the clock the worklist reads, frozen at that moment
        seen[day] = set(queries.worklist(reading.bob, now=now).values_list("id", flat=True))
        assert (item.pk in seen[day]) == eligibility.may_read(reading.bob, item, now.date())
    assert seen == {
        start - timedelta(days=1): set(),
        start: {item.pk},
        end: {item.pk},
        end + timedelta(days=1): set(),
    }


def test_an_item_becomes_invisible_the_day_after_the_licence_ends(reading):
    from worklists import eligibility, queries
    from worklists.models import Licence

    item = reading.item(reading.people.demo)
    last_day = date(2031, 3, 1)
    Licence.objects.filter(user=reading.bob, jurisdiction="US-CA").update(valid_to=last_day)
    now = _noon(last_day)
    assert item.pk in set(queries.worklist(reading.bob, now=now).values_list("id", flat=True))
    assert any(
        c.tenant_id == reading.people.demo.pk for c in eligibility.coverage(reading.bob, now.date())
    )
    now = _noon(last_day + timedelta(days=1))
    assert item.pk not in set(queries.worklist(reading.bob, now=now).values_list("id", flat=True))
    assert all(
        c.tenant_id != reading.people.demo.pk for c in eligibility.coverage(reading.bob, now.date())
    )


def test_the_admin_explanation_says_who_can_read_and_why_not(web, reading, token_for):
    item = reading.item(reading.people.demo)
    grace = Api(web, token_for(reading.grace))
    detail = grace.get(f"items/{item.pk}/")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["can_manage"] is True
    readers = {r["username"]: r for r in body["readers"]}
    yesterday = timezone.localdate() - timedelta(days=1)
    assert readers["bob"]["can_read"] is True and readers["bob"]["reasons"] == []
    assert readers["bob"]["via"] == "Demo Readers"
    assert readers["dave"]["can_read"] is False
    assert "no privilege at this hospital" in readers["dave"]["reasons"]
    assert readers["fay"]["can_read"] is False
    assert f"licence for US-CA expired on {yesterday.isoformat()}" in readers["fay"]["reasons"]
    # Erin's group has no agreement with this hospital: she is no candidate at all.
    assert "erin" not in readers
    # A radiologist sees the item but not the explanation.
    as_bob = Api(web, token_for(reading.bob)).get(f"items/{item.pk}/").json()
    assert as_bob["can_manage"] is False and "readers" not in as_bob


def test_a_manager_who_may_not_read_sees_the_item_but_cannot_claim_it(web, reading, token_for):
    item = reading.item(reading.people.demo)
    grace = Api(web, token_for(reading.grace))
    assert grace.get(f"items/{item.pk}/").status_code == 200
    claim = grace.post(f"items/{item.pk}/claim/")
    assert claim.status_code == 403
    assert claim.json() == {"detail": "You are not credentialed to read this study."}
    # Not on her reading list either: she reads nothing herself.
    assert grace.id_set() == set()
