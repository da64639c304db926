"""Bearer tokens: issued by the command, stored hashed, refused when bad, expired or revoked."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiToken, AuditAction, AuditEvent


@pytest.mark.smoke
def test_issue_token_prints_a_token_that_is_stored_only_as_a_hash(people):
    out = io.StringIO()
    call_command("issue_token", "alice", stdout=out)
    token = out.getvalue().strip()
    assert token.startswith("sky_")
    row = ApiToken.objects.get(user=people.alice)
    assert token.split("_", 2)[2] not in (row.secret_hash, row.prefix)
    assert row.secret_hash == ApiToken.hash_secret(token.split("_", 2)[2])
    assert AuditEvent.objects.filter(
        action=AuditAction.TOKEN_ISSUED, actor_user=people.alice
    ).exists()
    response = APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["username"] == "alice"


def test_issue_token_for_an_unknown_user_fails_with_a_clear_message(people):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No active user named 'nobody'"):
        call_command("issue_token", "nobody")


@pytest.mark.parametrize(
    "header", ["Bearer sky_abc", "Bearer sky_abc_def", "Bearer ", "Bearer x_y_z"]
)
def test_malformed_or_unknown_tokens_get_401(people, header):
    response = APIClient().get("/api/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_expired_and_revoked_tokens_get_401(people, token_for):
    token = token_for(people.alice)
    client = APIClient()
    assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    ApiToken.objects.filter(user=people.alice).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    ApiToken.objects.filter(user=people.alice).update(expires_at=None, revoked_at=timezone.now())
    assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_a_tampered_secret_with_a_valid_prefix_gets_401(people, token_for):
    token = token_for(people.alice)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {tampered}").status_code == 401
