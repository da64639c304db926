"""Two radiologists in two real browsers (Chromium through Playwright) on the same worklist:
when one claims a study, it leaves the other's list by itself, within the issue's 5 seconds."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Software GL: the CI machine has no GPU.
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


def artefacts() -> Path:
    folder = Path(os.environ.get("SKYLIGHT_TEST_ARTEFACTS", "test-artefacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def open_worklist(browser: Browser, url: str, username: str, password: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(f"{url}/worklist/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{url}/worklist/")
    return page


def test_a_claim_in_one_browser_removes_the_study_from_the_others_list(web, reading):
    second_reader(reading)
    item = reading.item(reading.people.demo, patient_name="SHARED^SAM", accession="ACC-SHARED")
    row = f'tr[data-item="{item.pk}"]'
    folder = artefacts()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            bob = open_worklist(browser, web.url, "bob", reading.password)
            hank = open_worklist(browser, web.url, "hank", reading.password)
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
        finally:
            browser.close()
    assert (folder / "worklist-hank-after-claim.png").stat().st_size > 0
