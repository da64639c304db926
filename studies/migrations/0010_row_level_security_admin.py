"""Row-level security (tenants/rls.py) on the hospital tables that de-identification and
retention added: the de-identification policy, the burned-in checks of a de-identified link's
instances, the retention policy and the ledger of purged studies. Share links are looked up as
system work and then narrowed (studies/sharing/views.py); the retention sweep is system work."""

from django.db import migrations

from tenants import rls


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0009_row_level_security"),
        ("tenants", "0011_row_level_security"),
    ]

    operations = [
        rls.protect(
            "studies_deidpolicy",
            "studies_deidinstance",
            "studies_retentionpolicy",
            "studies_purgedstudy",
        ),
    ]
