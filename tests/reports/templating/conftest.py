"""The reading set-up of tests/reports (``reading`` personas, the SQLite flush guard), and the
templates every test here starts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.reports.conftest import *  # noqa: F403

CT_CHEST = {
    "name": "CT chest",
    "modality": "CT",
    "body_part": "CHEST",
    "technique": "CT of the chest [[contrast:with*|without]] intravenous contrast.",
    "findings": "Lungs: [[lungs:text:Clear.]]\nLargest nodule [[nodule_size:number]] mm, "
    "[[side:left|right|bilateral]].",
    "impression": "[[impression]]",
}


@dataclass
class Library:
    """Templates of demo-hospital, of demo-readers, of night-readers and of second-hospital."""

    ct_chest: Any
    ct_any: Any
    generic: Any
    mr_head: Any
    group_ct: Any
    night_ct: Any
    second_ct: Any


def actor(user: Any) -> Any:
    from tenants import audit

    return audit.Actor.for_user(user)


def template(owner: Any, user: Any, **data: Any) -> Any:
    from reports.templating import services

    return services.create_template(owner=owner, user=user, actor=actor(user), data=data)


@pytest.fixture
def library(reading: Any) -> Library:
    people = reading.people
    alice = people.alice
    demo = people.demo
    return Library(
        ct_chest=template(demo, alice, **CT_CHEST),
        ct_any=template(demo, alice, name="CT any", modality="CT", findings="CT findings."),
        generic=template(demo, alice, name="Generic", findings="[[findings]]"),
        mr_head=template(
            demo, alice, name="MR head", modality="MR", body_part="HEAD", findings="Brain normal."
        ),  # fmt: skip
        group_ct=template(
            people.group, alice, name="Readers CT", modality="CT", findings="Readers' way."
        ),  # fmt: skip
        night_ct=template(
            reading.night, alice, name="Night CT", modality="CT", findings="Night way."
        ),  # fmt: skip
        second_ct=template(
            people.second, alice, name="Second CT", modality="CT", findings="Second's way."
        ),  # fmt: skip
    )


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client
