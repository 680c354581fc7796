"""Prints, as one JSON object, what a test instance stored (the judge's view):

    python state.py ENV

- "tickets": id, reporter, status, resolution, summary, description;
- "changes": one per change of a ticket (the rows of ticket_change with the same ticket and
  time): ticket, author, comment, and the other fields changed as {field: new value};
- "logins": the name of each login cookie still stored (auth_cookie: a logout deletes it).
"""

import json
import sqlite3
import sys
from pathlib import Path

db = sqlite3.connect(Path(sys.argv[1]) / "db" / "trac.db")
tickets = [
    dict(zip(("id", "reporter", "status", "resolution", "summary", "description"), row))
    for row in db.execute(
        "SELECT id, reporter, status, resolution, summary, description FROM ticket ORDER BY id"
    )
]
changes = {}
for ticket, time, author, field, newvalue in db.execute(
    "SELECT ticket, time, author, field, newvalue FROM ticket_change ORDER BY ticket, time"
):
    change = changes.setdefault(
        (ticket, time), {"ticket": ticket, "author": author, "comment": None, "fields": {}}
    )
    if field == "comment":
        change["comment"] = newvalue
    else:
        change["fields"][field] = newvalue
logins = [name for (name,) in db.execute("SELECT name FROM auth_cookie ORDER BY name")]
json.dump({"tickets": tickets, "changes": list(changes.values()), "logins": logins}, sys.stdout)
