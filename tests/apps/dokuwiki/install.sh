#!/usr/bin/env bash
# DokuWiki for tests/apps/dokuwiki.rs: Debian bookworm's `dokuwiki` package (2022-07-31a) and
# PHP's command-line interpreter, whose built-in server (`php -S`) serves it; `php8.2-cgi`
# satisfies the `php` package's need for a server API so that apt does not pull in Apache.
# Nothing is prepared beyond the packages: each test instance writes its own conf and data
# folders (tests/apps/dokuwiki.rs). Idempotent; skipped once target/apps/dokuwiki/.installed exists.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh

dir=target/apps/dokuwiki
packages=(dokuwiki=0.0.20220731.a-2 php8.2-cli php8.2-cgi)

missing() {
  [ -f /usr/share/dokuwiki/doku.php ] || return 0
  command -v php >/dev/null 2>&1 || return 0
  return 1
}

if missing; then
  # No web server is configured for it: the tests serve it with `php -S`.
  echo "dokuwiki dokuwiki/webserver multiselect" | debconf-set-selections
  apt_install "${packages[@]}"
fi
if [ -f "$dir/.installed" ]; then
  exit 0
fi
mkdir -p "$dir"
php --version | head -1 >"$dir/php-version"
touch "$dir/.installed"
