"""API tokens: scoped to a hospital and to reading, expiring, revocable, listed for their owner,
over REST and DICOMweb."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import tokens
from tenants.models import ApiToken, AuditAction, AuditEvent


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_tenant_scoped_token_sees_other_hospitals_as_not_found(people):
    _, token = tokens.issue(user=people.bob, tenant_slug="demo-hospital")
    client = APIClient()
    assert client.get("/api/t/demo-hospital/studies/", **bearer(token)).status_code == 200
    assert client.get("/api/t/second-hospital/studies/", **bearer(token)).status_code == 404
    qido = "/t/{}/dicomweb/studies"
    assert Client().get(qido.format("demo-hospital"), **bearer(token)).status_code in (200, 204)
    assert Client().get(qido.format("second-hospital"), **bearer(token)).status_code == 404
    # The same user's unscoped token still reads both.
    _, wide = tokens.issue(user=people.bob)
    assert client.get("/api/t/second-hospital/studies/", **bearer(wide)).status_code == 200


def test_a_read_only_token_reads_but_cannot_store_or_save(people):
    _, token = tokens.issue(user=people.alice, read_only=True)
    client = APIClient()
    assert client.get("/api/t/demo-hospital/studies/", **bearer(token)).status_code == 200
    stow = Client().post(
        "/t/demo-hospital/dicomweb/studies",
        data=b"--x--\r\n",
        content_type='multipart/related; type="application/dicom"; boundary=x',
        **bearer(token),
    )
    assert stow.status_code == 403 and "read-only" in stow.json()["error"]
    save = client.post(
        "/api/reports/items/1/draft/", {"findings": "x"}, format="json", **bearer(token)
    )
    assert save.status_code == 403 and "read-only" in save.json()["detail"]
    _, writer = tokens.issue(user=people.alice, read_only=False)
    stow_rw = Client().post(
        "/t/demo-hospital/dicomweb/studies",
        data=b"--x--\r\n",
        content_type='multipart/related; type="application/dicom"; boundary=x',
        **bearer(writer),
    )
    assert stow_rw.status_code != 403


def test_tokens_expire_by_default_and_never_beyond_the_maximum(people, settings):
    token, _ = tokens.issue(user=people.alice)
    lifetime = token.expires_at - token.created_at
    assert timedelta(days=89) < lifetime <= timedelta(days=90, seconds=5)
    with pytest.raises(tokens.TokenRequestError, match="from 1 to 365 days"):
        tokens.issue(user=people.alice, days=366)
    response = Client()
    response.force_login(people.alice)
    page = response.post("/tokens/", {"name": "long", "days": "400", "access": "read-only"})
    assert page.status_code == 400 and b"from 1 to 365 days" in page.content


def test_an_expired_token_is_refused_over_dicomweb(people):
    token, plaintext = tokens.issue(user=people.alice)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get("/t/demo-hospital/dicomweb/studies", **bearer(plaintext))
    assert response.status_code == 401


def test_the_owner_lists_and_revokes_tokens_and_nobody_else_can(people):
    client = APIClient()
    client.force_login(people.alice)
    created = client.post(
        "/api/tokens/",
        {"name": "gateway", "tenant": "demo-hospital", "read_only": True},
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert (
        body["tenant"] == "demo-hospital" and body["read_only"] and body["token"].startswith("sky_")
    )
    plaintext = body["token"]
    assert APIClient().get("/api/me/", **bearer(plaintext)).status_code == 200
    listed = client.get("/api/tokens/").json()
    assert [row["prefix"] for row in listed] == [body["prefix"]] and "token" not in listed[0]
    # Charlie neither sees nor revokes it: not found.
    other = APIClient()
    other.force_login(people.charlie)
    assert other.get("/api/tokens/").json() == []
    assert other.post(f"/api/tokens/{body['id']}/revoke/").status_code == 404
    # A token cannot mint tokens.
    minted = APIClient().post("/api/tokens/", {}, format="json", **bearer(plaintext))
    assert minted.status_code == 403
    revoked = client.post(f"/api/tokens/{body['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert APIClient().get("/api/me/", **bearer(plaintext)).status_code == 401
    assert Client().get("/t/demo-hospital/dicomweb/studies", **bearer(plaintext)).status_code == 401
    assert (
        AuditEvent.objects.filter(action=AuditAction.TOKEN_REVOKED, actor_user=people.alice).count()
        == 1
    )


def test_the_tokens_page_issues_shows_once_and_revokes(people):
    client = Client()
    client.force_login(people.bob)
    page = client.post(
        "/tokens/", {"name": "viewer", "tenant": "second-hospital", "access": "read-only"}
    )
    assert page.status_code == 200 and b"shown only once" in page.content
    token = ApiToken.objects.get(user=people.bob)
    assert token.tenant == people.second and token.read_only
    assert b"shown only once" not in client.get("/tokens/").content
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    refused = client.post("/tokens/", {"tenant": "no-such-hospital"})
    assert refused.status_code == 400 and b"hospital you read for" in refused.content


def test_issue_token_command_takes_a_tenant_and_read_only(people):
    out = io.StringIO()
    call_command("issue_token", "bob", "--tenant", "demo-hospital", "--read-only", stdout=out)
    token = ApiToken.objects.get(user=people.bob)
    assert token.tenant == people.demo and token.read_only and token.expires_at is not None
    assert out.getvalue().strip().startswith(f"sky_{token.prefix}_")
