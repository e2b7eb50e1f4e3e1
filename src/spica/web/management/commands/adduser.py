"""``python -m spica.web adduser NAME --role staff|cfhtls|pi [--runid 04BF01 ...]``."""

from __future__ import annotations

import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from spica.web.models import ROLES, Programme


class Command(BaseCommand):
    help = ("Create (or update) a user with a role: staff (everything, grading), cfhtls (CFHTLS "
            "programmes), pi (the exposures of its RUNIDs, given with --runid). The password is asked "
            "for, or read from the environment variable named by --password-env.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--runid", action="append", default=[], help="a PI programme's RUNID (repeatable)")
        parser.add_argument("--email", default="")
        parser.add_argument("--password-env", default=None,
                            help="name of an environment variable holding the password (scripts, tests)")

    def handle(self, *args, name, role, runid, email, password_env, **options):
        import re

        runids = sorted({r.strip().upper() for r in runid})
        bad = [r for r in runids if not re.fullmatch(r"\d{2}[A-Z][A-Z]\d{2}", r)]
        if bad:
            raise CommandError(f"not a CFHT RUNID like 04BF01: {', '.join(bad)}")
        if role == "pi" and not runids:
            raise CommandError("a PI user needs at least one --runid")
        if role != "pi" and runids:
            raise CommandError("--runid is for PI users only")
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"environment variable {password_env} is empty")
        else:
            password = getpass.getpass(f"Password for {name}: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("passwords differ")
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)  # a first user on a fresh database
        User = get_user_model()
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=name, defaults={"email": email})
            try:
                validate_password(password, user)
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from error
            user.set_password(password)
            user.is_staff = role == "staff"  # staff may use the admin pages
            user.save()
            for group_name in ROLES:
                Group.objects.get_or_create(name=group_name)
            user.groups.set([Group.objects.get(name=role)])
            Programme.objects.filter(user=user).exclude(runid__in=runids).delete()
            for value in runids:
                Programme.objects.get_or_create(user=user, runid=value)
        verb = "created" if created else "updated"
        extra = f" (RUNIDs {', '.join(runids)})" if runids else ""
        if options.get("verbosity", 1) > 0:
            self.stdout.write(f"user {name} {verb}, role {role}{extra}")
