"""The DICOM page in a real browser: the connection test answers in place (htmx), and the status
panel shows a new association by itself, without a reload. Screenshot: dicom-setup.png."""

from __future__ import annotations

from typing import Any

from tests.browser import artefacts, chromium, logged_in
from tests.tenants.dicomconfig.conftest import echoscu


def test_the_echo_answers_in_place_and_the_panel_updates_itself(
    web: Any, people: Any, hospital_pacs: int, skylight_port: int
) -> None:
    with chromium() as browser:
        page = logged_in(
            browser, web.url, "alice", people.password, then="/t/demo-hospital/setup/dicom/"
        )
        refused = []  # Content-Security-Policy refusals would leave htmx dead
        page.on(
            "console", lambda m: refused.append(m.text) if "Content Security" in m.text else None
        )
        assert "No association received yet" in page.inner_text("#association-status")

        page.fill("form:has(input[value=pacs]) input[name=ae_title]", "HOSPPACS")
        page.fill("form:has(input[value=pacs]) input[name=host]", "127.0.0.1")
        page.fill("form:has(input[value=pacs]) input[name=port]", str(hospital_pacs))
        page.click("form:has(input[value=pacs]) button[type=submit]")
        page.wait_for_selector("text=PACS saved: HOSPPACS")
        url_before = page.url
        page.click("text=Test connection (C-ECHO)")
        page.wait_for_selector(".echo-result")
        assert "Success: HOSPPACS at 127.0.0.1" in page.inner_text(".echo-result")
        assert page.url == url_before  # answered in place

        assert echoscu(skylight_port, "DEMOHOSP", "BROWSERCT").returncode == 0
        # The panel polls every 5 s: the new peer appears without a reload.
        page.wait_for_selector("#association-status td:text('BROWSERCT')", timeout=20_000)
        assert "accepted" in page.inner_text("#association-status")
        page.screenshot(path=str(artefacts() / "dicom-setup.png"), full_page=True)
        assert not refused, refused
