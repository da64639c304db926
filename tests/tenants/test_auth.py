"""Authentication at the edge: the TOTP second step, lockouts, session clocks, password policy."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.models import AuditAction, AuditEvent, Role, SecurityPolicy, User
from tenants.sessions import AUTHENTICATED_AT, LAST_ACTIVITY


@pytest.fixture
def mfa_on(settings):
    settings.SKYLIGHT_MFA_REQUIRED = True
    return settings


def code_for(device: TOTPDevice, *, step: int = 0) -> str:
    """The code the app shows now (step 0) or in the next 30-second window (step 1)."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, drift=step):06d}"


def give_device(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def password_step(client: Client, username: str, password: str, *, next_url: str = "/"):
    return client.post(
        "/login/",
        {"username": username, "password": password, "next": next_url},
        REMOTE_ADDR="192.0.2.10",
    )


def test_a_radiologist_with_a_device_logs_in_with_password_then_code(people, mfa_on):
    device = give_device(people.bob)
    client = Client()
    response = password_step(client, "bob", people.password, next_url="/worklist/")
    assert response.status_code == 302
    # The password alone reaches nothing but the code page.
    blocked = client.get("/worklist/")
    assert blocked.status_code == 302 and blocked["Location"].startswith("/mfa/verify/")
    assert client.get("/api/me/").status_code == 401
    refused = client.post("/mfa/verify/", {"code": "000000", "next": "/worklist/"})
    assert refused.status_code == 400 and b"not right" in refused.content
    answered = client.post("/mfa/verify/", {"code": code_for(device), "next": "/worklist/"})
    assert answered.status_code == 302 and answered["Location"] == "/worklist/"
    assert client.get("/worklist/").status_code == 200
    actions = set(AuditEvent.objects.filter(actor_user=people.bob).values_list("action", flat=True))
    assert {AuditAction.LOGIN, AuditAction.MFA_FAILED, AuditAction.MFA_VERIFY} <= actions


def test_a_radiologist_without_a_device_must_enrol_before_anything_else(people, mfa_on):
    client = Client()
    password_step(client, "bob", people.password)
    response = client.get("/worklist/")
    assert response.status_code == 302 and response["Location"].startswith("/mfa/enrol/")
    page = client.get("/mfa/enrol/")
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=people.bob, confirmed=False)
    assert client.post("/mfa/enrol/", {"code": "123456"}).status_code == 400
    done = client.post("/mfa/enrol/", {"code": code_for(device)})
    assert done.status_code == 200 and b"recovery" in done.content.lower()
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/worklist/").status_code == 200
    assert AuditEvent.objects.filter(actor_user=people.bob, action=AuditAction.MFA_ENROL).exists()
    # The secret is not shown again once confirmed.
    assert client.get("/mfa/enrol/").status_code == 302


def test_a_recovery_code_works_once(people, mfa_on):
    client = Client()
    password_step(client, "bob", people.password)
    client.get("/mfa/enrol/")
    device = TOTPDevice.objects.get(user=people.bob)
    page = client.post("/mfa/enrol/", {"code": code_for(device)})
    recovery = page.context["codes"][0]
    for expected in (302, 400):
        other = Client()
        password_step(other, "bob", people.password)
        assert other.post("/mfa/verify/", {"code": recovery}).status_code == expected


def test_a_referrer_is_asked_only_where_the_hospital_requires_it(people, mfa_on):
    from tenants import services

    erin = User.objects.create_user("erin", password=people.password)
    services.add_membership(user=erin, tenant=people.demo, role=Role.REFERRING_PHYSICIAN)
    client = Client()
    password_step(client, "erin", people.password)
    assert client.get("/").status_code == 200
    SecurityPolicy.objects.create(tenant=people.demo, referrer_mfa_required=True)
    client = Client()
    password_step(client, "erin", people.password)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/mfa/enrol/")


def test_five_wrong_passwords_lock_the_username_from_that_address(people):
    client = Client()
    answers = [password_step(client, "alice", "wrong password here").status_code for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]  # the fifth failure locks
    locked = password_step(client, "alice", people.password)
    assert locked.status_code == 429
    assert b"Too many attempts; try again in 15 minutes." in locked.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).count() >= 5
    lockout = AuditEvent.objects.filter(action=AuditAction.LOCKOUT).earliest("id")
    assert lockout.detail["username"] == "alice" and lockout.source_address == "192.0.2.10"
    # Another address is not locked out by this one's guesses.
    other = Client().post(
        "/login/", {"username": "alice", "password": people.password}, REMOTE_ADDR="192.0.2.99"
    )
    assert other.status_code == 302


def test_wrong_codes_lock_the_second_step_and_are_audited(people, mfa_on):
    device = give_device(people.bob)
    client = Client()
    password_step(client, "bob", people.password)
    for _ in range(4):
        assert client.post("/mfa/verify/", {"code": "000000"}).status_code == 400
    locked = client.post("/mfa/verify/", {"code": "000000"})
    assert locked.status_code == 429 and b"Too many wrong codes" in locked.content
    # Even the right code is refused now, from a fresh login too.
    again = Client()
    password_step(again, "bob", people.password)
    assert again.post("/mfa/verify/", {"code": code_for(device)}).status_code == 429
    assert (
        AuditEvent.objects.filter(actor_user=people.bob, action=AuditAction.MFA_FAILED).count() == 5
    )
    assert AuditEvent.objects.filter(actor_user=people.bob, action=AuditAction.LOCKOUT).exists()


def _age_session(client: Client, *, idle: float = 0, lifetime: float = 0) -> None:
    session = client.session
    session[LAST_ACTIVITY] = time.time() - idle
    session[AUTHENTICATED_AT] = time.time() - lifetime
    session.save()


def test_an_idle_session_ends_after_thirty_minutes_and_says_why(people):
    client = Client()
    password_step(client, "alice", people.password)
    assert client.get("/").status_code == 200
    _age_session(client, idle=29 * 60, lifetime=29 * 60)
    assert client.get("/").status_code == 200
    _age_session(client, idle=31 * 60, lifetime=31 * 60)
    response = client.get("/")
    assert response.status_code == 302 and "expired=idle" in response["Location"]
    assert client.get("/").status_code == 302  # logged out for good
    page = client.get(response["Location"])
    assert b"without activity" in page.content
    event = AuditEvent.objects.get(action=AuditAction.SESSION_EXPIRED)
    assert event.actor_user == people.alice and event.detail["reason"] == "idle"


def test_a_session_ends_at_its_absolute_lifetime_however_active(people):
    client = Client()
    password_step(client, "alice", people.password)
    _age_session(client, idle=0, lifetime=12 * 3600 + 60)
    response = client.get("/api/me/")
    assert response.status_code == 401 and "12 hours" in response.json()["detail"]
    assert AuditEvent.objects.get(action=AuditAction.SESSION_EXPIRED).detail["reason"] == "lifetime"


def test_background_polls_do_not_keep_a_session_alive(people):
    client = Client()
    password_step(client, "alice", people.password)
    _age_session(client, idle=20 * 60, lifetime=20 * 60)
    client.get("/", HTTP_X_SKYLIGHT_BACKGROUND="1")
    assert client.session[LAST_ACTIVITY] < time.time() - 19 * 60
    client.get("/")
    assert client.session[LAST_ACTIVITY] > time.time() - 60


@pytest.mark.parametrize(
    ("password", "complaint"),
    [
        ("short1!", b"too short"),
        ("password1234", b"too common"),
        ("483920174635", b"entirely numeric"),
        ("alice@example.org1", b"too similar"),
    ],
)
def test_the_password_policy_is_enforced_on_change(people, password, complaint):
    people.alice.email = "alice@example.org"
    people.alice.save()
    client = Client()
    password_step(client, "alice", people.password)
    response = client.post(
        "/password/",
        {"old_password": people.password, "new_password1": password, "new_password2": password},
    )
    assert response.status_code == 200 and complaint in response.content
    people.alice.refresh_from_db()
    assert people.alice.check_password(people.password)


def test_a_good_new_password_is_accepted_and_audited(people):
    client = Client()
    password_step(client, "alice", people.password)
    new = "violet quartz lantern 42"
    response = client.post(
        "/password/", {"old_password": people.password, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    people.alice.refresh_from_db()
    assert people.alice.check_password(new)
    assert AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGE).exists()
    assert client.get("/").status_code == 200  # still signed in


def test_state_changes_need_the_csrf_token(people):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.alice)
    assert client.post("/tokens/", {"name": "x"}).status_code == 403


def test_a_hospital_admin_sets_the_referrer_policy_and_others_get_404(people):
    admin = Client()
    admin.force_login(people.alice)
    assert admin.get("/t/demo-hospital/security/").status_code == 200
    saved = admin.post("/t/demo-hospital/security/", {"referrer_mfa_required": "on"})
    assert saved.status_code == 302
    assert SecurityPolicy.objects.get(tenant=people.demo).referrer_mfa_required
    assert AuditEvent.objects.filter(
        action=AuditAction.SETTINGS_CHANGE, tenant=people.demo, actor_user=people.alice
    ).exists()
    for user, slug in (
        (people.charlie, "demo-hospital"),
        (people.bob, "demo-hospital"),
        (people.alice, "second-hospital"),
    ):
        other = Client()
        other.force_login(user)
        assert other.get(f"/t/{slug}/security/").status_code == 404
