"""A de-identified share link in a real browser: alice ticks "De-identify", the holder opens the
link with its PIN and the read-only viewer draws the CT (a canvas with image pixels) from the
link's de-identified DICOMweb, showing neither the patient's name nor the original study UID.
Screenshot: SKYLIGHT_TEST_ARTEFACTS/deid-viewer.png."""

from __future__ import annotations

from typing import Any

from pydicom.data import get_testdata_file

from tests.browser import artefacts, chromium, logged_in
from tests.conftest import ingest_now
from tests.studies.test_share_browser import CT_SMALL_STUDY, PIN, holder, open_in_viewer


def test_the_viewer_draws_a_deidentified_study_without_its_identity(web: Any, people: Any) -> None:
    ingest_now(people.demo, [open(get_testdata_file("CT_small.dcm"), "rb").read()])
    folder = artefacts()
    with chromium() as browser:
        alice = logged_in(browser, web.url, "alice", people.password)
        alice.goto(f"{web.url}/s/t/demo-hospital/new/?study={CT_SMALL_STUDY}")
        alice.fill("input[name=pin]", PIN)
        alice.check("#share-deidentified")
        alice.click("#share-new button[type=submit]")
        alice.wait_for_selector("#share-address, #share-error")
        assert alice.locator("#share-deid").count() == 1
        address = alice.locator("#share-address").input_value()

        doctor = holder(browser)
        open_in_viewer(doctor, address)
        doctor.screenshot(path=folder / "deid-viewer.png")
        shown = doctor.content()
        assert "CompressedSamples" not in shown and CT_SMALL_STUDY not in shown
        assert "2.25." in doctor.url  # the viewer names the study by its mapped UID
