from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tenants import services
from tenants.models import (
    CalledAETitle,
    DicomDestination,
    Membership,
    ReadingGroup,
    Role,
    Tenant,
    User,
)

DEMO_TENANTS = [
    ("demo-hospital", "Demo Hospital", "DEMOHOSP", "US-CA"),
    ("second-hospital", "Second Hospital", "SECONDHOSP", "US-NY"),
]
# A C-MOVE destination on this machine, e.g. `storescp -aet DEMOVIEWER 11113`.
DEMO_DESTINATION = ("demo-hospital", "DEMOVIEWER", "127.0.0.1", 11113)
DEMO_USERS = [
    ("alice", "Alice Admin", Role.TENANT_ADMIN, "demo-hospital", None),
    ("bob", "Bob Radiologist", Role.RADIOLOGIST, None, "demo-readers"),
    ("charlie", "Charlie Admin", Role.TENANT_ADMIN, "second-hospital", None),
    # The hospital's own radiologist, who validates (co-signs) the readers' preliminaries.
    ("dave", "Dave Attending", Role.RADIOLOGIST, "demo-hospital", None),
    # A referring physician, named in the demo studies as their referrer.
    ("erin", "Erin Referrer", Role.REFERRING_PHYSICIAN, "demo-hospital", None),
]
# How the demo studies name their referring physician (studies/dicom/synthetic.py).
DEMO_PERSON_NAMES = {"erin": "SYNTHETIC^REFERRER"}


def demo_password() -> tuple[str, bool]:
    """The demo password: SKYLIGHT_DEMO_PASSWORD, or one made once and kept in the data folder."""
    configured = settings.SKYLIGHT["DEMO_PASSWORD"]
    if configured:
        return configured, False
    path = settings.DATA_DIR / "demo_password"
    if path.exists():
        return path.read_text().strip(), True
    path.parent.mkdir(parents=True, exist_ok=True)
    password = "-".join(secrets.token_hex(3) for _ in range(3))
    path.write_text(password)
    path.chmod(0o600)
    return password, True


class Command(BaseCommand):
    help = "Create the demo tenants, reading group, users and synthetic studies (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-studies", action="store_true", help="Skip the synthetic studies.")

    def handle(self, *args: Any, **options: Any) -> None:
        password, generated = demo_password()
        with transaction.atomic():
            tenants = {}
            for slug, name, ae_title, jurisdiction in DEMO_TENANTS:
                tenant = Tenant.objects.filter(slug=slug).first() or services.create_tenant(
                    slug=slug, name=name
                )
                if not tenant.jurisdiction:
                    tenant.jurisdiction = jurisdiction
                    tenant.save(update_fields=["jurisdiction"])
                tenants[slug] = tenant
                if not CalledAETitle.objects.filter(ae_title=ae_title).exists():
                    services.add_called_ae_title(tenant=tenant, ae_title=ae_title)
                if not tenant.allowed_callers.exists():
                    # Any calling AE title, from this machine only.
                    for network in settings.SKYLIGHT["DEMO_CALLER_NETWORKS"]:
                        services.allow_caller(
                            tenant=tenant, network=network, description="demo: loopback"
                        )
            slug, ae_title, host, port = DEMO_DESTINATION
            if not DicomDestination.objects.filter(
                tenant=tenants[slug], ae_title=ae_title
            ).exists():
                services.register_destination(
                    tenant=tenants[slug],
                    ae_title=ae_title,
                    host=host,
                    port=port,
                    description="demo: a storescp on this machine",
                )
            group = ReadingGroup.objects.filter(
                slug="demo-readers"
            ).first() or services.create_group(slug="demo-readers", name="Demo Readers")
            for tenant in tenants.values():
                services.create_agreement(tenant=tenant, group=group)
            for username, display, role, tenant_slug, _group_slug in DEMO_USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    user = User.objects.create_user(
                        username=username,
                        display_name=display,
                        password=password,
                        person_name=DEMO_PERSON_NAMES.get(username, ""),
                    )
                elif not generated:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                target = {"tenant": tenants[tenant_slug]} if tenant_slug else {"group": group}
                if not Membership.objects.filter(user=user, role=role, **target).exists():
                    services.add_membership(user=user, role=role, **target)
            from worklists.demo import seed_worklist

            seed_worklist(
                tenants,
                bob=User.objects.get(username="bob"),
                dave=User.objects.get(username="dave"),
            )
            from reports.templating.demo import seed_templates

            seed_templates(tenants, group)
            from reports.review.models import ReviewPolicy

            # The demo hospital has the readers' preliminaries validated by its own radiologist
            # (dave): the co-sign flow, end to end.
            ReviewPolicy.objects.get_or_create(
                tenant=tenants["demo-hospital"], defaults={"requires_validation": True}
            )
        if not options["no_studies"]:
            from studies.demo import seed_studies
            from studies.dicom.synthetic import demo_studies

            added = seed_studies(tenants["demo-hospital"], demo_studies())
            self.stdout.write(f"demo studies added: {added}")
        self.stdout.write(
            "demo users: alice (demo-hospital admin), bob (demo-readers radiologist), "
            "charlie (second-hospital admin), dave (demo-hospital radiologist, validates "
            "preliminaries), erin (referring physician at demo-hospital)"
        )
        if generated:
            self.stdout.write(
                f"demo password: {password}  (set SKYLIGHT_DEMO_PASSWORD to choose your own)"
            )
        else:
            self.stdout.write("demo password: the value of SKYLIGHT_DEMO_PASSWORD")
