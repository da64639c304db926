"""The database refuses to change or delete a signed report version (see reports/immutability.py).

The SQL is per database engine, chosen by ``connection.vendor`` when the migration runs."""

from django.db import migrations


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    from reports import immutability

    immutability.create(schema_editor)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    from reports import immutability

    immutability.drop(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
