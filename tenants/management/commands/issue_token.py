from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import tokens
from tenants.models import User


class Command(BaseCommand):
    help = "Issue a bearer token for USERNAME and print it (it is shown once; only a hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by.")
        parser.add_argument(
            "--days", type=int, default=None, help="Expire after this many days (default 90)."
        )
        parser.add_argument("--tenant", default="", help="Keep the token to this hospital (slug).")
        parser.add_argument(
            "--read-only", action="store_true", help="The token may read but change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {options['username']!r}.")
        if options["days"] is not None and options["days"] <= 0:
            raise CommandError("--days must be a positive number.")
        try:
            _, plaintext = tokens.issue(
                user=user,
                name=options["name"],
                tenant_slug=options["tenant"],
                read_only=options["read_only"],
                days=options["days"],
            )
        except tokens.TokenRequestError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(plaintext)
