from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from core.roles import Role, sync_roles


class Command(BaseCommand):
    help = "Create a user with one of the roles: manager, liaison, coordinator, admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(Role.BY_SLUG))
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument(
            "--password",
            help="Initial password. Without it a random one is generated and printed once.",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        # As the sign-in form reads what is typed (NFKC), and only names it can take: one
        # with a space at either end, say, could never sign in.
        username = user_model.normalize_username(options["username"])
        try:
            user_model._meta.get_field("username").clean(username, None)
        except ValidationError as error:
            raise CommandError("Username refused: " + " ".join(error.messages)) from error
        if user_model.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} already exists.")
        password = options["password"] or secrets.token_urlsafe(12)
        user = user_model(
            username=username,
            email=options["email"],
            first_name=options["first_name"],
            last_name=options["last_name"],
        )
        try:
            password_validation.validate_password(password, user)
        except ValidationError as error:
            raise CommandError("Password refused: " + " ".join(error.messages)) from error
        role = Role.BY_SLUG[options["role"]]
        user.is_staff = role == Role.ADMINISTRATOR
        user.set_password(password)
        user.save()
        sync_roles()
        user.groups.add(Group.objects.get(name=role))
        self.stdout.write(self.style.SUCCESS(f"Created {username} ({role})."))
        if not options["password"]:
            self.stdout.write(f"Password: {password}")
