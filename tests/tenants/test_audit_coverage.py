"""Role and configuration changes are audited in every hospital they touch; break-glass opens one
work item of one's own hospital, read-only, for a short time, audited, the admins told."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants import audit, services
from tenants.auditlog import breakglass
from tenants.models import AuditAction, AuditEvent, Membership, Role, User
from tests.worklists.conftest import make_item


def _rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_membership_and_agreement_changes_are_audited_per_hospital(people):
    actor = audit.Actor.for_user(people.alice)
    nurse = User.objects.create_user("nurse")
    membership = services.add_membership(
        user=nurse, tenant=people.demo, role=Role.TECHNOLOGIST, actor=actor
    )
    (added,) = [r for r in _rows(AuditAction.MEMBERSHIP_ADD) if r.detail["member"] == nurse.pk]
    assert added.tenant_id == people.demo.pk and added.actor_user_id == people.alice.pk
    assert added.detail["role"] == Role.TECHNOLOGIST

    # A reading-group role opens every hospital the group reads for: each one's log shows it.
    reader = User.objects.create_user("reader")
    group_role = services.add_membership(user=reader, group=people.group, role=Role.RADIOLOGIST)
    tenants = {
        r.tenant_id for r in _rows(AuditAction.MEMBERSHIP_ADD) if r.detail["member"] == reader.pk
    }
    assert tenants == {people.demo.pk, people.second.pk}

    services.remove_membership(membership, actor=actor)
    services.remove_membership(group_role)
    assert not Membership.objects.filter(user__in=[nurse, reader]).exists()
    removed = _rows(AuditAction.MEMBERSHIP_REMOVE)
    assert {(r.tenant_id, r.detail["member"]) for r in removed} == {
        (people.demo.pk, nurse.pk),
        (people.demo.pk, reader.pk),
        (people.second.pk, reader.pk),
    }

    group = services.create_group(slug="weekend", name="Weekend Readers")
    services.create_agreement(tenant=people.second, group=group, actor=actor)
    services.create_agreement(tenant=people.second, group=group, actor=actor)  # again: no-op
    agreements = [r for r in _rows(AuditAction.AGREEMENT_ADD) if r.detail["group"] == group.pk]
    assert len(agreements) == 1 and agreements[0].tenant_id == people.second.pk

    services.issue_token(user=people.alice, name="script")
    assert _rows(AuditAction.TOKEN_ISSUED)


@pytest.fixture
def emergency(people):  # noqa: ANN001, ANN201
    """A hospital radiologist of demo-hospital with no privilege, and an MR item of demo."""
    people.alice.email = "alice@example.org"
    people.alice.save()
    hank = User.objects.create_user("hank", password=people.password)
    services.add_membership(user=hank, tenant=people.demo, role=Role.RADIOLOGIST)
    item = make_item(people.demo, modality="MR", patient_name="SECRET^PATIENT")
    return hank, item


def test_break_glass_opens_one_item_read_only_audited_and_admins_told(
    people, emergency, client, mailoutbox
):
    hank, item = emergency
    client.force_login(hank)
    page = f"/worklist/items/{item.pk}/"
    glass = f"/audit/break-glass/{item.pk}/"
    response = client.get(page)
    assert response.status_code == 302 and response["Location"] == glass
    assert "read-only for 60 minutes" in client.get(glass).content.decode()

    short = client.post(glass, {"reason": "need it"})
    assert short.status_code == 400
    assert "at least 10 characters" in short.content.decode()
    assert not _rows(AuditAction.BREAK_GLASS)

    reason = "Trauma call, on-call radiologist unavailable"
    opened = client.post(glass, {"reason": reason})
    assert opened.status_code == 302 and opened["Location"] == page
    assert client.get(page).status_code == 200

    (row,) = _rows(AuditAction.BREAK_GLASS)
    assert row.tenant_id == people.demo.pk and row.actor_user_id == hank.pk
    assert row.study_instance_uid == item.study.study_instance_uid
    assert reason not in str(row.detail)  # the reason stays on the grant, not in the detail
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.org"]
    assert f"work item {item.pk}" in mail.body and "hank" in mail.body
    assert "SECRET" not in mail.body + mail.subject and reason not in mail.body

    client.force_login(people.alice)
    log = client.get("/audit/").content.decode()
    assert reason in log.split('id="break-glass"')[1]

    # Others may not break glass: a reading-group radiologist, another hospital's admin.
    for outsider in (people.bob, people.charlie):
        client.force_login(outsider)
        assert client.get(glass).status_code == 404
        assert client.post(glass, {"reason": reason}).status_code == 404


def test_break_glass_lapses(people, emergency):
    hank, item = emergency
    long_ago = timezone.now() - timedelta(hours=2)
    grant = breakglass.open_item(
        hank, item.pk, "Trauma call last night", audit.Actor.for_user(hank), now=long_ago
    )
    assert grant is not None
    assert breakglass.grants_item(hank, item.pk, now=long_ago + timedelta(minutes=59))
    assert not breakglass.grants_item(hank, item.pk)
