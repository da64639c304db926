"""A work item with a preliminary report is waiting for its final, not for a reader: nobody can
claim it (through the API as through the service), auto-assignment passes it by, and the reading
group's SLA escalation does not fire for it (the preliminary met the reading deadline)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from tests.reports.test_lifecycle import _claimed, _draft, _sign
from worklists import services
from worklists.models import AutoAssignment, ItemState, ReadingState


@pytest.fixture
def preliminary(reading):
    item = _claimed(reading)
    _sign(reading, _draft(reading, item), "preliminary")
    item.refresh_from_db()
    assert item.reading_state == ReadingState.PRELIMINARY and item.holder_id is None
    assert item.state == ItemState.SCHEDULED
    return item


def test_nobody_claims_an_item_with_a_preliminary_report(web, reading, preliminary, token_for):
    response = requests.post(
        f"{web.url}/api/worklist/items/{preliminary.pk}/claim/",
        headers={"Authorization": f"Bearer {token_for(reading.bob)}"},
        timeout=30,
    )
    assert response.status_code == 409
    assert "preliminary report" in response.json()["detail"]
    preliminary.refresh_from_db()
    assert preliminary.holder_id is None and preliminary.state == ItemState.SCHEDULED


def test_auto_assignment_and_escalation_pass_a_preliminary_by(reading, preliminary):
    group = reading.bob.memberships.get(group__isnull=False).group
    AutoAssignment.objects.update_or_create(group=group, defaults={"enabled": True})
    waiting = reading.item(reading.people.demo)  # an unread item of the same hospital
    assert services.auto_assign(reading.people.demo.pk) == 1
    preliminary.refresh_from_db()
    waiting.refresh_from_db()
    assert preliminary.assigned_to_id is None and waiting.assigned_to_id is not None

    later = preliminary.sla_due_at + timedelta(minutes=1)
    services.escalate_overdue(now=later)
    preliminary.refresh_from_db()
    waiting.refresh_from_db()
    assert preliminary.escalated_at is None
    assert waiting.escalated_at is not None  # the clock still runs for unread items
