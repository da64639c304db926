"""Retention: the settings page (its validation and preview), the wizard section, and the purge
with ``now=``: a due study leaves QIDO and object storage; a recent one and one held by an open
work item stay; a second run does nothing. Real database, real object storage (SeaweedFS)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from studies.dicom import synthetic
from studies.models import Instance, PurgedStudy, RetentionPolicy, Study, StudyState
from studies.retention.sections import SECTION
from studies.retention.services import apply_retention
from studies.storage import object_store
from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now

URL = "/t/demo-hospital/setup/retention/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ingest(tenant: Any, seed: int, modality: str = "CT") -> Study:
    spec = synthetic.simple_spec(
        seed=seed, modality=modality, slices=2, rows=16, columns=16, patient_id=f"RET-{seed}"
    )
    ingest_now(tenant, [synthetic.encode_part10(ds) for ds in synthetic.iter_study(spec)])
    return Study.objects.get(tenant=tenant, study_instance_uid=synthetic.study_uid(spec))


def _age(study: Study, now: datetime, days: int) -> None:
    """The study's last image arrived ``days`` ago (what retention counts from)."""
    Study.objects.filter(pk=study.pk).update(
        last_instance_at=now - timedelta(days=days), state=StudyState.READY
    )


def _found_by_qido(client: Client, uid: str) -> bool:
    response = client.get(
        f"/t/demo-hospital/dicomweb/studies?StudyInstanceUID={uid}",
        HTTP_ACCEPT="application/dicom+json",
    )
    assert response.status_code in (200, 204), response.status_code
    return response.status_code == 200 and uid in response.content.decode()


def _policy() -> list[Any]:
    return [
        list(RetentionPolicy.objects.values_list("keep_days", "per_modality", "allow_short")),
        AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count(),
    ]


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"keep_days": "30"}, "keep_days", "less than the minimum of 365"),
        ({"keep_days": "0"}, "keep_days", "days must be more than 0"),
        ({"keep_days": "-1"}, "keep_days", "days must be more than 0"),
        ({"keep_days": "ten"}, "keep_days", "whole number of days"),
        ({"keep_days": "3650", "per_modality": "CTX: 4000"}, "per_modality", "unknown modality"),
        ({"per_modality": "MG: 100"}, "per_modality", "MG: 100 days is less than"),
    ],
)
def test_bad_retention_input_is_a_form_error_and_changes_nothing(people, data, field, message):
    before = _policy()
    response = _client(people.alice).post(URL, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert _policy() == before


def test_another_hospitals_admin_and_a_radiologist_get_404(people):
    for user in (people.charlie, people.bob):
        assert _client(user).get(URL).status_code == 404
        assert _client(user).post(URL, {"keep_days": "400"}).status_code == 404
    assert not RetentionPolicy.objects.exists()


def test_a_due_study_is_purged_from_qido_and_storage_and_held_ones_are_kept(people):
    from worklists import services as worklist_services

    demo = people.demo
    now = timezone.now()
    old = _ingest(demo, 7001)
    recent = _ingest(demo, 7002)
    held = _ingest(demo, 7003)
    _age(old, now, 800)
    _age(recent, now, 100)
    _age(held, now, 800)
    # The held study has a work item still to read; the old one's item was read and closed.
    held_item = worklist_services.ensure_item(held.pk, now=now)
    old_item = worklist_services.ensure_item(old.pk, now=now)
    assert held_item and old_item
    type(old_item.item).objects.filter(pk=old_item.item.pk).update(state="completed")
    old_keys = list(Instance.objects.filter(study=old).values_list("storage_key", flat=True))
    store = object_store()
    assert old_keys and all(store.exists(k) for k in old_keys)

    alice = _client(people.alice)
    assert alice.post(URL, {"keep_days": "730"}).status_code == 302
    page = alice.get(URL).content.decode()
    assert "would purge <strong>1</strong> study" in page and "keep 1 past their time" in page
    assert "RET-7001" not in page and "SYNTHETIC" not in page  # counts only

    assert _found_by_qido(alice, old.study_instance_uid)
    assert apply_retention(now=now) == {"purged": 1, "kept": 1, "finished": 0}

    assert not Study.objects.filter(pk=old.pk).exists()
    assert not _found_by_qido(alice, old.study_instance_uid)
    assert not any(store.exists(k) for k in old_keys)
    assert _found_by_qido(alice, recent.study_instance_uid)
    assert _found_by_qido(alice, held.study_instance_uid)
    for study in (recent, held):
        for key in Instance.objects.filter(study=study).values_list("storage_key", flat=True):
            assert store.exists(key)
    [event] = AuditEvent.objects.filter(action=AuditAction.RETENTION_PURGE)
    assert event.tenant == demo and event.study_instance_uid == old.study_instance_uid
    assert event.detail["keep_days"] == 730 and event.detail["instances"] == 2
    assert "SYNTHETIC" not in str(event.detail) and "RET-7001" not in str(event.detail)
    assert PurgedStudy.objects.get().objects_deleted_at is not None

    # A second run finds nothing more to do.
    assert apply_retention(now=now) == {"purged": 0, "kept": 1, "finished": 0}
    assert AuditEvent.objects.filter(action=AuditAction.RETENTION_PURGE).count() == 1


def test_an_interrupted_purge_is_finished_by_the_next_run(people):
    demo = people.demo
    now = timezone.now()
    study = _ingest(demo, 7004)
    keys = list(Instance.objects.filter(study=study).values_list("storage_key", flat=True))
    # A run whose process died after its transaction: rows gone, ledger written, objects left.
    ledger = PurgedStudy.objects.create(
        tenant=demo, study_instance_uid=study.study_instance_uid, keys=keys
    )
    store = object_store()
    assert all(store.exists(k) for k in keys)
    assert apply_retention(now=now)["finished"] == 1
    assert not any(store.exists(k) for k in keys)
    ledger.refresh_from_db()
    assert ledger.objects_deleted_at is not None
    assert apply_retention(now=now)["finished"] == 0


def test_per_modality_days_keep_a_study_for_the_longest_of_its_modalities(people):
    from studies.retention.policy import keep_days_for

    policy = RetentionPolicy(
        tenant=people.demo, keep_days=400, per_modality={"MG": 7300, "US": None}
    )
    assert keep_days_for(policy, ["CT"]) == 400
    assert keep_days_for(policy, ["CT", "MG"]) == 7300
    assert keep_days_for(policy, ["MG", "US"]) is None
    assert keep_days_for(RetentionPolicy(tenant=people.demo), ["CT"]) is None


def test_the_wizard_section_applies_a_file_idempotently_and_exports_it(people):
    demo = people.demo
    assert SECTION.summary(demo) == "Studies are kept forever"
    data = {"keep_days": 3650, "per_modality": {"MG": 7300}}
    SECTION.apply(demo, data, people.alice)
    once = _policy()
    SECTION.apply(demo, data, people.alice)
    assert _policy() == once
    assert SECTION.export(demo) == data
    assert SECTION.done(demo)
    assert SECTION.summary(demo) == "Studies kept 3650 days (MG 7300 days)"
    with pytest.raises(ValidationError) as refused:
        SECTION.apply(demo, {"keep_days": 10, "per_modality": {"XX": 5000}}, None)
    text = " ".join(refused.value.messages)
    assert "retention.per_modality" in text and "XX" in text
    assert _policy() == once
