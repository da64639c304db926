"""``manage.py onboard_tenant --from-file tenant.yaml``: what the set-up wizard does, from a file.

The file's ``tenant`` block creates the hospital (or finds it: running the same file twice
changes nothing the second time) and invites its admin; every other top-level key is the key of
a wizard section (tenants/onboarding/sections.py), applied with the same validation as its page.
Everything runs in one transaction: any error prints every message with its place in the file
(``dicom.callers[1].network: ...``), exits with status 1 and leaves the database as it was.
``--dry-run`` checks the file the same way and then rolls back. ``--export <slug>`` prints a
hospital's configuration in the same format.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tenants.models import CalledAETitle, Role, Tenant
from tenants.onboarding import services
from tenants.onboarding.forms import HospitalForm
from tenants.onboarding.sections import Section, sections

TENANT_KEYS = ("slug", "name", "jurisdiction", "called_ae_title", "admin_email")


def _join(prefix: str, key: str) -> str:
    if not prefix:
        return key
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


def error_lines(prefix: str, error: ValidationError) -> Iterator[str]:
    """Each message of a ValidationError, prefixed by its place in the file."""
    if hasattr(error, "error_dict"):
        for key, errors in error.error_dict.items():
            path = prefix if key == NON_FIELD_ERRORS else _join(prefix, key)
            for item in errors:
                yield from error_lines(path, item)
        return
    for message in error.messages:
        yield f"{prefix}: {message}"


def ensure_tenant(data: Any) -> tuple[Tenant, bool]:
    """The hospital of the ``tenant`` block: found by slug, else created with its admin's
    invitation through the platform console's form. Returns (tenant, created)."""
    if not isinstance(data, dict):
        raise ValidationError("Give slug, name, jurisdiction, called_ae_title and admin_email.")
    unknown = sorted(set(data) - set(TENANT_KEYS))
    if unknown:
        raise ValidationError({key: "Unknown field." for key in unknown})
    values = {key: "" if data.get(key) is None else str(data[key]) for key in TENANT_KEYS}
    existing = Tenant.objects.filter(slug=values["slug"]).first()
    if existing is None:
        form = HospitalForm({f"hospital-{k}": v for k, v in values.items()}, prefix="hospital")
        if not form.is_valid():
            raise ValidationError({k: [str(e) for e in v] for k, v in form.errors.items()})
        tenant = form.save(actor=None)
        return tenant, True
    title = values["called_ae_title"].strip()
    if title:
        owner = CalledAETitle.objects.filter(ae_title=title).values_list("tenant_id", flat=True)
        if owner and owner[0] != existing.pk:
            raise ValidationError(
                {"called_ae_title": f"The AE title {title} is taken by another hospital."}
            )
        if not owner:
            services.tenant_services.add_called_ae_title(tenant=existing, ae_title=title)
    email = values["admin_email"].strip()
    if (
        email
        and not services.has_role(existing, email, Role.TENANT_ADMIN)
        and not services.pending(existing, email, Role.TENANT_ADMIN)
    ):
        services.invite(target=existing, email=email, role=Role.TENANT_ADMIN, actor=None)
    return existing, False


class Command(BaseCommand):
    help = "Create or update a hospital from a tenant.yaml, as the set-up wizard would."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from-file", type=Path, help="The tenant.yaml to apply.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file only; change nothing."
        )
        parser.add_argument("--export", metavar="SLUG", help="Print a hospital's configuration.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["export"]:
            self.stdout.write(self.export(options["export"]), ending="")
            return
        if not options["from_file"]:
            raise CommandError("Give --from-file tenant.yaml or --export <slug>.")
        data = self.load(options["from_file"])
        errors: list[str] = []
        with transaction.atomic():
            tenant = self.apply(data, errors)
            if errors or options["dry_run"]:
                transaction.set_rollback(True)
        if errors:
            for line in errors:
                self.stderr.write(line)
            raise CommandError(
                f"{len(errors)} error(s) in {options['from_file']}; nothing was changed.",
                returncode=1,
            )
        verb = "would be set up" if options["dry_run"] else "is set up"
        self.stdout.write(f"Hospital {tenant.slug if tenant else '?'} {verb}.")

    def load(self, path: Path) -> dict[str, Any]:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}", returncode=1) from None
        except yaml.YAMLError as exc:
            raise CommandError(f"{path} is not valid YAML: {exc}", returncode=1) from None
        if not isinstance(data, dict) or "tenant" not in data:
            raise CommandError(f"{path}: the file needs a top-level 'tenant' block.", returncode=1)
        return data

    def apply(self, data: dict[str, Any], errors: list[str]) -> Tenant | None:
        known = {section.key: section for section in sections()}
        for key in data:
            if key != "tenant" and key not in known:
                errors.append(f"{key}: no such section (known: {', '.join(sorted(known))}).")
        try:
            with transaction.atomic():
                tenant, _ = ensure_tenant(data["tenant"])
        except ValidationError as exc:
            errors.extend(error_lines("tenant", exc))
            return None
        for section in known.values():
            if section.key in data:
                self.apply_section(section, tenant, data[section.key], errors)
        return tenant

    @staticmethod
    def apply_section(section: Section, tenant: Tenant, value: Any, errors: list[str]) -> None:
        try:
            with transaction.atomic():
                section.apply(tenant, value, None)
        except ValidationError as exc:
            errors.extend(error_lines(section.key, exc))

    @staticmethod
    def export(slug: str) -> str:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No hospital {slug}.", returncode=1)
        titles = list(tenant.called_ae_titles.values_list("ae_title", flat=True))
        out: dict[str, Any] = {
            "tenant": {
                "slug": tenant.slug,
                "name": tenant.name,
                "jurisdiction": tenant.jurisdiction,
                "called_ae_title": titles[0] if titles else "",
            }
        }
        for section in sections():
            if section.export is not None:
                out[section.key] = plain(section.export(tenant))
        return yaml.safe_dump(out, sort_keys=False, allow_unicode=True)


def plain(value: Any) -> Any:
    """What a section exports, as YAML's own types: a model's choice (a ``str`` subclass such as
    ``TextChoices``) becomes its plain value, dates their ISO text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
