"""One test instance: makes the instance's database hold exactly the accounts it is asked
for, then serves the site with Django's development server.

    CHORUS_DJANGO_DB=DB python serve.py ACCOUNTS.json TEMPLATE_ACCOUNTS.json

DB is the instance's copy of the template; ACCOUNTS.json is a list of {"username",
"password"}. An account the template already holds with that password is kept as it is
(no hashing at start); any other is created or given its password. Staff
accounts not asked for are removed. Then `runserver 127.0.0.1:0`: the system picks the port,
and Django prints it ("Starting development server at http://127.0.0.1:PORT/"), which is
the harness's signal that the socket listens.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chorus_site.settings")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

wanted = json.loads(Path(sys.argv[1]).read_text())
in_template = json.loads(Path(sys.argv[2]).read_text())

rights = Permission.objects.filter(
    content_type__app_label="flatpages",
    codename__in=["add_flatpage", "change_flatpage", "delete_flatpage", "view_flatpage"],
)
names = [account["username"] for account in wanted]
User.objects.filter(is_staff=True, is_superuser=False).exclude(username__in=names).delete()
for account in wanted:
    username, password = account["username"], account["password"]
    if in_template.get(username) == password:
        continue
    user, _ = User.objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.org"}
    )
    user.set_password(password)
    user.is_staff = True
    user.save()
    user.user_permissions.set(rights)
connections.close_all()

call_command("runserver", "127.0.0.1:0", use_reloader=False, skip_checks=True)
