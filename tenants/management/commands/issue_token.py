from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tenants.models import User
from tenants.services import issue_token


class Command(BaseCommand):
    help = "Issue a bearer token for USERNAME and print it (it is shown once; only a hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by.")
        parser.add_argument("--days", type=int, default=None, help="Expire after this many days.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {options['username']!r}.")
        if options["days"] is not None and options["days"] <= 0:
            raise CommandError("--days must be a positive number.")
        expires = timezone.now() + timedelta(days=options["days"]) if options["days"] else None
        _, plaintext = issue_token(user=user, name=options["name"], expires_at=expires)
        self.stdout.write(plaintext)
