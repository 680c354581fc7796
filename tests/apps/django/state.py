"""Prints, as one JSON object, what a test instance stored (the judge's view):

    CHORUS_DJANGO_DB=DB python state.py

- "log": every admin action (django_admin_log): user, action (add/change/delete), object id,
  object text;
- "pages": every flat page: id, url, title, content;
- "sessions": the logged-in sessions still stored, as the username each belongs to (one
  entry per session).
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chorus_site.settings")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import django  # noqa: E402

django.setup()

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.flatpages.models import FlatPage  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402

ACTIONS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}
usernames = dict(User.objects.values_list("id", "username"))

log = [
    {
        "user": usernames.get(entry.user_id, str(entry.user_id)),
        "action": ACTIONS.get(entry.action_flag, str(entry.action_flag)),
        "object_id": entry.object_id,
        "object": entry.object_repr,
    }
    for entry in LogEntry.objects.order_by("id")
]
pages = [
    {"id": page.id, "url": page.url, "title": page.title, "content": page.content}
    for page in FlatPage.objects.order_by("id")
]
sessions = []
for session in Session.objects.all():
    user_id = session.get_decoded().get("_auth_user_id")
    if user_id is not None:
        sessions.append(usernames.get(int(user_id), user_id))
json.dump({"log": log, "pages": pages, "sessions": sorted(sessions)}, sys.stdout)
