"""Install time: builds the Trac environment every test instance copies.

    python prepare.py TEMPLATE_DIR

A new environment (trac-admin initenv) over SQLite in WAL mode with a 30 s busy timeout
(seconds, as Python's sqlite3 takes them; twenty users write at once), no log file. Rights:
anonymous keeps Trac's default read-only rights; being logged in gives nothing (Trac's default
gives TICKET_CREATE and TICKET_MODIFY); the group `testers` may view, create and modify
tickets, and serve.py puts each instance's accounts in that group. So a replay that lost its
login is refused (403) on every write.
"""

import shutil
import subprocess
import sys
from pathlib import Path

env = Path(sys.argv[1]).resolve()
trac_admin = str(Path(sys.executable).parent / "trac-admin")
if env.exists():
    shutil.rmtree(env)


def admin(*args):
    subprocess.run([trac_admin, str(env), *args], check=True, stdout=subprocess.DEVNULL)


admin("initenv", "Chorus test tracker", "sqlite:db/trac.db?journal_mode=WAL&timeout=30")
admin("config", "set", "logging", "log_type", "none")
admin("config", "set", "project", "descr", "Tickets of the chorus tests")
admin("config", "set", "header_logo", "src", "common/trac_banner.png")
admin("permission", "remove", "authenticated", "*")
admin(
    "permission", "add", "testers",
    "TICKET_VIEW", "TICKET_CREATE", "TICKET_MODIFY", "REPORT_VIEW", "MILESTONE_VIEW",
    "ROADMAP_VIEW", "TIMELINE_VIEW", "SEARCH_VIEW",
)
