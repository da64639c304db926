"""MFA end to end in Chromium: a radiologist enrols an authenticator app, logs out, logs in with
password and code, and reaches the worklist; a wrong code is refused."""

from __future__ import annotations

from base64 import b32decode
from collections.abc import Iterator
from typing import Any

import pytest
from django_otp.oath import totp

from tenants.models import AuditAction, AuditEvent
from tests.browser import artefacts, chromium
from tests.conftest import Web, start_web, stop_process


@pytest.fixture
def mfa_web(people: Any, django_db_blocker: Any, tmp_path: Any) -> Iterator[Web]:
    """A web server of its own, with the second factor required as in production."""
    with django_db_blocker.unblock():
        web = start_web(
            tmp_path / "gunicorn.log", workers=1, extra_env={"SKYLIGHT_MFA_REQUIRED": "true"}
        )
    try:
        yield web
    finally:
        stop_process(web.process)


def code(secret: str, *, drift: int = 0) -> str:
    return f"{totp(b32decode(secret), drift=drift):06d}"


def test_a_radiologist_enrols_then_logs_in_with_password_and_code(mfa_web, people):
    shots = artefacts()
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(f"{mfa_web.url}/login/?next=/worklist/")
        page.fill("#id_username", "bob")
        page.fill("#id_password", people.password)
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/mfa/enrol/**")
        assert page.locator(".qr svg").count() == 1
        secret = page.inner_text("#totp-secret").strip()
        page.screenshot(path=str(shots / "mfa-enrol.png"))
        page.fill("#id_code", code(secret))
        page.click("form.enrol button[type=submit]")
        assert page.locator(".recovery-codes li").count() == 10
        page.screenshot(path=str(shots / "mfa-recovery-codes.png"))
        page.click("#continue")
        page.wait_for_url(f"{mfa_web.url}/worklist/")

        page.click("header form button")  # log out
        page.wait_for_url("**/login/**")
        page.goto(f"{mfa_web.url}/login/?next=/worklist/")
        page.fill("#id_username", "bob")
        page.fill("#id_password", people.password)
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/mfa/verify/**")
        page.fill("#id_code", "000000" if code(secret) != "000000" else "111111")
        page.click("form.mfa button[type=submit]")
        assert "not right" in page.inner_text(".errors")
        page.screenshot(path=str(shots / "mfa-wrong-code.png"))
        # The code of the next 30-second window: the current one was spent on enrolment, and
        # a code is accepted once.
        page.fill("#id_code", code(secret, drift=1))
        page.click("form.mfa button[type=submit]")
        page.wait_for_url(f"{mfa_web.url}/worklist/")
        assert page.locator("#worklist-rows").count() == 1
        page.screenshot(path=str(shots / "mfa-worklist.png"))
    actions = list(
        AuditEvent.objects.filter(actor_user=people.bob)
        .order_by("id")
        .values_list("action", flat=True)
    )
    for expected in (AuditAction.MFA_ENROL, AuditAction.MFA_FAILED, AuditAction.MFA_VERIFY):
        assert expected in actions
