"""Row-level security on the sharing tables (tenants/rls.py): share policies, links, the studies
a link shares and the grants to outside readers are each their hospital's. A link is found by its
token before its tenant is known: studies/sharing/views.py does that look-up as system work."""

from django.db import migrations

from tenants import rls


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0008_deid"),
        ("tenants", "0011_row_level_security"),
    ]

    operations = [
        rls.protect(
            "studies_sharepolicy", "studies_sharelink", "studies_sharelinkstudy", "studies_studygrant"
        ),
    ]
