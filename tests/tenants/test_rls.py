"""PostgreSQL row-level security: the proof that a query which forgets its tenant filter still
returns only the tenants its request or task may touch, and nothing without a context.

These queries deliberately have no tenant filter: that is the mistake the policies catch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from pydicom.data import get_testdata_file

from studies.models import Instance, Patient, Receipt, Series, Study
from tenants import rls
from tests.conftest import ingest_now

pytestmark = pytest.mark.skipif(
    not settings.IS_POSTGRESQL, reason="row-level security is PostgreSQL's (SQLite: no-op)"
)
PATIENT_TABLES = (Patient, Study, Series, Instance, Receipt)
# A frame by token: the token, the tenant, the instance, the audit row.
FRAME_STATEMENTS = 4
OCTETS = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@pytest.fixture
def both(people) -> Iterator[object]:  # noqa: ANN001
    """The same file, so the same UIDs, sent to both hospitals."""
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    ingest_now(people.demo, [data])
    ingest_now(people.second, [data])
    try:
        yield people
    finally:
        rls.restore_default()


def _tenants_seen(model) -> set[int]:  # noqa: ANN001
    return set(model.objects.values_list("tenant_id", flat=True))


def test_the_application_role_is_subject_to_row_level_security(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False), "the app must not connect as a superuser"
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity"
            " AND relname = ANY(%s)",
            [list(rls.PROTECTED)],
        )
        assert {row[0] for row in cursor.fetchall()} == set(rls.PROTECTED)


def test_with_tenant_a_set_a_query_without_tenant_filter_returns_none_of_tenant_bs_rows(both):
    assert all(_tenants_seen(m) == {both.demo.id, both.second.id} for m in PATIENT_TABLES)
    rls.use_tenants([both.demo.id])
    for model in PATIENT_TABLES:
        assert _tenants_seen(model) == {both.demo.id}, model.__name__
    uid = Study.objects.get().study_instance_uid  # one row, though both hospitals hold the UID
    assert Study.objects.filter(study_instance_uid=uid).count() == 1
    rls.use_tenants([both.second.id])
    assert _tenants_seen(Instance) == {both.second.id}


def test_with_no_context_at_all_nothing_is_returned(both):
    rls.clear()
    for model in PATIENT_TABLES:
        assert not model.objects.exists(), model.__name__
    rls.restore_default()
    assert Study.objects.count() == 2


def test_rows_of_another_tenant_can_be_neither_written_nor_changed(both):
    rls.use_tenants([both.demo.id])
    theirs = Study.objects.model(tenant=both.second, study_instance_uid="1.2.3.4")
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        theirs.save()
    # An UPDATE or DELETE without tenant filter touches only the visible tenant's rows.
    assert Study.objects.update(study_description="CHANGED") == 1
    rls.use_all_tenants()
    assert Study.objects.filter(study_description="CHANGED").get().tenant_id == both.demo.id


def _context_for(request) -> tuple[str, str]:  # noqa: ANN001
    rls.narrow_to_request(request)
    try:
        return rls.current()
    finally:
        rls.restore_default()


def _ids(*tenants) -> str:  # noqa: ANN002
    return ",".join(sorted(str(t.id) for t in tenants))


def test_a_request_sees_the_tenant_its_url_names_or_its_users_tenants(people, token_for):
    factory = RequestFactory()

    def request(path: str, user=None, **headers):  # noqa: ANN001, ANN003
        r = factory.get(path, **headers)
        r.user = user or AnonymousUser()
        return r

    for path in ("/t/demo-hospital/dicomweb/studies", "/api/t/demo-hospital/studies/"):
        tenants, everything = _context_for(request(path, people.bob))
        assert (tenants, everything) == (str(people.demo.id), "off")
    tenants, _ = _context_for(request("/worklist/", people.charlie))
    assert tenants == str(people.second.id)
    tenants, _ = _context_for(request("/worklist/", people.bob))  # both hospitals' reader
    assert ",".join(sorted(tenants.split(","))) == _ids(people.demo, people.second)
    token = token_for(people.alice)
    tenants, _ = _context_for(request("/api/worklist/items/", HTTP_AUTHORIZATION=f"Bearer {token}"))
    assert tenants == str(people.demo.id)
    forged = token[:-4] + "AAAA"
    assert _context_for(request("/api/", HTTP_AUTHORIZATION=f"Bearer {forged}")) == ("", "off")
    assert _context_for(request("/login/")) == ("", "off")


def test_after_a_request_the_connection_is_back_to_its_default(client, people):
    client.force_login(people.charlie)
    assert client.get("/worklist/").status_code == 200
    assert rls.current() == ("", "on")


def test_a_task_is_narrowed_to_the_tenant_its_arguments_name():
    from studies.tasks import index_receipts, sweep_ready_studies

    assert rls.task_tenant_id(index_receipts, (7, [1, 2]), {}) == 7
    assert rls.task_tenant_id(index_receipts, (), {"tenant_id": 8, "receipt_ids": []}) == 8
    assert rls.task_tenant_id(sweep_ready_studies, (), {}) is None


# ---------------------------------------------------------------------------------------------
# Every protected table, one row each: written as raw SQL from the catalogue, so that a table
# added to rls.PROTECTED is covered without a factory. Foreign keys are DEFERRABLE INITIALLY
# DEFERRED (Django's) and the rows are rolled back before any check: the ids need not exist.
# ---------------------------------------------------------------------------------------------

_FILLS = {
    "bigint": "1", "integer": "1", "smallint": "1", "boolean": "false", "jsonb": "'{}'",
    "uuid": "gen_random_uuid()", "date": "current_date", "timestamp with time zone": "now()",
    "double precision": "1", "numeric": "1", "inet": "'192.0.2.1'", "interval": "'1 day'",
}  # fmt: skip
# What check constraints ask beyond the column types: someone to ask, a draft.
_CHECKS = {
    "reports_consult": {"group_id": "1"},
    "reports_reportversion": {"status": "'draft'", "content_sha256": "''"},
}


def _insert_row(table: str, tenant_id: int | None) -> int:
    """One row of ``table`` for this tenant (None: no tenant), every other required column filled
    by its type; returns its id."""
    checks = dict(_CHECKS.get(table, {}))
    if tenant_id is None and rls.PROTECTED[table] == "shared":
        checks["group_id"] = "1"  # a template of no tenant is a reading group's
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s"
            " AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'"
            " AND column_name NOT IN ('id', 'tenant_id')",
            [table],
        )
        columns = cursor.fetchall()
        fills = {name: _FILLS.get(kind, "'x'") for name, kind in columns} | checks
        names = ["tenant_id", *fills]
        values = ["%s", *fills.values()]
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values)}) RETURNING id",
            [tenant_id],
        )
        return int(cursor.fetchone()[0])


def _count(table: str, where: str = "TRUE") -> int:
    """Rows of ``table`` the connection sees: no tenant filter, which is the point."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}")
        return int(cursor.fetchone()[0])


@pytest.fixture
def hospitals(people) -> Iterator[object]:  # noqa: ANN001
    """System work, foreign keys checked at commit, and every row written rolled back."""
    rls.use_all_tenants()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            yield people
            transaction.set_rollback(True)
    finally:
        rls.restore_default()


@pytest.mark.parametrize("table", sorted(rls.PROTECTED))
def test_a_query_without_tenant_filter_sees_no_row_of_another_tenant(hospitals, table):
    theirs = _insert_row(table, hospitals.demo.id)
    rls.use_tenants([hospitals.second.id])
    assert _count(table, f"id = {theirs}") == 0
    rls.clear()
    assert _count(table, f"id = {theirs}") == 0
    rls.use_tenants([hospitals.demo.id])
    assert _count(table, f"id = {theirs}") == 1
    # Nor can another tenant's context change it, or write a row for it.
    rls.use_tenants([hospitals.second.id])
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET tenant_id = tenant_id WHERE id = {theirs}")
        assert cursor.rowcount == 0
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        _insert_row(table, hospitals.demo.id)


@pytest.mark.parametrize(
    "table", sorted(t for t, nulls in rls.PROTECTED.items() if nulls in {"shared", "readable"})
)
def test_rows_of_no_tenant_are_read_by_every_tenant_and_written_as_declared(hospitals, table):
    common = _insert_row(table, None)
    rls.use_tenants([hospitals.second.id])
    assert _count(table, f"id = {common}") == 1
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET tenant_id = NULL WHERE id = {common}")
        written = cursor.rowcount
    # Shared rows (a group's templates) are written from any context; built-ins by system work.
    assert written == (1 if rls.PROTECTED[table] == "shared" else 0)


def test_any_context_appends_and_reads_platform_audit_rows_but_no_other_tenants(hospitals):
    from tenants import audit
    from tenants.models import AuditAction, AuditEvent

    def seen() -> set[int]:
        return set(AuditEvent.objects.values_list("id", flat=True))

    sealed = audit.record(action=AuditAction.LOGIN, actor=audit.Actor.system(), tenant=None)
    theirs = audit.record(
        action=AuditAction.LOGIN, actor=audit.Actor.system(), tenant=hospitals.demo
    )
    audit.seal()
    rls.clear()  # an anonymous request: a failed login is the platform's row
    failed = audit.record(action=AuditAction.LOGIN_FAILED, actor=audit.Actor.system(), tenant=None)
    assert {sealed.id, failed.id} <= seen() and theirs.id not in seen()
    rls.use_tenants([hospitals.second.id])
    mine = audit.record(
        action=AuditAction.LOGIN, actor=audit.Actor.system(), tenant=hospitals.second
    )
    assert {sealed.id, failed.id, mine.id} <= seen() and theirs.id not in seen()
    # Sealing is system work (beat): a narrowed context cannot seal the platform's chain.
    audit.seal()
    assert AuditEvent.objects.get(pk=mine.id).hash != ""  # its own tenant's chain: yes
    assert AuditEvent.objects.get(pk=failed.id).hash == ""
    rls.use_all_tenants()
    audit.seal()
    assert AuditEvent.objects.get(pk=failed.id).hash != ""
    assert audit.verify(None).ok and audit.verify(hospitals.second.id).ok


# ---------------------------------------------------------------------------------------------
# The cost per request: the context rides with the request's first query.
# ---------------------------------------------------------------------------------------------


class Sent:
    """Every message the connection sends through Django (the innermost execute wrapper, so it
    sees the context statements folded into a query), and the context each query ran under."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.contexts: list[tuple[str, str]] = []

    def __call__(self, execute, sql, params, many, context):  # noqa: ANN001, ANN204
        result = execute(sql, params, many, context)
        self.sql.append(sql)
        # The driver's own cursor: outside Django's wrappers, not a message of the request's.
        with connection.connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(current_setting('skylight.tenants', true), ''),"
                " coalesce(current_setting('skylight.all_tenants', true), '')"
            )
            self.contexts.append(cursor.fetchone())
        return result


def _frame_url(slug: str = "demo-hospital") -> str:
    instance = Instance.objects.select_related("series__study").get(tenant__slug=slug)
    return (
        f"/t/{slug}/dicomweb/studies/{instance.series.study.study_instance_uid}"
        f"/series/{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
        "/frames/1"
    )


def _get(client: Client, url: str, **headers: str) -> HttpResponse:  # noqa: ANN003
    response = client.get(url, **headers)
    if response.streaming:
        b"".join(response.streaming_content)
    response.close()  # request_finished, as the server sends it
    return response


def test_a_frame_request_costs_no_round_trip_for_its_tenant_context(both, token_for):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(both.alice)}")
    url = _frame_url()
    assert _get(client, url, HTTP_ACCEPT=OCTETS).status_code == 200  # token use noted once
    sent = Sent()
    with CaptureQueriesContext(connection) as issued, connection.execute_wrapper(sent):
        response = _get(client, url, HTTP_ACCEPT=OCTETS)
    assert response.status_code == 200
    # The statements the code issues (token, tenant, instance, audit) and not one more message:
    # the narrowing rides with the first, the restore waits for the next request's first.
    assert len(sent.sql) == len(issued.captured_queries) == FRAME_STATEMENTS, sent.sql
    assert sent.sql[0].startswith("SELECT set_config('skylight.tenants', coalesce(")
    assert not any("set_config" in sql for sql in sent.sql[1:])
    assert set(sent.contexts) == {(str(both.demo.id), "off")}
    # The default comes back with whatever query comes next, here a test's.
    assert rls.current() == ("", "on")


def test_no_tenant_context_leaks_from_one_request_into_the_next_on_one_connection(both, token_for):
    alice = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(both.alice)}")
    charlie = Client()
    charlie.force_login(both.charlie)
    nobody = Client(HTTP_AUTHORIZATION="Bearer sky_nobody_x")
    demo_frame, second_frame = _frame_url(), _frame_url("second-hospital")
    demo_only = (str(both.demo.id), "off")
    for second_request, expected in (
        (lambda: _get(charlie, "/worklist/"), (str(both.second.id), "off")),
        (lambda: _get(nobody, "/api/worklist/items/"), ("", "off")),
        (lambda: _get(alice, second_frame, HTTP_ACCEPT=OCTETS), (str(both.second.id), "off")),
    ):
        sent = Sent()
        with connection.execute_wrapper(sent):
            assert _get(alice, demo_frame, HTTP_ACCEPT=OCTETS).status_code == 200
            first = len(sent.contexts)
            second_request()
        assert set(sent.contexts[:first]) == {demo_only}
        after = sent.contexts[first:]
        assert after and demo_only not in after, after
        # The view's queries, after the middleware: only the second request's own tenants.
        assert after[-1] == expected


def test_a_rolled_back_transaction_cannot_undo_a_context_behind_the_codes_back(both):
    rls.use_tenants([both.second.id])
    assert _tenants_seen(Study) == {both.second.id}
    with transaction.atomic():
        rls.use_tenants([both.demo.id])
        assert _tenants_seen(Study) == {both.demo.id}
        transaction.set_rollback(True)  # PostgreSQL undoes the set_config with it
    # The code asked for the demo hospital: it is sent again, not the second's silently kept.
    assert _tenants_seen(Study) == {both.demo.id}
    with transaction.atomic():
        with transaction.atomic():
            rls.use_tenants([both.second.id])
            assert _tenants_seen(Study) == {both.second.id}
            transaction.set_rollback(True)  # a savepoint's rollback too
        assert _tenants_seen(Study) == {both.second.id}
    assert rls.current() == (str(both.second.id), "off")


def test_a_query_that_fails_leaves_its_context_to_be_sent_again(both):
    rls.use_tenants([both.second.id])
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT 1/0")
    assert _tenants_seen(Study) == {both.second.id}


def test_a_server_side_cursor_or_executemany_gets_its_context_sent_apart(both):
    rls.use_tenants([both.second.id])
    assert {s.tenant_id for s in Study.objects.iterator(chunk_size=10)} == {both.second.id}
    rls.use_all_tenants()
    ids = list(Study.objects.values_list("id", flat=True))
    rls.use_tenants([both.demo.id])
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE studies_study SET study_description = 'CHANGED' WHERE id = %s",
            [[i] for i in ids],
        )
    rls.use_all_tenants()
    assert set(
        Study.objects.filter(study_description="CHANGED").values_list("tenant_id", flat=True)
    ) == {both.demo.id}
