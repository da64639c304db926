"""The audit log is chained and append-only (issue 7).

New columns ``seq``, ``prev_hash``, ``hash`` (see ``tenants.audit``), and a database guard: a row
of ``tenants_auditevent`` can never be deleted, and the only update allowed is the sealing one —
on a row whose ``hash`` is still empty, setting ``seq``, ``prev_hash`` and a non-empty ``hash``
and nothing else. Whatever the code path (ORM, raw SQL, a console), both engines raise an
integrity error. The SQL lives here, not in app code, so this migration stays what it was when it
was applied (tests read the constants from this module).

On SQLite a later migration that remakes this table drops these triggers; such a migration must
put them back (see reports/migrations/0003 for how).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

TABLE = "tenants_auditevent"
MESSAGE = "audit events are append-only"
# Every column but the three the sealing step fills in.
CONTENT_COLUMNS = (
    "id", "occurred_at", "tenant_id", "actor_type", "actor_user_id", "actor_token_id",
    "actor_ae_title", "action", "outcome", "source_address", "patient_ref",
    "study_instance_uid", "series_instance_uid", "sop_instance_uid", "request_id", "detail",
)  # fmt: skip
_PG_CHANGED = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in CONTENT_COLUMNS)
_SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT_COLUMNS)

POSTGRESQL_CREATE = f"""
CREATE OR REPLACE FUNCTION tenants_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '{MESSAGE} (id %)', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.hash <> '' OR NEW.hash = '' OR {_PG_CHANGED} THEN
        RAISE EXCEPTION '{MESSAGE} (id %)', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tenants_audit_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION tenants_audit_append_only();
"""
POSTGRESQL_DROP = f"""
DROP TRIGGER IF EXISTS tenants_audit_append_only ON {TABLE};
DROP FUNCTION IF EXISTS tenants_audit_append_only();
"""

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER tenants_audit_append_only_update
    BEFORE UPDATE ON {TABLE} FOR EACH ROW
    WHEN OLD.hash <> '' OR NEW.hash = '' OR {_SQLITE_CHANGED}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
    f"""
    CREATE TRIGGER tenants_audit_append_only_delete
    BEFORE DELETE ON {TABLE} FOR EACH ROW
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS tenants_audit_append_only_update;",
    "DROP TRIGGER IF EXISTS tenants_audit_append_only_delete;",
]


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    statements = {"postgresql": [POSTGRESQL_CREATE], "sqlite": SQLITE_CREATE}.get(connection.vendor)
    if statements is None:
        raise NotImplementedError(f"No append-only guard for {connection.vendor}.")
    for sql in statements:
        schema_editor.execute(sql, params=None)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    for sql in {"postgresql": [POSTGRESQL_DROP], "sqlite": SQLITE_DROP}.get(connection.vendor, []):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0008_settings_change_audit'),
    ]

    operations = [
        migrations.CreateModel(
            name='BreakGlass',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('work_item_id', models.BigIntegerField()),
                ('study_instance_uid', models.CharField(max_length=64)),
                ('reason', models.TextField()),
                ('granted_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('expires_at', models.DateTimeField()),
            ],
            options={
                'verbose_name': 'break-glass access',
                'verbose_name_plural': 'break-glass accesses',
                'ordering': ['-granted_at'],
            },
        ),
        migrations.AddField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(blank=True, default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(blank=True, default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='seq',
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('dimse.association.accepted', 'Association Accepted'), ('dimse.association.rejected', 'Association Rejected'), ('dimse.echo', 'Echo'), ('dimse.store', 'Dimse Store'), ('dicomweb.stow', 'Stow Store'), ('instance.index', 'Index'), ('instance.duplicate', 'Duplicate'), ('instance.replace', 'Replace'), ('instance.superseded', 'Superseded'), ('instance.unreadable', 'Unreadable'), ('study.ready', 'Study Ready'), ('dicomweb.query', 'Qido Query'), ('dicomweb.retrieve', 'Wado Retrieve'), ('dimse.find', 'Dimse Find'), ('dimse.move', 'Dimse Move'), ('dimse.get', 'Dimse Get'), ('study.list', 'Study List'), ('study.view', 'Study View'), ('receipt.list', 'Receipt List'), ('token.issued', 'Token Issued'), ('auth.login', 'Login'), ('auth.login_failed', 'Login Failed'), ('auth.logout', 'Logout'), ('access.denied', 'Access Denied'), ('worklist.list', 'Worklist List'), ('worklist.item.created', 'Item Created'), ('worklist.item.view', 'Item View'), ('worklist.item.claim', 'Item Claim'), ('worklist.item.lease_lost', 'Item Heartbeat Lost'), ('worklist.item.release', 'Item Release'), ('worklist.item.lease_expired', 'Item Lease Expired'), ('worklist.item.reassign', 'Item Reassign'), ('worklist.item.assign', 'Item Assign'), ('worklist.item.decline', 'Item Decline'), ('worklist.item.sla_pause', 'Item Sla Pause'), ('worklist.item.sla_resume', 'Item Sla Resume'), ('worklist.item.escalate', 'Item Escalate'), ('worklist.item.priority', 'Item Priority'), ('worklist.credential', 'Credential Change'), ('viewer.open', 'Viewer Open'), ('report.draft_save', 'Report Draft Save'), ('report.sign', 'Report Sign'), ('report.addendum', 'Report Addendum'), ('report.correction', 'Report Correction'), ('report.discard', 'Report Discard'), ('report.view', 'Report View'), ('report.revise', 'Report Revise'), ('report.review.request', 'Review Request'), ('report.review.validate', 'Review Validate'), ('report.review.return', 'Review Return'), ('report.review.cancel', 'Review Cancel'), ('report.result.view', 'Result View'), ('report.template.change', 'Template Change'), ('consult.request', 'Consult Request'), ('consult.accept', 'Consult Accept'), ('consult.revoke', 'Consult Revoke'), ('consult.answer', 'Consult Answer'), ('comment.add', 'Comment Add'), ('critical.flag', 'Critical Flag'), ('critical.communicate', 'Critical Communicate'), ('critical.acknowledge', 'Critical Acknowledge'), ('critical.escalate', 'Critical Escalate'), ('critical.list', 'Critical List'), ('report.delivery.send', 'Delivery Send'), ('report.delivery.retry', 'Delivery Retry'), ('report.export', 'Report Export'), ('report.evidence.view', 'Evidence View'), ('tenant.settings', 'Settings Change'), ('tenant.membership.add', 'Membership Add'), ('tenant.membership.remove', 'Membership Remove'), ('tenant.agreement.add', 'Agreement Add'), ('access.break_glass', 'Break Glass'), ('audit.view', 'Audit View'), ('audit.export', 'Audit Export')], max_length=64),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['tenant', 'patient_ref'], name='audit_tenant_patient'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('hash', '')), fields=['tenant', 'id'], name='audit_unsealed'),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('tenant', 'seq'), name='audit_unique_tenant_seq'),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(condition=models.Q(('tenant__isnull', True)), fields=('seq',), name='audit_unique_platform_seq'),
        ),
        migrations.AddField(
            model_name='breakglass',
            name='tenant',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant'),
        ),
        migrations.AddField(
            model_name='breakglass',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='breakglass',
            index=models.Index(fields=['user', 'work_item_id', 'expires_at'], name='breakglass_user_item'),
        ),
        migrations.RunPython(create, drop),
    ]
