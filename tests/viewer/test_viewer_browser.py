"""OHIF in a real browser (Debian Chromium through Playwright, software WebGL): alice opens a CT
from her hospital and sees the phantom's anatomy; charlie, of another hospital, opening the same
URL gets the error page and no DICOMweb answer with data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Response, sync_playwright

from studies.dicom import synthetic
from tests.conftest import ingest_now

CHROMIUM = "/usr/bin/chromium"
# Software GL: the CI machine has no GPU.
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]

# Grey-level statistics of the viewport canvas, computed in the page. The series' window is
# 40/400 HU: air (-1000) is black, soft tissue (40) mid grey, cortical bone (1150) white.
CANVAS_STATS = """() => {
  const canvases = [...document.querySelectorAll('canvas.cornerstone-canvas')]
    .filter(c => c.width > 64 && c.height > 64);
  if (!canvases.length) return null;
  const c = canvases[0];
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0, dark = 0, mid = 0, bright = 0, midSum = 0, darkSum = 0;
  for (let i = 0; i < data.length; i += 4) {
    const g = (data[i] + data[i + 1] + data[i + 2]) / 3;
    n++;
    if (g <= 20) { dark++; darkSum += g; }
    else if (g >= 90 && g <= 170) { mid++; midSum += g; }
    else if (g >= 230) { bright++; }
  }
  return {width: c.width, height: c.height, dark: dark / n, mid: mid / n, bright: bright / n,
          midMean: mid ? midSum / mid : 0, darkMean: dark ? darkSum / dark : 0};
}"""


def artefacts() -> Path:
    folder = Path(os.environ.get("SKYLIGHT_TEST_ARTEFACTS", "test-artefacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def small_ct(tenant: Any) -> str:
    """A 30-slice 256² chest CT of the synthetic phantom, stored and indexed; its study UID."""
    spec = synthetic.simple_spec(seed=505, slices=30, rows=256, columns=256, patient_id="VIEW-1")
    ingest_now(tenant, [synthetic.encode_part10(ds) for ds in synthetic.iter_study(spec)])
    return synthetic.study_uid(spec)


def logged_in(browser: Browser, url: str, username: str, password: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{url}/")
    return page


def test_alice_sees_the_phantom_and_charlie_gets_the_error_page(web, people):
    uid = small_ct(people.demo)
    launch = f"{web.url}/viewer/viewer?StudyInstanceUIDs={uid}"
    folder = artefacts()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            alice = logged_in(browser, web.url, "alice", people.password)
            frames: list[int] = []
            failed: list[str] = []

            def seen(response: Response) -> None:
                if "/frames/" in response.url:
                    frames.append(response.status)
                if response.status >= 400:
                    failed.append(f"{response.status} {response.url.split('?')[0]}")

            alice.on("response", seen)
            alice.goto(launch)
            # Functional bound only: OHIF starting under software GL on 2 cores takes seconds.
            alice.wait_for_function(
                f"""() => {{
                  const s = ({CANVAS_STATS})();
                  return s && s.mid > 0.05 && s.bright > 0.0005;
                }}""",
                timeout=120_000,
                polling=500,
            )
            stats = alice.evaluate(CANVAS_STATS)
            alice.screenshot(path=folder / "viewer-stack.png")
            assert frames and set(frames) == {200}
            assert not failed, failed  # every chunk, worker and codec found under /viewer/
            # The phantom, not merely "not black": a body of soft tissue (mid grey) in air
            # (black), with cortical bone (vertebra, ribs, sternum) white.
            assert stats["dark"] > 0.10, stats
            assert stats["mid"] > 0.10, stats
            assert stats["bright"] > 0.001, stats
            assert stats["midMean"] - stats["darkMean"] > 80, stats

            charlie = logged_in(browser, web.url, "charlie", people.password)
            answered: list[Response] = []
            charlie.context.on("response", lambda r: answered.append(r) if "/t/" in r.url else None)
            page = charlie.goto(launch)
            assert page is not None and page.status == 404
            assert "This study does not exist or you may not see it" in charlie.inner_text("main")
            # Whatever he tries from here, the other hospital's DICOMweb answers him nothing.
            charlie.evaluate(
                """async (uid) => {
                  for (const path of [`studies?StudyInstanceUID=${uid}`,
                                      `studies/${uid}/series`, `studies/${uid}/metadata`]) {
                    await fetch(`/t/demo-hospital/dicomweb/${path}`,
                                {headers: {Accept: 'application/dicom+json'}});
                  }
                }""",
                uid,
            )
            charlie.screenshot(path=folder / "viewer-other-tenant.png")
            assert len(answered) == 3
            assert all(r.status == 404 for r in answered), [r.status for r in answered]
            assert all(uid not in r.text() for r in answered)
        finally:
            browser.close()
    assert (folder / "viewer-stack.png").stat().st_size > 0
