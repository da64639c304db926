"""An invitation's life: sent, accepted once, expired, withdrawn, sent again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from tenants.models import AuditAction, AuditEvent, Membership, Role, User
from tenants.onboarding import services
from tenants.onboarding.models import Invitation
from tests.tenants.onboarding.conftest import login, token_from

NEW_ACCOUNT = {
    "username": "nina",
    "password1": "a-long-unusual-passphrase-42",
    "password2": "a-long-unusual-passphrase-42",
}


def invite_admin(people: Any, **kwargs: Any) -> str:
    _, token = services.invite(
        target=people.demo,
        email="nina@demo.example",
        role=Role.TENANT_ADMIN,
        actor=people.alice,
        **kwargs,
    )
    return token


def test_the_invitee_chooses_a_username_and_lands_on_the_set_up(people, mailoutbox):
    token = invite_admin(people)
    assert token_from(mailoutbox[0]) == token
    client = Client()
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Demo Hospital" in body and "Tenant admin" in body
    response = client.post(f"/invite/{token}/", NEW_ACCOUNT)
    assert response.status_code == 302
    assert response["Location"] == "/t/demo-hospital/setup/"
    nina = User.objects.get(username="nina")
    assert nina.email == "nina@demo.example"
    assert Membership.objects.filter(user=nina, tenant=people.demo, role=Role.TENANT_ADMIN).exists()
    assert client.get("/t/demo-hospital/setup/").status_code == 200  # signed in
    assert AuditEvent.objects.filter(
        tenant=people.demo, actor_user=nina, action=AuditAction.INVITE_ACCEPT
    ).exists()


def test_a_weak_password_is_refused_by_the_validators_and_makes_no_account(people):
    token = invite_admin(people)
    response = Client().post(
        f"/invite/{token}/", {"username": "nina", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 400
    assert "This password is too short" in response.content.decode()
    assert not User.objects.filter(username="nina").exists()
    assert Invitation.objects.get().accepted_at is None


def test_a_used_invitation_says_so_and_gives_nothing_twice(people):
    token = invite_admin(people)
    Client().post(f"/invite/{token}/", NEW_ACCOUNT)
    again = Client().post(f"/invite/{token}/", {**NEW_ACCOUNT, "username": "mallory"})
    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    assert not User.objects.filter(username="mallory").exists()
    # Someone signed in cannot take it either.
    assert login(people.bob).post(f"/invite/{token}/").status_code == 410
    assert not Membership.objects.filter(user=people.bob, tenant=people.demo).exists()


def test_an_expired_invitation_says_so(people):
    token = invite_admin(people, now=timezone.now() - timedelta(days=8))
    response = Client().get(f"/invite/{token}/")
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert Client().post(f"/invite/{token}/", NEW_ACCOUNT).status_code == 410
    assert not User.objects.filter(username="nina").exists()


def test_a_withdrawn_invitation_says_so_and_the_withdrawal_is_audited(people):
    token = invite_admin(people)
    invitation = Invitation.objects.get()
    response = login(people.alice).post(
        "/t/demo-hospital/setup/users/", {"action": "revoke", "id": invitation.pk}
    )
    assert response.status_code == 302
    page = Client().get(f"/invite/{token}/")
    assert page.status_code == 410 and "withdrawn" in page.content.decode()
    assert AuditEvent.objects.filter(
        tenant=people.demo, actor_user=people.alice, action=AuditAction.INVITE_REVOKE
    ).exists()


def test_an_unknown_token_is_not_found(people):
    assert Client().get("/invite/not-a-token/").status_code == 404
    assert Client().post("/invite/not-a-token/", NEW_ACCOUNT).status_code == 404
    assert not User.objects.filter(username="nina").exists()


def test_sending_again_replaces_the_token(people, mailoutbox):
    first = invite_admin(people)
    invitation = Invitation.objects.get()
    response = login(people.alice).post(
        "/t/demo-hospital/setup/users/", {"action": "resend", "id": invitation.pk}
    )
    assert response.status_code == 302
    second = token_from(mailoutbox[-1])
    assert second != first
    assert Invitation.objects.count() == 1
    assert Client().get(f"/invite/{first}/").status_code == 404
    assert Client().get(f"/invite/{second}/").status_code == 200


def test_a_signed_in_user_accepts_with_their_own_account(people):
    _, token = services.invite(
        target=people.group, email="bob@readers.example", role=Role.GROUP_ADMIN, actor=None
    )
    client = login(people.bob)
    response = client.post(f"/invite/{token}/")
    assert response.status_code == 302
    assert response["Location"] == "/g/demo-readers/members/"
    assert Membership.objects.filter(
        user=people.bob, group=people.group, role=Role.GROUP_ADMIN
    ).exists()


def test_with_mfa_required_the_new_admin_enrols_before_anything_else(people, settings):
    settings.SKYLIGHT_MFA_REQUIRED = True
    token = invite_admin(people)
    client = Client()
    response = client.post(f"/invite/{token}/", NEW_ACCOUNT, follow=True)
    assert response.redirect_chain[-1][0].startswith("/mfa/enrol/?next=")
    assert "/t/demo-hospital/setup/" in response.redirect_chain[-1][0].replace("%2F", "/")
