"""The platform console: staff create hospitals and reading groups with their first admin."""

from __future__ import annotations

from typing import Any

from tenants.models import AuditAction, AuditEvent, CalledAETitle, ReadingGroup, Tenant
from tenants.onboarding.models import Invitation
from tests.tenants.onboarding.conftest import login, token_from

HOSPITAL = {
    "kind": "hospital",
    "hospital-slug": "north-clinic",
    "hospital-name": "North Clinic",
    "hospital-jurisdiction": "US-CA",
    "hospital-called_ae_title": "NORTHCLINIC",
    "hospital-admin_email": "admin@north.example",
}


def snapshot() -> tuple[int, int, int, int]:
    return (
        Tenant.objects.count(),
        CalledAETitle.objects.count(),
        Invitation.objects.count(),
        ReadingGroup.objects.count(),
    )


def test_staff_create_a_hospital_and_its_admin_is_invited(staff, root, mailoutbox):
    response = staff.post("/platform/", HOSPITAL)
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="north-clinic")
    assert tenant.jurisdiction == "US-CA"
    assert list(tenant.called_ae_titles.values_list("ae_title", flat=True)) == ["NORTHCLINIC"]
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["admin@north.example"]
    assert "North Clinic" in mail.body and "http://127.0.0.1:8000/invite/" in mail.body
    token = token_from(mail)
    assert len(token) >= 43  # 256 bits
    invitation = Invitation.objects.get(tenant=tenant)
    assert invitation.token_hash == Invitation.hash_token(token) != token
    actions = set(
        AuditEvent.objects.filter(tenant=tenant, actor_user=root).values_list("action", flat=True)
    )
    assert {AuditAction.TENANT_CREATE, AuditAction.INVITE_SEND} <= actions
    page = staff.get("/platform/")
    row = page.content.decode().split('data-slug="north-clinic"')[1].split("</tr>")[0]
    assert "invited" in row


def test_a_taken_ae_title_is_a_form_error_and_changes_nothing(staff, people, mailoutbox):
    before = snapshot()
    response = staff.post("/platform/", {**HOSPITAL, "hospital-called_ae_title": "DEMOHOSP"})
    assert response.status_code == 400
    assert "The AE title DEMOHOSP is taken by another hospital." in response.content.decode()
    assert snapshot() == before and not mailoutbox


def test_a_17_character_ae_title_is_refused(staff, mailoutbox):
    before = snapshot()
    response = staff.post("/platform/", {**HOSPITAL, "hospital-called_ae_title": "A" * 17})
    assert response.status_code == 400
    assert "at most 16 characters" in response.content.decode()
    assert snapshot() == before and not mailoutbox


def test_an_ae_title_with_a_backslash_and_a_bad_email_are_both_named(staff, mailoutbox):
    before = snapshot()
    response = staff.post(
        "/platform/",
        {**HOSPITAL, "hospital-called_ae_title": "BAD\\AE", "hospital-admin_email": "nobody@"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "without a backslash" in body and "Enter a valid email address." in body
    assert snapshot() == before and not mailoutbox


def test_a_taken_slug_is_refused(staff, people):
    before = snapshot()
    response = staff.post("/platform/", {**HOSPITAL, "hospital-slug": "demo-hospital"})
    assert response.status_code == 400
    assert "slug exists already" in response.content.decode()
    assert snapshot() == before


def test_staff_create_a_reading_group(staff, root, mailoutbox):
    response = staff.post(
        "/platform/",
        {
            "kind": "group",
            "group-slug": "night-readers",
            "group-name": "Night Readers",
            "group-admin_email": "lead@night.example",
        },
    )
    assert response.status_code == 302
    group = ReadingGroup.objects.get(slug="night-readers")
    assert Invitation.objects.get(group=group).role == "group_admin"
    assert AuditEvent.objects.filter(
        action=AuditAction.GROUP_CREATE, actor_user=root, detail__group=group.pk
    ).exists()
    assert "Night Readers" in mailoutbox[0].body


def test_the_console_does_not_exist_for_anyone_but_staff(people, mailoutbox):
    before = snapshot()
    for user in (people.alice, people.bob, people.charlie):
        client = login(user)
        assert client.get("/platform/").status_code == 404
        assert client.post("/platform/", HOSPITAL).status_code == 404
    assert snapshot() == before and not mailoutbox


def test_the_console_lists_hospitals_in_a_fixed_number_of_queries(
    staff: Any, people: Any, django_assert_max_num_queries: Any
) -> None:
    from tenants import services

    for n in range(5):
        tenant = services.create_tenant(slug=f"h{n}", name=f"H{n}")
        services.add_called_ae_title(tenant=tenant, ae_title=f"H{n}AE")
    with django_assert_max_num_queries(12):
        response = staff.get("/platform/")
    assert response.status_code == 200 and "H4AE" in response.content.decode()
