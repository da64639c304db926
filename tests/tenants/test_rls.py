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
from django.test import RequestFactory
from pydicom.data import get_testdata_file

from studies.models import Instance, Patient, Receipt, Series, Study
from tenants import rls
from tests.conftest import ingest_now

pytestmark = pytest.mark.skipif(
    not settings.IS_POSTGRESQL, reason="row-level security is PostgreSQL's (SQLite: no-op)"
)
PATIENT_TABLES = (Patient, Study, Series, Instance, Receipt)


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
            [list(rls.TABLES)],
        )
        assert {row[0] for row in cursor.fetchall()} == set(rls.TABLES)


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
