"""Check that nobody changed or removed an audit row: recompute every chain, report the first
broken link, exit 1 if there is one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import audit
from tenants.models import AuditEvent, Tenant


class Command(BaseCommand):
    help = (
        "Seal new audit rows, then recompute each tenant's audit hash chain (and the platform's) "
        "and report the first row that does not fit. Exit status 1 if any chain is broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Slug of one tenant to check (default: every chain).")
        parser.add_argument(
            "--no-seal", action="store_true", help="Only check; do not seal new rows first."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant has the slug {options['tenant']!r}.")
            chains: list[int | None] = [tenant.pk]
            names = {tenant.pk: tenant.slug}
        else:
            chains = sorted(
                set(AuditEvent.objects.order_by().values_list("tenant_id", flat=True).distinct()),
                key=lambda pk: (pk is not None, pk or 0),
            )
            names = dict(Tenant.objects.values_list("id", "slug"))
        broken = 0
        for tenant_id in chains:
            if not options["no_seal"]:
                try:
                    audit.seal_chain(tenant_id)
                except Exception as exc:  # noqa: BLE001 - a broken chain may refuse to seal
                    self.stderr.write(f"sealing failed: {type(exc).__name__}")
            report = audit.verify(tenant_id)
            name = names.get(tenant_id, "platform") if tenant_id else "platform"
            if report.ok:
                self.stdout.write(
                    f"{name}: {report.rows} rows, chain intact"
                    + (f" ({report.unsealed} not sealed yet)" if report.unsealed else "")
                )
            else:
                broken += 1
                self.stdout.write(
                    f"{name}: BROKEN at audit event id {report.broken_id}: {report.problem}"
                )
        if broken:
            raise SystemExit(1)
