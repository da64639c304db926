"""Row-level security (tenants/rls.py) on two hospital tables of the set-up pages: the hospital's
profile (address, report footer, logo) and the last association per calling AE title, which the
SCP writes as system work before it narrows the association to its tenant. Invitations stay
unprotected, like memberships: an invitation is found by its link before anyone knows whose it is."""

from django.db import migrations

from tenants import rls


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0015_dicom_config"),
    ]

    operations = [
        rls.protect("tenants_hospitalprofile", "tenants_associationstatus"),
    ]
