"""Install time: builds the template database that every test instance copies.

    python prepare.py TEMPLATE.sqlite3 ACCOUNTS.json

Migrates a new SQLite file (WAL mode), names the site, adds a few flat pages, and creates the
staff accounts user01..user30 with the passwords of the tests' Account::numbered
(pw-01-Secret!, ...), each with the flat page permissions only (not superusers). Their
passwords are hashed here once; ACCOUNTS.json keeps the username -> password pairs the
template holds, for serve.py to compare with the accounts an instance asks for.
"""

import json
import os
import sqlite3
import sys
from pathlib import Path

template, accounts_file = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
if template.exists():
    template.unlink()
for suffix in ("-wal", "-shm"):
    Path(str(template) + suffix).unlink(missing_ok=True)

# WAL before Django opens it: readers (the list pages) never wait for a writer.
with sqlite3.connect(template) as db:
    db.execute("PRAGMA journal_mode=WAL")

os.environ["CHORUS_DJANGO_DB"] = str(template)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chorus_site.settings")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.contrib.flatpages.models import FlatPage  # noqa: E402
from django.contrib.sites.models import Site  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)

site = Site.objects.get(pk=1)
site.domain, site.name = "127.0.0.1", "chorus test site"
site.save()

PAGES = [
    ("/about/", "About", "<p>Who we are.</p>"),
    ("/contact/", "Contact", "<p>Where to find us.</p>"),
    ("/help/", "Help", "<p>How to use this site.</p>"),
]
for url, title, content in PAGES:
    page = FlatPage.objects.create(url=url, title=title, content=content)
    page.sites.add(site)

rights = Permission.objects.filter(
    content_type__app_label="flatpages",
    codename__in=["add_flatpage", "change_flatpage", "delete_flatpage", "view_flatpage"],
)
accounts = {}
for n in range(1, 31):
    username, password = f"user{n:02d}", f"pw-{n:02d}-Secret!"
    user = User.objects.create_user(username, f"{username}@example.org", password)
    user.is_staff = True
    user.save()
    user.user_permissions.set(rights)
    accounts[username] = password

connections.close_all()
with sqlite3.connect(template) as db:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
accounts_file.write_text(json.dumps(accounts, indent=1) + "\n")
