"""Signing a report asks the authenticator code of a radiologist who has set one up."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from tenants.models import AuditAction, AuditEvent
from tests.reports.conftest import (  # noqa: F401 - fixtures
    _sqlite_flush_may_empty_signed_versions,
    reading,
)


def _sign(client: APIClient, item: Any, password: str, mfa_code: str = "") -> Any:
    return client.post(
        f"/api/reports/items/{item.pk}/sign/",
        {"status": "preliminary", "password": password, "mfa_code": mfa_code},
        format="json",
    )


def test_signing_asks_the_code_when_the_radiologist_has_an_authenticator(reading):  # noqa: F811
    device = TOTPDevice.objects.create(user=reading.bob, name="app", confirmed=True)
    client = APIClient()
    client.force_authenticate(reading.bob)
    item = reading.item(reading.people.demo)
    assert client.post(f"/api/worklist/items/{item.pk}/claim/").status_code == 200
    saved = client.put(
        f"/api/reports/items/{item.pk}/draft/", {"findings": "No free air."}, format="json"
    )
    assert saved.status_code == 200, saved.content
    assert _sign(client, item, reading.password).status_code in (400, 403)
    assert _sign(client, item, reading.password, "000000").status_code in (400, 403)
    code = f"{totp(device.bin_key):06d}"
    signed = _sign(client, item, reading.password, code)
    assert signed.status_code == 200, signed.content
    purposes = AuditEvent.objects.filter(
        actor_user=reading.bob, action__in=[AuditAction.MFA_FAILED, AuditAction.MFA_VERIFY]
    ).values_list("action", "detail__purpose")
    assert (AuditAction.MFA_VERIFY, "sign") in set(purposes)
    # The reading room shows the code field to this radiologist.
    page = Client()
    page.force_login(reading.bob)
    room = page.get(f"/worklist/items/{item.pk}/")
    assert room.status_code == 200
    assert b'id="sign-mfa" name="mfa_code"' in room.content
    assert b'class="mfa" hidden' not in room.content


def test_a_token_kept_to_one_hospital_finds_no_work_item_of_another(reading):  # noqa: F811
    from tenants import tokens

    other = reading.item(reading.people.second)
    _, scoped = tokens.issue(user=reading.bob, tenant_slug="demo-hospital")
    _, wide = tokens.issue(user=reading.bob)
    client = APIClient()
    url = f"/api/reports/items/{other.pk}/"
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {wide}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {scoped}").status_code == 404
