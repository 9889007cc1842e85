from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from interop.services import MAX_TOKEN_DAYS, api_token_create


class Command(BaseCommand):
    help = (
        "Make an API token that acts as USERNAME (with their role and permissions) and print "
        "it once. It is stored only as a hash: copy it now. Revoke it in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--days",
            type=int,
            default=settings.API_TOKEN_DAYS,
            help=f"Days until it expires (1 to {MAX_TOKEN_DAYS}; "
            f"default {settings.API_TOKEN_DAYS}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        try:
            token, raw = api_token_create(user=user, days=options["days"])
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        assert token.expiry is not None
        self.stdout.write(
            self.style.SUCCESS(
                f"Token for {user.get_username()}, expires {token.expiry:%Y-%m-%d %H:%M %Z}. "
                "It is shown only this once:"
            )
        )
        self.stdout.write(raw)
