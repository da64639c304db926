"""Row-level security on the worklist's tenant tables (tenants/rls.py).

Work items were protected by tenants/0011. Privileges and routing rules are their hospital's;
priority classes with no tenant are the built-ins every hospital reads and only system work
writes. Licences, saved views and auto-assignment belong to people and groups, not hospitals;
declines, priors and study links hold only ids and are read through their (protected) work item.
"""

from django.db import migrations

from tenants import rls


class Migration(migrations.Migration):
    dependencies = [
        ("worklists", "0003_group_admin"),
        ("tenants", "0011_row_level_security"),
    ]

    operations = [
        rls.protect("worklists_privilege", "worklists_routingrule"),
        rls.protect("worklists_priorityclass", nulls="readable"),
    ]
