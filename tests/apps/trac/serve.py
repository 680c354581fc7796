"""One test instance: gives the instance's environment its accounts, then serves it with
tracd and HTTP Basic authentication.

    python serve.py ENV ACCOUNTS.json

ENV is the instance's copy of the template; ACCOUNTS.json a list of {"username",
"password"}. Writes ENV/htpasswd ({SHA} entries, which Trac's BasicAuthentication reads), puts
each account in the group `testers`, then runs tracd's own main (-s ENV --basic-auth) on
127.0.0.1 port 0: the system picks the port, printed as "listening on http://127.0.0.1:PORT"
once the socket listens (tracd itself would print the port it was asked for).
"""

import base64
import hashlib
import json
import sqlite3
import sys
from pathlib import Path

env = Path(sys.argv[1]).resolve()
accounts = json.loads(Path(sys.argv[2]).read_text())

lines = []
for account in accounts:
    digest = hashlib.sha1(account["password"].encode()).digest()
    lines.append(f"{account['username']}:{{SHA}}{base64.b64encode(digest).decode()}\n")
(env / "htpasswd").write_text("".join(lines))
with sqlite3.connect(env / "db" / "trac.db") as db:
    db.executemany(
        "INSERT OR IGNORE INTO permission (username, action) VALUES (?, 'testers')",
        [(account["username"],) for account in accounts],
    )

from trac.web import standalone  # noqa: E402


class ReportingServer(standalone.TracHTTPServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        host, port = self.server_address[:2]
        print(f"listening on http://{host}:{port}", flush=True)


standalone.TracHTTPServer = ReportingServer
sys.argv = [
    "tracd", "-s", "-b", "127.0.0.1", "-p", "0",
    "--basic-auth", f"*,{env / 'htpasswd'},Chorus test tracker",
    str(env),
]
standalone.main()
