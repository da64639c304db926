"""Headless Debian Chromium for the browser tests (Playwright's own browsers are never
installed): launching it, logging in, and the folder screenshots go to."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Software WebGL2 (SwiftShader), so OHIF's viewports render without a GPU.
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


@contextmanager
def one_at_a_time() -> Iterator[None]:
    """Hold the run's browser lock: two software-WebGL Chromiums on two cores starve each other
    into timeouts, so the xdist workers of one run take turns (the lock is per run)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    path = os.path.join(tempfile.gettempdir(), f"skylight-chromium-{run}.lock")
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def chromium() -> Iterator[Browser]:
    with one_at_a_time(), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def artefacts() -> Path:
    """Where screenshots are saved (SKYLIGHT_TEST_ARTEFACTS, default ./test-artefacts)."""
    folder = Path(os.environ.get("SKYLIGHT_TEST_ARTEFACTS", "test-artefacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def logged_in(
    browser: Browser,
    url: str,
    username: str,
    password: str,
    *,
    then: str = "/",
    viewport: tuple[int, int] = (1280, 800),
) -> Page:
    """A page of a new browser context, logged in through /login/, at ``then``."""
    width, height = viewport
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(f"{url}/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{url}{then}")
    return page
