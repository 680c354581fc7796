#!/usr/bin/env bash
# Trac 1.6 (tests/apps/trac.rs): Trac from PyPI in a venv under target/apps/trac, and a fresh
# environment (trac-admin initenv, SQLite) prepared once as the template every test instance
# copies. Idempotent: once target/apps/trac/.installed holds the fingerprint of this folder, it
# only checks the Debian packages and exits.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh

app=target/apps/trac
src=tests/apps/trac

need_python_venv

fingerprint=$(cat "$src"/install.sh "$src"/*.py | sha256sum | cut -d' ' -f1)
if [ -f "$app/.installed" ] && [ "$(cat "$app/.installed")" = "$fingerprint" ]; then
  exit 0
fi

echo "installing: Trac 1.6 (pip, in $app)"
rm -f "$app/.installed"
if [ ! -x "$app/venv/bin/tracd" ]; then
  rm -rf "$app/venv"
  python3 -m venv "$app/venv"
  # Trac imports pkg_resources, which setuptools 81 drops.
  "$app/venv/bin/pip" install -q --disable-pip-version-check \
    Trac==1.6 Jinja2==3.1.6 MarkupSafe==3.0.4 setuptools==75.8.0
fi
"$app/venv/bin/python" "$src/prepare.py" "$app/template"
echo "$fingerprint" > "$app/.installed"
