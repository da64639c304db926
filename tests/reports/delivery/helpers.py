"""Building signed reports for the delivery tests, through the services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests.conftest import ingest_now

FINDINGS = {
    "clinical_information": "Abdominal pain.",
    "technique": "CT abdomen with contrast.",
    "comparison": "None.",
    # Every HL7 delimiter, a line break and non-ASCII text: what escaping must survive.
    "findings": "No free air | no collection ^ normal ~ liver & spleen \\ kidneys.\nÉpanchement: none.",
    "impression": "No acute abnormality.",
}


def actor(user: Any) -> Any:
    from tenants import audit

    return audit.Actor.for_user(user)


def real_item(reading: Any) -> tuple[Any, Any]:
    """A work item of a real stored study (pydicom's CT_small), and its one instance's dataset."""
    from studies import services as studies
    from studies.models import Study
    from worklists import services

    path = get_testdata_file("CT_small.dcm")
    ingest_now(reading.people.demo, [open(path, "rb").read()])  # noqa: SIM115
    ds = dcmread(path)
    study = Study.objects.get(tenant=reading.people.demo, study_instance_uid=ds.StudyInstanceUID)
    later = study.last_instance_at + timedelta(seconds=reading.people.demo.quiet_period_seconds + 1)
    studies.sweep_ready_studies(now=later)
    ensured = services.ensure_item(study.pk)
    assert ensured is not None
    return ensured.item, ds


def sign_final(reading: Any, item: Any, *, key_images: list[Any] | None = None) -> Any:
    """bob claims the item, writes the report and signs it final."""
    from reports import services as reports
    from worklists import services

    bob = reading.bob
    services.claim(item, bob, actor(bob))
    draft = reports.save_draft(
        item=item, user=bob, actor=actor(bob), sections=FINDINGS, key_images=key_images
    )
    return reports.sign(
        version=draft, user=bob, actor=actor(bob), status="final", password=reading.password
    )


def delivery(version: Any, channel: str) -> Any:
    from reports.models import Delivery

    return Delivery.objects.get(version=version, channel=channel)


def status_of(version: Any, channel: str) -> str:
    return str(delivery(version, channel).status)
