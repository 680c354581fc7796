#!/usr/bin/env bash
# Django admin with django.contrib.flatpages (tests/apps/django.rs): Django from PyPI in a venv
# under target/apps/django, and a migrated template database with the accounts user01..user30
# that each test instance copies (prepare.py). Idempotent: once target/apps/django/.installed
# holds the fingerprint of this folder, it only checks the Debian packages and exits.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh

app=target/apps/django
src=tests/apps/django

need_python_venv

fingerprint=$(cat "$src"/install.sh "$src"/*.py "$src"/chorus_site/*.py | sha256sum | cut -d' ' -f1)
if [ -f "$app/.installed" ] && [ "$(cat "$app/.installed")" = "$fingerprint" ]; then
  exit 0
fi

echo "installing: Django 5.2 (pip, in $app)"
rm -f "$app/.installed"
if [ ! -x "$app/venv/bin/django-admin" ]; then
  rm -rf "$app/venv"
  python3 -m venv "$app/venv"
  "$app/venv/bin/pip" install -q --disable-pip-version-check \
    Django==5.2.19 asgiref==3.13.0 sqlparse==0.6.1
fi
"$app/venv/bin/python" "$src/prepare.py" "$app/template.sqlite3" "$app/template-accounts.json"
echo "$fingerprint" > "$app/.installed"
