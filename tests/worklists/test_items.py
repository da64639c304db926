"""Work items: made once per ready study (or accession), classified by the tenant's rules, with
SLA clocks, escalation, priors and auto-assignment. The periodic jobs run here by direct calls
with an explicit ``now``; what they change is checked in the rows and the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from pydicom import dcmread
from pydicom.data import get_testdata_file

from studies import services as study_services
from studies.models import Study, StudyState
from tenants.models import AuditAction, AuditEvent, Outcome
from tests.conftest import ingest_now, wait_for
from tests.worklists.conftest import make_item, make_study
from worklists import priors, services
from worklists.models import (
    AutoAssignment,
    Decline,
    ItemState,
    PriorityClass,
    ReadingState,
    RoutingRule,
    StudyLink,
    WorkItem,
)


@pytest.mark.smoke
def test_a_study_that_becomes_ready_gets_exactly_one_work_item(people, indexer):
    """The real path: ingest, the quiet period passes, the ready sweep fires ``study_ready`` and
    the worklist makes the item in the sweeping process."""
    path = get_testdata_file("CT_small.dcm")
    ingest_now(people.demo, [open(path, "rb").read()])
    uid = str(dcmread(path).StudyInstanceUID)
    study = Study.objects.get(tenant=people.demo, study_instance_uid=uid)
    later = study.last_instance_at + timedelta(seconds=people.demo.quiet_period_seconds + 1)
    assert study_services.sweep_ready_studies(now=later) == [study.pk]

    wait_for(lambda: WorkItem.objects.filter(study=study).exists(), timeout=30)
    item = WorkItem.objects.get(study=study)
    assert item.tenant == people.demo
    assert item.state == ItemState.SCHEDULED and item.reading_state == ReadingState.UNREAD
    assert item.modality == "CT"
    assert item.priority.code == "routine"
    assert item.sla_due_at == item.arrived_at + timedelta(minutes=item.priority.sla_minutes)
    # Called again (a resend, a retried task, the housekeeping net): still one item.
    assert services.ensure_item(study.pk).created is False  # type: ignore[union-attr]
    services.housekeeping()
    assert WorkItem.objects.filter(tenant=people.demo).count() == 1
    assert (
        AuditEvent.objects.filter(action=AuditAction.ITEM_CREATED, tenant=people.demo).count() == 1
    )


def test_studies_sharing_an_accession_make_one_item_per_tenant(reading):
    demo, second = reading.people.demo, reading.people.second
    first = make_item(demo, accession="A100", modality="CT")
    joined = make_item(demo, accession="A100", modality="MR", patient_id=first.patient_identifier)
    assert joined.pk == first.pk
    assert StudyLink.objects.filter(item=first).count() == 2
    first.refresh_from_db()
    assert first.modalities.split("\\") == ["CT", "MR"]
    # The same accession at another hospital is another hospital's item.
    other = make_item(second, accession="A100")
    assert other.pk != first.pk and other.tenant == second


def test_a_study_not_ready_gets_no_item(reading):
    study = make_study(reading.people.demo)
    Study.objects.filter(pk=study.pk).update(state=StudyState.RECEIVING)
    assert services.ensure_item(study.pk) is None
    assert not WorkItem.objects.filter(study=study).exists()


def test_routing_rules_set_subspecialty_and_a_tenant_class_sets_the_sla(reading):
    demo = reading.people.demo
    PriorityClass.objects.create(tenant=demo, code="stroke", name="Stroke", sla_minutes=15, rank=5)
    RoutingRule.objects.create(
        tenant=demo, position=1, description_contains="stroke", priority_code="stroke",
        subspecialty="neuro",
    )  # fmt: skip
    RoutingRule.objects.create(tenant=demo, position=2, modality="MR", subspecialty="neuro")
    stroke = reading.item(modality="CT", description="CT HEAD STROKE PROTOCOL", body_part="HEAD")
    assert (stroke.subspecialty, stroke.priority.code) == ("neuro", "stroke")
    assert stroke.sla_due_at - stroke.arrived_at == timedelta(minutes=15)
    mr = reading.item(modality="MR", description="MR KNEE")
    assert (mr.subspecialty, mr.priority.code) == ("neuro", "routine")
    assert mr.sla_due_at - mr.arrived_at == timedelta(hours=24)
    # Second hospital has neither rule nor class.
    plain = reading.item(reading.people.second, description="CT HEAD STROKE PROTOCOL")
    assert (plain.subspecialty, plain.priority.code) == ("", "routine")


def test_sla_pause_freezes_the_clock_and_resume_moves_the_deadline(reading):
    item = reading.item(arrived_minutes_ago=10)
    actor = _actor(reading.bob)
    services.claim(item, reading.bob, actor)
    t0 = timezone.now()
    due = item.sla_due_at
    services.pause_sla(item, reading.bob, actor, reason="waiting for priors", now=t0)
    assert item.sla_remaining(t0 + timedelta(hours=3)) == due - t0  # frozen
    with pytest.raises(services.Conflict):
        services.pause_sla(item, reading.bob, actor, reason="again", now=t0)
    services.resume_sla(item, reading.bob, actor, now=t0 + timedelta(minutes=40))
    assert item.sla_due_at == due + timedelta(minutes=40)
    with pytest.raises(services.WorklistError):
        services.pause_sla(item, reading.bob, actor, reason="  ")
    with pytest.raises(services.NotAllowed):
        services.pause_sla(item, reading.dave, _actor(reading.dave), reason="not mine")
    actions = list(
        AuditEvent.objects.filter(detail__item=item.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert AuditAction.ITEM_SLA_PAUSE in actions and AuditAction.ITEM_SLA_RESUME in actions


def test_overdue_items_are_escalated_to_the_group_leads_once(reading, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    item = reading.item(arrived_minutes_ago=5)
    paused = reading.item(arrived_minutes_ago=5)
    services.claim(paused, reading.bob, _actor(reading.bob))
    services.pause_sla(paused, reading.bob, _actor(reading.bob), reason="clinical information")
    late = item.sla_due_at + timedelta(minutes=1)
    assert services.escalate_overdue(now=late) == 1
    assert services.escalate_overdue(now=late + timedelta(minutes=5)) == 0
    item.refresh_from_db()
    assert item.escalated_at == late
    [message] = mail.outbox
    assert message.to == ["grace@example.org"]  # demo-readers' group admin
    assert "DOE" not in message.subject + message.body  # identifiers only, no patient data
    assert (
        AuditEvent.objects.filter(action=AuditAction.ITEM_ESCALATE, detail__item=item.pk).count()
        == 1
    )


def test_expired_leases_are_returned_and_audited_by_the_housekeeping(reading):
    item = reading.item()
    services.claim(item, reading.bob, _actor(reading.bob))
    assert services.expire_leases(now=timezone.now()) == 0
    later = item.lease_expires_at + timedelta(seconds=1)
    assert services.expire_leases(now=later) == 1
    item.refresh_from_db()
    assert item.holder is None and item.state == ItemState.SCHEDULED
    assert item.reading_state == ReadingState.UNREAD
    event = AuditEvent.objects.get(action=AuditAction.ITEM_LEASE_EXPIRED, detail__item=item.pk)
    assert event.detail["previous_holder"] == reading.bob.pk and event.outcome == Outcome.SUCCESS


def test_priors_are_the_same_patients_relevant_studies_of_the_same_tenant_newest_first(reading):
    demo, second = reading.people.demo, reading.people.second
    today = timezone.localdate()
    old_ct = make_study(
        demo, patient_id="P-1", modality="CT", study_date=today - timedelta(days=400)
    )
    new_ct = make_study(
        demo, patient_id="P-1", modality="CT", study_date=today - timedelta(days=30)
    )
    other_us = make_study(demo, patient_id="P-1", modality="US", body_part="KNEE",
                          study_date=today - timedelta(days=10))  # fmt: skip
    make_study(demo, patient_id="P-2", modality="CT")  # another patient
    make_study(second, patient_id="P-1", modality="CT")  # same ID, another hospital
    too_old = make_study(
        demo, patient_id="P-1", modality="CT", study_date=today - timedelta(days=4000)
    )
    item = reading.item(patient_id="P-1", modality="CT")
    found = priors.find(item)
    assert [s.pk for s in found] == [new_ct.pk, old_ct.pk, other_us.pk]
    assert too_old.pk not in [s.pk for s in found]
    priors.prefetch(item.pk)
    priors.prefetch(item.pk)  # idempotent
    assert list(item.priors.values_list("study_id", "rank")) == [
        (new_ct.pk, 1),
        (old_ct.pk, 2),
        (other_us.pk, 3),
    ]
    assert all(p.warmed_at is not None for p in item.priors.all())


def test_auto_assignment_serves_stat_first_to_the_least_loaded_eligible_reader(reading):
    demo = reading.people.demo
    AutoAssignment.objects.create(group=reading.people.group, enabled=True, max_open_per_reader=1)
    routine = reading.item(arrived_minutes_ago=30)
    stat = reading.item(arrived_minutes_ago=1)
    services.set_priority(stat, reading.grace, _actor(reading.grace), code="stat",
                          clinical_question=None)  # fmt: skip
    # bob and fay may read CT at demo-hospital... fay's licence expired: bob only, one item max.
    assert services.auto_assign(demo.pk) == 1
    stat.refresh_from_db()
    routine.refresh_from_db()
    assert stat.assigned_to == reading.bob and routine.assigned_to is None
    # bob declines: it is not offered to him again, and nobody else is eligible.
    services.decline(stat, reading.bob, _actor(reading.bob), reason="conflict of interest")
    assert Decline.objects.filter(item=stat, user=reading.bob).exists()
    services.auto_assign(demo.pk)
    stat.refresh_from_db()
    routine.refresh_from_db()
    assert stat.assigned_to is None
    assert routine.assigned_to == reading.bob  # his load is free again
    with pytest.raises(services.WorklistError):
        services.decline(stat, reading.dave, _actor(reading.dave), reason="not mine")
    assert AuditEvent.objects.filter(action=AuditAction.ITEM_DECLINE, detail__item=stat.pk).exists()
    assert AuditEvent.objects.filter(action=AuditAction.ITEM_ASSIGN, detail__item=stat.pk).exists()


def test_reading_states_follow_the_report_and_final_completes_the_item(reading):
    item = reading.item()
    services.claim(item, reading.bob, _actor(reading.bob))
    services.mark_read(item, ReadingState.PRELIMINARY)
    assert item.reading_state == ReadingState.PRELIMINARY and item.state == ItemState.IN_PROGRESS
    services.mark_read(item, ReadingState.FINAL)
    assert item.reading_state == ReadingState.FINAL and item.state == ItemState.COMPLETED
    assert item.preliminary_at is not None and item.final_at >= item.preliminary_at


def _actor(user):  # noqa: ANN001, ANN202
    from tenants import audit

    return audit.Actor.for_user(user, address="127.0.0.1")
