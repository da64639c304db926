"""Two radiologists in two real browsers (Chromium through Playwright) on the same worklist:
when one claims a study, it leaves the other's list by itself, within the issue's 5 seconds."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.browser import artefacts, chromium, logged_in

WORKLIST = "/worklist/"


def second_reader(reading: Any) -> Any:
    """hank: a radiologist of demo-readers credentialed for CT at demo-hospital, like bob."""
    from tenants import services
    from tenants.models import Role, User
    from worklists.models import Licence, Privilege

    hank = User.objects.create_user("hank", password=reading.password, display_name="Hank")
    services.add_membership(user=hank, group=reading.people.group, role=Role.RADIOLOGIST)
    start = date(2020, 1, 1)
    Licence.objects.create(user=hank, jurisdiction="US-CA", number="CA-9", valid_from=start)
    Privilege.objects.create(
        user=hank, tenant=reading.people.demo, modalities=["CT"], valid_from=start
    )
    return hank


def test_a_claim_in_one_browser_removes_the_study_from_the_others_list(web, reading):
    second_reader(reading)
    item = reading.item(reading.people.demo, patient_name="SHARED^SAM", accession="ACC-SHARED")
    row = f'tr[data-item="{item.pk}"]'
    folder = artefacts()
    with chromium() as browser:
        bob = logged_in(browser, web.url, "bob", reading.password, then=WORKLIST)
        hank = logged_in(browser, web.url, "hank", reading.password, then=WORKLIST)
        for page in (bob, hank):
            page.wait_for_selector(row)
            assert "SHARED, SAM" in page.inner_text(row)
        bob.screenshot(path=folder / "worklist-bob-before-claim.png", full_page=True)
        hank.screenshot(path=folder / "worklist-hank-before-claim.png", full_page=True)

        bob.click(f"{row} button.claim")
        bob.wait_for_url(f"{web.url}/worklist/items/{item.pk}/")
        assert "You hold this study" in bob.inner_text("#claim-status")
        bob.screenshot(path=folder / "worklist-item-bob-holds.png", full_page=True)
        # Hank did nothing: his list's poll takes the study away.
        hank.wait_for_selector(row, state="detached", timeout=5000)
        assert "SHARED" not in hank.inner_text("#worklist-rows")

        bob.goto(f"{web.url}/worklist/")
        assert "Held by me" in bob.inner_text(row)
        bob.screenshot(path=folder / "worklist-bob-after-claim.png", full_page=True)
        hank.screenshot(path=folder / "worklist-hank-after-claim.png", full_page=True)
    assert (folder / "worklist-hank-after-claim.png").stat().st_size > 0
