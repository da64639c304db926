"""Onboarding end to end in Chromium: a platform admin creates a hospital, its admin takes the
invitation from the mail, chooses a password, enrols an authenticator app and lands on the
hospital's set-up overview."""

from __future__ import annotations

import re
from base64 import b32decode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.models import AuditAction, AuditEvent, Membership, Role, Tenant, User
from tests.browser import artefacts, chromium
from tests.conftest import Web, start_web, stop_process


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    return folder


@pytest.fixture
def onboarding_web(
    people: Any, django_db_blocker: Any, tmp_path: Path, mail_dir: Path
) -> Iterator[Web]:
    """A web server with the second factor required and mail written to files."""
    env = {
        "SKYLIGHT_MFA_REQUIRED": "true",
        "SKYLIGHT_EMAIL_BACKEND": "file",
        "SKYLIGHT_EMAIL_FILE_PATH": str(mail_dir),
    }
    with django_db_blocker.unblock():
        web = start_web(tmp_path / "gunicorn.log", workers=1, extra_env=env)
    try:
        yield web
    finally:
        stop_process(web.process)


def invitation_path(mail_dir: Path) -> str:
    texts = [path.read_text() for path in sorted(mail_dir.iterdir())]
    assert len(texts) == 1, texts
    match = re.search(r"https?://[^/\s]+(/invite/[A-Za-z0-9_-]+/)", texts[0])
    assert match, texts[0]
    assert "To: admin@north.example" in texts[0]
    return match[1]


def test_a_platform_admin_creates_a_hospital_whose_admin_enrols_and_lands_on_set_up(
    onboarding_web: Web, people: Any, mail_dir: Path
) -> None:
    url = onboarding_web.url
    root = User.objects.create_superuser("root", password=people.password)
    device = TOTPDevice.objects.create(user=root, name="Authenticator app", confirmed=True)
    shots = artefacts()
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{url}/login/?next=/platform/")
        page.fill("#id_username", "root")
        page.fill("#id_password", people.password)
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/mfa/verify/**")
        page.fill("#id_code", f"{totp(device.bin_key):06d}")
        page.click("form.mfa button[type=submit]")
        page.wait_for_url(f"{url}/platform/")

        page.fill("#id_hospital-slug", "north-clinic")
        page.fill("#id_hospital-name", "North Clinic")
        page.fill("#id_hospital-jurisdiction", "US-CA")
        page.fill("#id_hospital-called_ae_title", "DEMOHOSP")  # taken: a form error first
        page.fill("#id_hospital-admin_email", "admin@north.example")
        page.click("form.new-hospital button[type=submit]")
        assert "taken by another hospital" in page.inner_text("form.new-hospital")
        page.screenshot(path=str(shots / "onboarding-platform-error.png"), full_page=True)
        page.fill("#id_hospital-called_ae_title", "NORTHCLINIC")
        page.click("form.new-hospital button[type=submit]")
        page.wait_for_url(f"{url}/platform/")
        assert "invited" in page.inner_text('tr[data-slug="north-clinic"] .state')
        page.screenshot(path=str(shots / "onboarding-platform.png"), full_page=True)

        invitee = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        invitee.goto(url + invitation_path(mail_dir))
        assert "North Clinic" in invitee.inner_text("h1")
        invitee.screenshot(path=str(shots / "onboarding-invite.png"))
        invitee.fill("#id_username", "nora")
        invitee.fill("#id_password1", "a-long-unusual-passphrase-42")
        invitee.fill("#id_password2", "a-long-unusual-passphrase-42")
        invitee.click("form.new-account button[type=submit]")
        invitee.wait_for_url("**/mfa/enrol/**")
        secret = invitee.inner_text("#totp-secret").strip()
        invitee.fill("#id_code", f"{totp(b32decode(secret)):06d}")
        invitee.click("form.enrol button[type=submit]")
        assert invitee.locator(".recovery-codes li").count() == 10
        invitee.click("#continue")
        invitee.wait_for_url(f"{url}/t/north-clinic/setup/")
        assert "Users and roles" in invitee.inner_text("main")
        invitee.screenshot(path=str(shots / "onboarding-setup-overview.png"), full_page=True)

    tenant = Tenant.objects.get(slug="north-clinic")
    nora = User.objects.get(username="nora")
    assert Membership.objects.filter(user=nora, tenant=tenant, role=Role.TENANT_ADMIN).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    for expected in (
        AuditAction.TENANT_CREATE,
        AuditAction.INVITE_SEND,
        AuditAction.INVITE_ACCEPT,
        AuditAction.MFA_ENROL,
    ):
        assert expected in actions
