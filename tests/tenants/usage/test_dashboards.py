"""The usage pages: each figure moves when real data arrives, in a bounded number of queries,
for those who may look and nobody else."""

from __future__ import annotations

import re
from datetime import timedelta

from django.test import Client
from django.utils import timezone
from pydicom import dcmread

from studies.models import Instance, Receipt, ReceiptStatus
from tenants import services as tenant_services
from tenants.models import AllowedCaller, AuditAction, AuditEvent, Role, User
from tenants.usage import figures
from tests.conftest import wait_for
from worklists import services as worklist_services
from worklists.models import ReadingState

from .conftest import CT, c_store, refused


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(client: Client, url: str, **params: str) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def _counts(html: str) -> tuple[int, int]:
    found = re.search(r"(\d+) studies, (\d+) instances received", html)
    assert found, "no daily totals on the page"
    return int(found[1]), int(found[2])


def _lag_count(html: str) -> int:
    found = re.search(r"(\d+) instances indexed", html)
    assert found
    return int(found[1])


def _indexed(tenant, n: int) -> bool:  # noqa: ANN001
    pending = Receipt.objects.filter(tenant=tenant, status=ReceiptStatus.PENDING).exists()
    return not pending and Instance.objects.filter(tenant=tenant).count() >= n


def _final(reading, user, tenant=None):  # noqa: ANN001, ANN202
    from tenants import audit

    item = reading.item(tenant)
    worklist_services.claim(item, user, audit.Actor.for_user(user, address="127.0.0.1"))
    worklist_services.mark_read(item, ReadingState.FINAL)
    return item


def test_a_hospitals_figures_move_with_real_ingest_a_rejection_and_a_final_read(
    reading, scp, django_assert_max_num_queries
):
    demo = reading.people.demo
    alice = _client(reading.people.alice)
    url = f"/t/{demo.slug}/usage/"
    before = _page(alice, url)
    assert _counts(before) == (0, 0)
    assert "No study was made final in this period." in before

    # The hospital admits only its CT scanner: another calling title is refused at the door.
    AllowedCaller.objects.filter(tenant=demo).update(ae_title="CT_SCANNER")
    assert refused(scp.port, "DEMOHOSP", calling="INTRUDER")
    assert c_store(scp.port, "DEMOHOSP", calling="CT_SCANNER") == 0
    wait_for(lambda: _indexed(demo, 1), what="indexing")
    _final(reading, reading.bob)

    with django_assert_max_num_queries(14):
        after = _page(alice, url)
    # The C-STORE's study and instance, and the work item's study (make_item writes it into
    # the index directly, without an instance).
    assert _counts(after) == (2, 1)
    size = Instance.objects.get(tenant=demo, receipt__calling_ae_title="CT_SCANNER").size
    assert re.search(r'class="stored-total">[0-9.]+ (KiB|MiB|B)<', after)
    assert "<td>CT</td>" in after and size > 0
    assert _lag_count(after) >= 1
    assert "Calling AE title not allowed by the hospital" in after and "INTRUDER" in after
    turnaround = re.search(r'<table class="turnaround">.*?</table>', after, re.S)
    assert turnaround and "<td>1</td>" in turnaround[0]
    assert "SLA met" in after and "100.0 %" in after
    # No patient data on the page.
    ds = dcmread(CT)
    assert str(ds.PatientName) not in after and str(ds.StudyInstanceUID) not in after
    assert str(ds.PatientID) not in after
    viewed = AuditEvent.objects.filter(action=AuditAction.USAGE_VIEW, tenant=demo)
    assert viewed.count() == 2 and viewed.last().detail["page"] == "tenant"


def test_another_hospitals_admin_and_the_hospitals_other_roles_get_404(people):
    url = f"/t/{people.demo.slug}/usage/"
    assert _client(people.charlie).get(url).status_code == 404
    assert _client(people.bob).get(url).status_code == 404
    assert _client(people.alice).get(f"/t/{people.second.slug}/usage/").status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert not AuditEvent.objects.filter(action=AuditAction.USAGE_VIEW).exists()


def test_bad_dates_are_a_400_naming_the_field_and_nothing_is_computed_or_audited(people):
    alice = _client(people.alice)
    url = f"/t/{people.demo.slug}/usage/"
    today = timezone.localdate()
    cases = [
        ({"start": "2026-13-01"}, "From: Enter the first day as YYYY-MM-DD"),
        ({"end": "yesterday"}, "To: Enter the last day as YYYY-MM-DD"),
        (
            {"start": str(today), "end": str(today - timedelta(days=3))},
            "From: The first day must be on or before the last day.",
        ),
        ({"end": str(today + timedelta(days=1))}, "To: The last day cannot be after today"),
        ({"start": str(today - timedelta(days=400))}, "From: Choose at most 366 days."),
    ]
    for params, message in cases:
        response = alice.get(url, params)
        assert response.status_code == 400, params
        assert message in response.content.decode(), params
        assert "studies, " not in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.USAGE_VIEW).exists()
    # A valid period of one day is fine, and is what gets audited.
    assert alice.get(url, {"start": str(today), "end": str(today)}).status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.USAGE_VIEW)
    assert event.detail["start"] == event.detail["end"] == str(today)


def test_a_group_admin_sees_the_work_its_radiologists_read_at_the_hospitals_it_reads_for(
    reading, django_assert_max_num_queries
):
    people = reading.people
    third = tenant_services.create_tenant(slug="third-hospital", name="Third Hospital")
    grace = _client(reading.grace)
    url = f"/g/{people.group.slug}/usage/"
    before = _page(grace, url)
    assert "Demo Hospital" in before and "Second Hospital" in before
    assert "Third Hospital" not in before
    assert re.findall(r'class="read-count">(\d+)<', before) == ["0", "0"]

    _final(reading, reading.bob)  # demo-readers' radiologist, at the demo hospital
    _final(reading, reading.erin, people.second)  # night-readers', not this group's
    with django_assert_max_num_queries(12):
        after = _page(grace, url)
    demo_section = re.search(r'id="hospital-demo-hospital">.*?</section>', after, re.S)
    second_section = re.search(r'id="hospital-second-hospital">.*?</section>', after, re.S)
    assert demo_section and 'class="read-count">1<' in demo_section[0]
    assert second_section and 'class="read-count">0<' in second_section[0]
    assert third.slug not in after
    assert AuditEvent.objects.filter(action=AuditAction.USAGE_VIEW, tenant=people.demo).exists()

    # Another group's page, and the group page for one of its radiologists: not found.
    assert grace.get(f"/g/{reading.night.slug}/usage/").status_code == 404
    assert _client(reading.bob).get(url).status_code == 404
    assert _client(people.alice).get(url).status_code == 404


def test_the_platform_page_shows_every_hospital_totals_and_calls_to_unknown_titles(
    people, scp, django_assert_max_num_queries
):
    root = User.objects.create_superuser("root", password=people.password)
    for n in range(3):  # more hospitals cost no more queries
        tenant_services.create_tenant(slug=f"extra-{n}", name=f"Extra {n}")
    assert refused(scp.port, "NOSUCHAE", calling="WANDERER")
    assert c_store(scp.port, "SECONDHOSP") == 0
    wait_for(lambda: _indexed(people.second, 1), what="indexing")
    platform = _client(root)
    # Session, user, row-level security context, hospitals, six figures, the audit row.
    with django_assert_max_num_queries(16):
        html = _page(platform, "/platform/usage/")
    for slug in ("demo-hospital", "second-hospital", "extra-0", "extra-2"):
        assert f'id="row-{slug}"' in html
    second_row = re.search(r'id="row-second-hospital">(.*?)</tr>', html, re.S)
    assert second_row and re.findall(r"<td>(\d+)</td>", second_row[0])[:2] == ["1", "1"]
    totals = re.search(r'id="totals">(.*?)</tr>', html, re.S)
    assert totals and re.findall(r"<td>(\d+)</td>", totals[0])[:2] == ["1", "1"]
    unknown = re.search(r'class="usage-unknown">.*?</section>', html, re.S)
    assert unknown and "WANDERER" in unknown[0] and "NOSUCHAE" in unknown[0]
    assert "Called AE title not recognised" in unknown[0]
    assert AuditEvent.objects.filter(action=AuditAction.USAGE_VIEW, tenant=None).exists()
    # Hospital admins are not platform admins.
    assert _client(people.alice).get("/platform/usage/").status_code == 404
    tenant_services.add_membership(
        user=people.bob, tenant=people.demo, role=Role.TENANT_ADMIN
    )  # even an admin of two hospitals
    assert _client(people.bob).get("/platform/usage/").status_code == 404


def test_percentiles_in_the_database_equal_the_python_fallback(reading):
    """PostgreSQL's percentile_cont and figures.percentile interpolate the same way."""
    people = reading.people
    now = timezone.now()
    items = [reading.item() for _ in range(5)]
    for n, item in enumerate(items):
        item.arrived_at = now - timedelta(minutes=10 * (n + 1) ** 2)
        item.final_at = now
        item.save(update_fields=["arrived_at", "final_at"])
    period = figures.Period(start=timezone.localdate(), end=timezone.localdate())
    (row,) = figures.turnaround([people.demo.pk], period)
    seconds = sorted(600.0 * (n + 1) ** 2 for n in range(5))
    assert row.times.count == 5
    assert abs(row.times.p50 - figures.percentile(seconds, 0.5)) < 1e-6
    assert abs(row.times.p95 - figures.percentile(seconds, 0.95)) < 1e-6
    assert figures.percentile(seconds, 0.95) == 600.0 * (16 + 0.8 * (25 - 16))
