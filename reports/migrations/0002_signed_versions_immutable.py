"""The database refuses to change or delete a signed report version.

A row of ``reports_reportversion`` whose ``signed_at`` is set can be neither updated nor deleted,
whatever the code path (ORM, raw SQL, a console). Signing itself is allowed: it updates a row
whose ``signed_at`` was still empty. Both engines raise an integrity error (Django:
``IntegrityError``). The SQL is per engine, chosen by ``connection.vendor`` when this runs; it
lives here, not in app code, so that this migration stays what it was when it was applied
(tests/reports reads the constants from this module).
"""

from django.db import migrations

TABLE = "reports_reportversion"
MESSAGE = "a signed report version cannot be changed or deleted"

POSTGRESQL_CREATE = f"""
CREATE OR REPLACE FUNCTION reports_version_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION '{MESSAGE} (id %)', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reports_version_immutable
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION reports_version_immutable();
"""
POSTGRESQL_DROP = f"""
DROP TRIGGER IF EXISTS reports_version_immutable ON {TABLE};
DROP FUNCTION IF EXISTS reports_version_immutable();
"""

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER reports_version_immutable_update
    BEFORE UPDATE ON {TABLE} FOR EACH ROW WHEN OLD.signed_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
    f"""
    CREATE TRIGGER reports_version_immutable_delete
    BEFORE DELETE ON {TABLE} FOR EACH ROW WHEN OLD.signed_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS reports_version_immutable_update;",
    "DROP TRIGGER IF EXISTS reports_version_immutable_delete;",
]


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    statements = {"postgresql": [POSTGRESQL_CREATE], "sqlite": SQLITE_CREATE}.get(connection.vendor)
    if statements is None:
        raise NotImplementedError(f"No immutability guard for {connection.vendor}.")
    for sql in statements:
        schema_editor.execute(sql, params=None)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    for sql in {"postgresql": [POSTGRESQL_DROP], "sqlite": SQLITE_DROP}.get(connection.vendor, []):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
