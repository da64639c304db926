"""Issue 8's acceptance, end to end in Chromium, with the second factor required as in
production: a platform admin creates a hospital; its admin takes the invitation from the mail,
chooses a password, enrols an authenticator app, lets a modality in on the DICOM page and contracts
demo-readers; the reading group's admin gives bob a privilege there; dcmtk's echoscu and storescu
to the new AE title succeed; the study appears on bob's worklist; the hospital's usage dashboard
counts it. Screenshots: onboarding-*.png in SKYLIGHT_TEST_ARTEFACTS."""

from __future__ import annotations

import re
import time
from base64 import b32decode
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page
from pydicom.data import get_testdata_file

from tenants.models import AuditAction, AuditEvent, Membership, Role, Tenant, User
from tests.browser import artefacts, chromium
from tests.conftest import Scp, Web, start_web, stop_process, storescu
from tests.tenants.dicomconfig.conftest import echoscu
from tests.worklists.conftest import reading  # noqa: F401 - the fixture

T = TypeVar("T")


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


def off_the_loop(work: Callable[[], T]) -> T:
    """Run ORM work from inside a Playwright block (its event loop makes Django refuse it)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def sign_in(browser: Browser, url: str, username: str, password: str, secret: bytes) -> Page:
    """Password, then the authenticator's code, as every radiologist and admin signs in."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/mfa/verify/**")
    page.fill("#id_code", f"{totp(secret):06d}")
    page.click("form.mfa button[type=submit]")
    page.wait_for_url(f"{url}/")
    return page


def studies_received(page: Page) -> str:
    return page.inner_text(".usage-daily p")


def test_a_new_hospital_goes_from_invitation_to_a_study_on_the_group_worklist(
    onboarding_web: Web,
    people: Any,
    reading: Any,  # noqa: F811 - the fixture imported above
    scp: Scp,
    mail_dir: Path,
) -> None:
    url = onboarding_web.url
    root = User.objects.create_superuser("root", password=people.password)
    keys = {
        user.username: TOTPDevice.objects.create(
            user=user, name="Authenticator app", confirmed=True
        ).bin_key
        for user in (root, reading.grace, reading.bob)
    }
    shots = artefacts()
    with chromium() as browser:
        # The platform admin creates the hospital; a taken AE title is a form error first.
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{url}/login/?next=/platform/")
        page.fill("#id_username", "root")
        page.fill("#id_password", people.password)
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/mfa/verify/**")
        page.fill("#id_code", f"{totp(keys['root']):06d}")
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

        # Its admin accepts the invitation and enrols an authenticator app.
        nora = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        nora.goto(url + invitation_path(mail_dir))
        assert "North Clinic" in nora.inner_text("h1")
        nora.screenshot(path=str(shots / "onboarding-invite.png"))
        nora.fill("#id_username", "nora")
        nora.fill("#id_password1", "a-long-unusual-passphrase-42")
        nora.fill("#id_password2", "a-long-unusual-passphrase-42")
        nora.click("form.new-account button[type=submit]")
        nora.wait_for_url("**/mfa/enrol/**")
        secret = nora.inner_text("#totp-secret").strip()
        nora.fill("#id_code", f"{totp(b32decode(secret)):06d}")
        nora.click("form.enrol button[type=submit]")
        assert nora.locator(".recovery-codes li").count() == 10
        nora.click("#continue")
        nora.wait_for_url(f"{url}/t/north-clinic/setup/")
        assert "Users and roles" in nora.inner_text("main")
        nora.screenshot(path=str(shots / "onboarding-setup-overview.png"), full_page=True)

        # The usage dashboard before anything arrives.
        nora.goto(f"{url}/t/north-clinic/usage/")
        assert studies_received(nora).startswith("0 studies, 0 instances")

        # The DICOM step: a malformed network is refused, then the CT scanner is let in.
        nora.goto(f"{url}/t/north-clinic/setup/dicom/")
        assert "NORTHCLINIC" in nora.inner_text(".called-ae-titles")
        add_caller = "form:has(input[value=add-caller])"
        nora.fill(f"{add_caller} input[name=new-ae_title]", "NORTHCT")
        nora.fill(f"{add_caller} input[name=new-network]", "10.0.0.300/8")
        nora.click(f"{add_caller} button[type=submit]")
        assert "Network" in nora.inner_text(f"{add_caller} .errors")
        assert "No rule: no modality can send yet." in nora.inner_text("table.callers")
        nora.fill(f"{add_caller} input[name=new-ae_title]", "NORTHCT")
        nora.fill(f"{add_caller} input[name=new-network]", "127.0.0.1/32")
        nora.click(f"{add_caller} button[type=submit]")
        nora.wait_for_selector("table.callers input[value=NORTHCT]")
        nora.screenshot(path=str(shots / "onboarding-dicom.png"), full_page=True)

        # The agreements step: demo-readers reads this hospital's CT.
        nora.goto(f"{url}/t/north-clinic/setup/agreements/")
        nora.select_option("select[name=group]", "demo-readers")
        nora.fill("input[name=modalities]", "CT")
        nora.click("form.settings button[type=submit]")
        nora.wait_for_selector("table.agreements tr[id^=agreement-]")
        assert "Demo Readers" in nora.inner_text("table.agreements")
        nora.screenshot(path=str(shots / "onboarding-agreement.png"), full_page=True)

        # The group's admin gives bob a CT privilege at the new hospital.
        grace = sign_in(browser, url, "grace", people.password, keys["grace"])
        grace.goto(f"{url}/g/demo-readers/credentials/")
        form = "#privilege-form"
        grace.select_option(f"{form} select[name=user]", "bob")
        grace.select_option(f"{form} select[name=tenant]", "north-clinic")
        grace.fill(f"{form} input[name=modalities]", "CT")
        grace.fill(f"{form} input[name=valid_from]", timezone.localdate().isoformat())
        grace.click(f"{form} button[type=submit]")
        grace.wait_for_selector("table.credentials td:has-text('Privileges at North Clinic: CT')")
        grace.screenshot(path=str(shots / "onboarding-privilege.png"), full_page=True)

        # The hospital's modality reaches the new AE title.
        assert echoscu(scp.port, "NORTHCLINIC", "NORTHCT").returncode == 0
        sent = storescu(
            scp.port, "NORTHCLINIC", Path(get_testdata_file("CT_small.dcm")), calling="NORTHCT"
        )
        assert sent.returncode == 0, sent.stderr

        def ready() -> int:
            from studies.models import Instance
            from studies.services import sweep_ready_studies

            tenant = Tenant.objects.get(slug="north-clinic")
            deadline = time.monotonic() + 60
            while not Instance.objects.filter(tenant=tenant).exists():
                assert time.monotonic() < deadline, "the instance was never indexed"
                time.sleep(0.2)
            # Past the quiet period: the sweep makes the study ready and its work item.
            return len(sweep_ready_studies(now=timezone.now() + timedelta(hours=1)))

        assert off_the_loop(ready) == 1

        # It is on the reading group's worklist: bob's.
        bob = sign_in(browser, url, "bob", people.password, keys["bob"])
        bob.goto(f"{url}/worklist/")
        bob.wait_for_selector("#worklist-rows tr:has-text('North Clinic')")
        bob.screenshot(path=str(shots / "onboarding-worklist.png"), full_page=True)

        # And the hospital's dashboard counts it.
        nora.goto(f"{url}/t/north-clinic/usage/")
        assert studies_received(nora).startswith("1 studies, 1 instances")
        nora.screenshot(path=str(shots / "onboarding-usage.png"), full_page=True)

    tenant = Tenant.objects.get(slug="north-clinic")
    nora_user = User.objects.get(username="nora")
    assert Membership.objects.filter(user=nora_user, tenant=tenant, role=Role.TENANT_ADMIN).exists()
    actions = set(AuditEvent.objects.filter(tenant=tenant).values_list("action", flat=True))
    for expected in (
        AuditAction.TENANT_CREATE,
        AuditAction.INVITE_ACCEPT,
        AuditAction.SETTINGS_CHANGE,
        AuditAction.AGREEMENT_ADD,
        AuditAction.ASSOCIATION_ACCEPTED,
        AuditAction.DIMSE_STORE,
        AuditAction.USAGE_VIEW,
    ):
        assert expected in actions, expected
