"""Management pages: tenant admins keep their hospital's templates, group admins their group's,
everyone their own text blocks; every change audited; someone else's is 404; a mistake in the
notation is a 400 that says where."""

from __future__ import annotations

import re

from tests.reports.templating.conftest import CT_CHEST, client_for


def _changes(**detail: object) -> list[object]:
    from tenants.models import AuditAction, AuditEvent

    events = AuditEvent.objects.filter(action=AuditAction.TEMPLATE_CHANGE).order_by("id")
    return [e for e in events if all(e.detail.get(k) == v for k, v in detail.items())]


def test_a_tenant_admin_creates_edits_and_deactivates_a_template(reading):
    from reports.templating.models import ReportTemplate

    people = reading.people
    alice = client_for(people.alice)
    index = alice.get("/reports/templates/manage/")
    assert index.status_code == 200
    assert "Demo Hospital (hospital)" in index.content.decode()
    response = alice.post(f"/reports/templates/manage/t-{people.demo.pk}/templates/new/", CT_CHEST)
    assert response.status_code == 302
    made = ReportTemplate.objects.get(tenant=people.demo, name="CT chest")
    assert made.findings == CT_CHEST["findings"] and made.created_by == people.alice
    [event] = _changes(template=made.pk, change="create")
    assert event.tenant == people.demo and event.actor_user == people.alice

    edited = {**CT_CHEST, "modality": "ct", "impression": "[[impression:text:Normal.]]"}
    assert alice.post(f"/reports/templates/manage/templates/{made.pk}/", edited).status_code == 302
    made.refresh_from_db()
    assert made.modality == "CT" and made.impression == "[[impression:text:Normal.]]"
    assert _changes(template=made.pk, change="edit")

    item = reading.item(modality="CT", body_part="CHEST")
    panel = f"/reports/templates/items/{item.pk}/panel/"
    assert (
        "Use template <strong>CT chest</strong>"
        in client_for(reading.bob).get(panel).content.decode()
    )
    off = alice.post(f"/reports/templates/manage/templates/{made.pk}/active/", {"active": "0"})
    assert off.status_code == 302
    assert "CT chest" not in client_for(reading.bob).get(panel).content.decode()
    assert _changes(template=made.pk, change="deactivate")


def test_a_mistake_in_the_notation_is_a_400_that_quotes_the_field(reading):
    people = reading.people
    response = client_for(people.alice).post(
        f"/reports/templates/manage/t-{people.demo.pk}/templates/new/",
        {**CT_CHEST, "findings": "Size [[size:nmber]] mm and [[side:left]]"},
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert re.search(r"The field \[\[size:nmber\]\] has an unknown kind", text)
    assert "Size [[size:nmber]] mm" in text  # what was typed is kept for correcting
    assert not _changes()


def test_a_group_admin_manages_the_groups_templates_and_nobody_elses(reading, library):
    people = reading.people
    grace = client_for(reading.grace)
    group_page = f"/reports/templates/manage/templates/{library.group_ct.pk}/"
    assert grace.get(group_page).status_code == 200
    response = grace.post(
        f"/reports/templates/manage/g-{people.group.pk}/templates/new/",
        {"name": "Readers MR", "modality": "MR", "findings": "MR [[finding]]"},
    )
    assert response.status_code == 302
    assert _changes(group=people.group.pk, change="create")
    # Not the hospital's, not another group's, and not through a made-up owner.
    assert (
        grace.get(f"/reports/templates/manage/templates/{library.ct_chest.pk}/").status_code == 404
    )
    assert (
        grace.get(f"/reports/templates/manage/templates/{library.night_ct.pk}/").status_code == 404
    )
    new_for_demo = f"/reports/templates/manage/t-{people.demo.pk}/templates/new/"
    assert grace.post(new_for_demo, CT_CHEST).status_code == 404
    night = f"/reports/templates/manage/g-{reading.night.pk}/templates/new/"
    assert grace.get(night).status_code == 404


def test_another_hospitals_admin_and_a_radiologist_get_404(reading, library):
    people = reading.people
    for user in (people.charlie, reading.bob):
        client = client_for(user)
        for path in (
            f"/reports/templates/manage/templates/{library.ct_chest.pk}/",
            f"/reports/templates/manage/templates/{library.ct_chest.pk}/export/",
            f"/reports/templates/manage/t-{people.demo.pk}/templates/new/",
        ):
            assert client.get(path).status_code == 404, (user, path)
        off = client.post(
            f"/reports/templates/manage/templates/{library.ct_chest.pk}/active/", {"active": "0"}
        )
        assert off.status_code == 404
    library.ct_chest.refresh_from_db()
    assert library.ct_chest.is_active


def test_a_radiologist_keeps_own_text_blocks_that_expand_only_for_them(reading):
    from reports.templating.models import TextBlock

    bob = client_for(reading.bob)
    response = bob.post("/reports/templates/manage/me/blocks/new/",
                        {"shortcut": "normhead", "text": "No acute intracranial abnormality."})  # fmt: skip
    assert response.status_code == 302
    block = TextBlock.objects.get(owner=reading.bob)
    assert block.shortcut == ".normhead"
    taken = bob.post(
        "/reports/templates/manage/me/blocks/new/", {"shortcut": ".normhead", "text": "x"}
    )
    assert taken.status_code == 400 and "already taken" in taken.content.decode()
    bad = bob.post("/reports/templates/manage/me/blocks/new/", {"shortcut": ".no way", "text": "x"})
    assert bad.status_code == 400 and "A shortcut is a dot" in bad.content.decode()

    item = reading.item(modality="CT", body_part="HEAD")
    assert "normhead" in bob.get(f"/reports/templates/items/{item.pk}/panel/").content.decode()
    other = client_for(reading.people.alice).get(f"/reports/templates/items/{item.pk}/panel/")
    assert other.status_code == 200 and "normhead" not in other.content.decode()
    assert (
        client_for(reading.dave).get(f"/reports/templates/manage/blocks/{block.pk}/").status_code
        == 404
    )
