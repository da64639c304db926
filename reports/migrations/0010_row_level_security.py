"""Row-level security on the reports' feature tables and the audit log (tenants/rls.py).

Consults, comments, notifications, critical results, delivery, review: each row is its tenant's.
Templates and text blocks with no tenant belong to a reading group or a person: outside tenant
isolation (the views check the owner). The audit log: tenant NULL is the platform's own chain
(logins, MFA failures), which every context appends to and reads; a tenant's rows only its own
context. The audit triggers (tenants/0010) are untouched: the sealing step runs as system work.
"""

from django.db import migrations

from tenants import rls

STRICT = (
    "reports_consult",
    "reports_comment",
    "reports_notification",
    "reports_criticalsettings",
    "reports_criticalresult",
    "reports_criticalcommunication",
    "reports_deliverysettings",
    "reports_delivery",
    "reports_reviewpolicy",
    "reports_reviewrequest",
)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0009_review"),
        ("tenants", "0011_row_level_security"),
    ]

    operations = [
        rls.protect(*STRICT),
        rls.protect("reports_reporttemplate", "reports_textblock", nulls="shared"),
        rls.protect("tenants_auditevent", nulls="platform"),
    ]
