"""The share link end to end in a real browser (issue 7's acceptance): alice makes a link with a
PIN; a holder who types a wrong PIN five times locks it; a new link opened with the right PIN
shows the study in the read-only viewer (a canvas with image pixels); once alice revokes it, the
page and its DICOMweb are dead. Screenshots go to SKYLIGHT_TEST_ARTEFACTS: share-locked.png,
share-viewer.png, share-revoked.png."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page
from pydicom.data import get_testdata_file

from tests.browser import artefacts, chromium, logged_in
from tests.conftest import ingest_now

CT_SMALL_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
PIN = "482913"
# The share of canvas pixels that are neither black nor uniform: an image, not an empty viewport.
LIT_PIXELS = """() => {
  const canvases = [...document.querySelectorAll('canvas.cornerstone-canvas')]
    .filter(c => c.width > 64 && c.height > 64);
  if (!canvases.length) return 0;
  const c = canvases[0];
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4) if ((d[i] + d[i + 1] + d[i + 2]) / 3 > 30) lit++;
  return lit / (d.length / 4);
}"""


def make_link(alice: Page, url: str) -> str:
    alice.goto(f"{url}/s/t/demo-hospital/new/?study={CT_SMALL_STUDY}")
    alice.fill("input[name=pin]", PIN)
    alice.fill("input[name=note]", "Dr Grey")
    alice.click("#share-new button[type=submit]")
    alice.wait_for_selector("#share-address, #share-error")
    assert alice.locator("#share-error").count() == 0, alice.inner_text("#share-error")
    address = alice.locator("#share-address").input_value()
    assert "/s/" in address and CT_SMALL_STUDY not in address
    return address


def holder(browser: Browser) -> Page:
    return browser.new_context(viewport={"width": 1280, "height": 800}).new_page()


def open_in_viewer(doctor: Page, address: str) -> None:
    """Open the link, answer its PIN, open the viewer and wait until it draws an image."""
    doctor.goto(address)
    doctor.fill("#share-answer", PIN)
    doctor.click("#share-unlock button[type=submit]")
    doctor.click("#share-viewer")
    # Functional bound only: OHIF starting under software GL on 2 cores takes seconds.
    doctor.wait_for_function(f"() => ({LIT_PIXELS})() > 0.05", timeout=180_000, polling=250)


def test_a_share_link_locks_after_wrong_pins_opens_with_the_right_one_and_dies_revoked(
    web: Any, people: Any
) -> None:
    ingest_now(people.demo, [open(get_testdata_file("CT_small.dcm"), "rb").read()])
    folder = artefacts()
    with chromium() as browser:
        alice = logged_in(browser, web.url, "alice", people.password)

        first = make_link(alice, web.url)
        stranger = holder(browser)
        stranger.goto(first)
        for _ in range(4):
            stranger.fill("#share-answer", "000000")
            stranger.click("#share-unlock button[type=submit]")
            assert "attempt" in stranger.inner_text("#share-error")
        stranger.fill("#share-answer", "000000")
        stranger.click("#share-unlock button[type=submit]")
        assert "locked" in stranger.inner_text("#share-error")
        stranger.screenshot(path=folder / "share-locked.png")
        again = stranger.goto(first)
        assert again is not None and again.status == 410

        second = make_link(alice, web.url)
        doctor = holder(browser)
        open_in_viewer(doctor, second)
        doctor.screenshot(path=folder / "share-viewer.png")
        assert "/t/demo-hospital" not in doctor.content()

        alice.goto(f"{web.url}/s/t/demo-hospital/")
        assert "locked" in alice.inner_text("#share-links")
        alice.click("#share-links button:has-text('Revoke')")
        assert "revoked" in alice.inner_text("#share-links")

        dead = doctor.goto(second)
        assert dead is not None and dead.status == 410
        doctor.screenshot(path=folder / "share-revoked.png")
        token = second.rstrip("/").rsplit("/", 1)[1]
        status = doctor.evaluate(
            """async (token) => (await fetch(`/s/${token}/dicomweb/studies`,
                 {headers: {Accept: 'application/dicom+json'}})).status""",
            token,
        )
        assert status == 410
    for name in ("share-locked.png", "share-viewer.png", "share-revoked.png"):
        assert (folder / name).stat().st_size > 0
