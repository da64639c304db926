"""Row-level security on the tables of patient data (tenants/rls.py explains the whole).

PostgreSQL only: each table gets a policy that shows and accepts a row only when its tenant is in
the session's ``skylight.tenants`` or ``skylight.all_tenants`` is ``on``, and is FORCEd so that
its owner (the application's role) is subject too. SQLite has no row security: nothing happens
there. The SQL lives here, not in app code, so this migration stays what it was when applied.
"""

from django.db import migrations

TABLES = (
    "studies_patient",
    "studies_study",
    "studies_series",
    "studies_instance",
    "studies_seriesderived",
    "studies_receipt",
    "worklists_workitem",
    "reports_report",
    "reports_reportversion",
)
POLICY = "skylight_tenant_isolation"
PREDICATE = (
    "current_setting('skylight.all_tenants', true) = 'on' OR tenant_id = ANY ("
    "string_to_array(nullif(current_setting('skylight.tenants', true), ''), ',')::bigint[])"
)


def enable(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY {POLICY} ON {table} USING ({PREDICATE}) WITH CHECK ({PREDICATE})"
        )


def disable(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0010_audit_chain"),
        ("studies", "0005_instance_ready_frames"),
        ("worklists", "0002_worklist_list_indexes"),
        ("reports", "0009_review"),
    ]

    operations = [migrations.RunPython(enable, disable, elidable=False)]
