"""Credential expiry reminders: once per credential per threshold, to the radiologist and the
group's admins, audited, without patient data."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone

from tenants.models import AuditAction, AuditEvent
from worklists.groupadmin.reminders import remind_expiring_credentials
from worklists.models import Licence, Privilege


def _at(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(9, 0)))


def test_each_reminder_is_sent_once_per_threshold(reading, mailoutbox):
    today = timezone.localdate()
    ends = today + timedelta(days=40)
    licence = Licence.objects.create(
        user=reading.dave, jurisdiction="US-NY", number="NY-5", valid_from=date(2020, 1, 1),
        valid_to=ends,
    )  # fmt: skip
    privilege = Privilege.objects.create(
        user=reading.dave, tenant=reading.people.demo, modalities=["CT"],
        valid_from=date(2020, 1, 1), valid_to=ends,
    )  # fmt: skip
    assert remind_expiring_credentials(now=_at(today)) == 0  # 40 days: nothing due yet
    thirty = _at(ends - timedelta(days=25))
    assert remind_expiring_credentials(now=thirty) == 2  # the licence and the privilege
    assert remind_expiring_credentials(now=thirty) == 0
    assert remind_expiring_credentials(now=thirty + timedelta(days=1)) == 0
    assert len(mailoutbox) == 2
    for mail in mailoutbox:
        assert set(mail.to) == {"dave@example.org", "grace@example.org"}
        assert "ends in 25 days" in mail.subject
        assert "DOE" not in mail.body and "JANE" not in mail.body

    seven = _at(ends - timedelta(days=6))
    assert remind_expiring_credentials(now=seven) == 2
    assert remind_expiring_credentials(now=seven) == 0
    assert len(mailoutbox) == 4

    events = AuditEvent.objects.filter(action=AuditAction.CREDENTIAL_REMINDER)
    assert sorted((e.detail["kind"], e.detail["days_before"]) for e in events) == [
        ("licence", 7), ("licence", 30), ("privilege", 7), ("privilege", 30),
    ]  # fmt: skip
    assert {e.tenant_id for e in events if e.detail["kind"] == "privilege"} == {
        reading.people.demo.pk
    }

    # The licence renewed to a new date gets reminders again; the privilege, ended by then, not.
    licence.valid_to = ends + timedelta(days=365)
    licence.save()
    assert remind_expiring_credentials(now=_at(licence.valid_to - timedelta(days=20))) == 1
    assert mailoutbox[-1].subject.startswith("Skylight: licence NY-5")
    assert privilege.valid_to < licence.valid_to - timedelta(days=20)


def test_a_credential_first_seen_inside_the_last_week_gets_one_mail(reading, mailoutbox):
    today = timezone.localdate()
    Licence.objects.create(
        user=reading.dave, jurisdiction="US-NY", number="NY-6", valid_from=date(2020, 1, 1),
        valid_to=today + timedelta(days=3),
    )  # fmt: skip
    assert remind_expiring_credentials(now=_at(today)) == 1
    assert remind_expiring_credentials(now=_at(today + timedelta(days=1))) == 0
    assert len(mailoutbox) == 1
