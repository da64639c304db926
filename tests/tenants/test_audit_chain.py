"""The audit log is append-only in the database and chained per tenant: a changed or removed row
is found by ``verify_audit_chain``, which names it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from tenants import audit
from tenants.models import AuditAction, AuditEvent

TABLE = "tenants_auditevent"


def _write(people, n: int, tenant=None) -> list[AuditEvent]:  # noqa: ANN001
    actor = audit.Actor.for_user(people.alice)
    return [
        audit.record(
            action=AuditAction.STUDY_VIEW,
            actor=actor,
            tenant=tenant if tenant is not None else people.demo,
            study_instance_uid=f"1.2.3.{i}",
        )
        for i in range(n)
    ]


def _verify(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit_chain", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def _tamper(sql: str, params: list) -> None:  # noqa: ANN001
    """What a database superuser could do: lift the guard, change a row, put the guard back."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER tenants_audit_append_only")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER tenants_audit_append_only")


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("tampering needs a PostgreSQL superuser")


def _chain(tenant) -> list[AuditEvent]:  # noqa: ANN001
    return list(AuditEvent.objects.filter(tenant=tenant).order_by("seq"))


def test_rows_are_written_unsealed_and_sealed_into_a_chain_per_tenant(people):
    audit.seal()  # the set-up's own rows (memberships, agreements)
    demo_before, second_before = len(_chain(people.demo)), len(_chain(people.second))
    demo_rows = _write(people, 3)
    second_rows = _write(people, 2, tenant=people.second)
    assert all(r.hash == "" for r in demo_rows)

    assert audit.seal() == 5
    assert audit.seal() == 0  # idempotent: nothing left to seal

    demo = _chain(people.demo)
    assert [r.seq for r in demo] == list(range(1, demo_before + 4))
    assert [r.id for r in demo[-3:]] == [r.id for r in demo_rows]  # sealed in id order
    assert demo[0].prev_hash == ""
    assert all(b.prev_hash == a.hash for a, b in zip(demo, demo[1:], strict=False))
    second = _chain(people.second)
    assert [r.seq for r in second] == list(range(1, second_before + 3))  # its own chain
    assert {r.id for r in second[-2:]} == {r.id for r in second_rows}

    # New rows continue the chain.
    _write(people, 1)
    audit.seal()
    latest = _chain(people.demo)[-1]
    assert latest.seq == demo_before + 4 and latest.prev_hash == demo[-1].hash

    code, out = _verify()
    assert code == 0, out
    assert f"demo-hospital: {demo_before + 4} rows, chain intact" in out


def test_the_database_refuses_to_change_or_delete_a_row(people):
    (row,) = _write(people, 1)
    audit.seal()
    statements = [
        (f"UPDATE {TABLE} SET action = %s WHERE id = %s", [AuditAction.LOGIN, row.id]),
        (f"UPDATE {TABLE} SET hash = %s WHERE id = %s", ["0" * 64, row.id]),
        (f"DELETE FROM {TABLE} WHERE id = %s", [row.id]),
    ]
    for sql, params in statements:
        with pytest.raises(IntegrityError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
    # Before sealing, only the sealing update itself passes: content stays as written.
    (fresh,) = _write(people, 1)
    with pytest.raises(IntegrityError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET outcome = 'failure', hash = %s WHERE id = %s",
                ["1" * 64, fresh.id],
            )
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=row.id).delete()


def test_a_changed_row_is_found_and_named(people, postgres_only):
    rows = _write(people, 5)
    audit.seal()
    victim = rows[2]
    _tamper(f"UPDATE {TABLE} SET study_instance_uid = %s WHERE id = %s", ["9.9.9", victim.id])

    code, out = _verify("--tenant", "demo-hospital")
    assert code == 1
    assert f"BROKEN at audit event id {victim.id}: content changed" in out
    # The other tenant's chain is not affected.
    assert _verify("--tenant", "second-hospital")[0] == 0


def test_a_removed_row_is_found_at_the_row_after_it(people, postgres_only):
    rows = _write(people, 4)
    audit.seal()
    position = AuditEvent.objects.get(pk=rows[1].id).seq
    _tamper(f"DELETE FROM {TABLE} WHERE id = %s", [rows[1].id])

    code, out = _verify()
    assert code == 1
    assert f"BROKEN at audit event id {rows[2].id}: expected position {position}" in out


def test_an_unknown_tenant_is_a_clear_error(people):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant has the slug"):
        call_command("verify_audit_chain", "--tenant", "nowhere")


def test_concurrent_writers_and_sealers_make_one_unbroken_chain(people):
    """Writers never wait for the chain; sealers racing each other (beat, the verify command)
    still seal each row once, in one unbroken chain per tenant."""
    import threading

    from django.db import connections

    errors: list[BaseException] = []

    def work(kind: str) -> None:
        try:
            for _ in range(5):
                if kind == "write":
                    _write(people, 20)
                    _write(people, 5, tenant=people.second)
                audit.seal()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(k,)) for k in ("write", "write", "seal", "seal")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    audit.seal()
    assert not AuditEvent.objects.filter(hash="").exists()
    for tenant in (people.demo, people.second):
        report = audit.verify(tenant.pk)
        assert report.ok, report
        assert report.rows == AuditEvent.objects.filter(tenant=tenant).count()
