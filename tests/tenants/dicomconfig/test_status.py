"""The live status: each calling AE title's last association, and the last day's rejections.

Real associations from dcmtk's echoscu to Skylight's real SCP; the rules are changed through the
page, and each change holds for the very next association (nothing is cached).
"""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import AllowedCaller
from tests.tenants.dicomconfig.conftest import echoscu

PAGE = "/t/demo-hospital/setup/dicom/"
STATUS = PAGE + "status/"


def _only_ct1_from_loopback(alice, people) -> AllowedCaller:  # noqa: ANN001
    """Through the page: remove the fixture's any-AE rule, admit CT1 from loopback."""
    for rule in AllowedCaller.objects.filter(tenant=people.demo):
        assert alice.post(PAGE, {"op": "remove-caller", "id": rule.pk}).status_code == 302
    added = alice.post(
        PAGE,
        {
            "op": "add-caller",
            "new-ae_title": "CT1",
            "new-network": "127.0.0.1/32",
            "new-description": "",
        },
    )
    assert added.status_code == 302
    return AllowedCaller.objects.get(ae_title="CT1")


def test_a_caller_added_in_the_page_is_let_in_at_once_and_removed_is_refused(
    alice, people, skylight_port
):
    rule = _only_ct1_from_loopback(alice, people)
    assert echoscu(skylight_port, "DEMOHOSP", "CT1").returncode == 0
    refused = echoscu(skylight_port, "DEMOHOSP", "MR7")
    assert refused.returncode != 0 and "Calling AE Title Not Recognized" in refused.stderr
    assert alice.post(PAGE, {"op": "remove-caller", "id": rule.pk}).status_code == 302
    assert echoscu(skylight_port, "DEMOHOSP", "CT1").returncode != 0


def test_the_panel_shows_the_last_accepted_and_rejected_associations_with_reasons(
    alice, people, skylight_port
):
    _only_ct1_from_loopback(alice, people)
    assert "No association received yet" in alice.get(STATUS).content.decode()
    assert echoscu(skylight_port, "DEMOHOSP", "CT1").returncode == 0
    assert echoscu(skylight_port, "DEMOHOSP", "MR7").returncode != 0
    assert echoscu(skylight_port, "DEMOHOSP", "MR7").returncode != 0
    # Not this hospital's: an unknown called AE title has no tenant, so no row here.
    assert echoscu(skylight_port, "NOSUCHAE", "CT1").returncode != 0
    panel = alice.get(STATUS)
    assert panel.status_code == 200
    text = panel.content.decode()
    assert 'hx-trigger="every 5s"' in text
    rows = {line.split("</td>")[0].split("<td>")[-1]: line for line in text.split("<tr>")[2:]}
    assert set(rows) == {"CT1", "MR7"}
    assert "127.0.0.1" in rows["CT1"] and ">accepted<" in rows["CT1"]
    assert "rejected: calling AE title not in the allowed callers" in rows["MR7"]
    assert "Rejected in the last 24 hours: <strong>2</strong>" in text
    assert "2 × calling AE title not in the allowed callers" in text
    # The second hospital sees none of it.
    from django.test import Client

    charlie = Client()
    charlie.force_login(people.charlie)
    theirs = charlie.get("/t/second-hospital/setup/dicom/status/").content.decode()
    assert "CT1" not in theirs and "MR7" not in theirs and "<strong>0</strong>" in theirs


def test_a_known_title_from_a_network_not_allowed_is_shown_with_that_reason(
    alice, people, skylight_port
):
    _only_ct1_from_loopback(alice, people)
    rule = AllowedCaller.objects.get(ae_title="CT1")
    prefix = f"c{rule.pk}"
    alice.post(
        PAGE,
        {
            "op": "edit-caller",
            "id": rule.pk,
            f"{prefix}-ae_title": "CT1",
            f"{prefix}-network": "10.0.0.0/8",
            f"{prefix}-description": "",
        },
    )
    assert echoscu(skylight_port, "DEMOHOSP", "CT1").returncode != 0
    text = alice.get(STATUS).content.decode()
    assert "rejected: source address not in an allowed network for this AE title" in text


def test_the_panel_costs_the_same_queries_for_one_peer_or_thirty(alice, people):
    from tenants.dicomconfig.status import note_association

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert alice.get(STATUS).status_code == 200
        return len(queries)

    note_association(
        tenant=people.demo,
        calling_ae_title="CT0",
        called_ae_title="DEMOHOSP",
        address="127.0.0.1",
        audit_reason=None,
    )
    one = count()
    for n in range(1, 30):
        note_association(
            tenant=people.demo,
            calling_ae_title=f"CT{n}",
            called_ae_title="DEMOHOSP",
            address="127.0.0.1",
            audit_reason=3,
        )
    assert count() == one
