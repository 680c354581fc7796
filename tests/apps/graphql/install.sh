#!/usr/bin/env bash
# PostGraphile 4 (npm) over Debian's PostgreSQL 15, under target/apps/graphql: a GraphQL API
# (tests/apps/graphql.rs). Prepares an empty cluster once (initdb), which each instance copies.
# Idempotent; when done it only checks that the Debian packages are there.
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir=target/apps/graphql

missing=()
for package in postgresql-15 postgresql-client-15; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own clusters; no system cluster on port 5432.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -f "$dir/.installed" ] && exit 0

mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
  postgraphile@4.14.1 >/dev/null
work=$(mktemp -d)
chown postgres "$work"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$work/pgdata" -U postgres \
  --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
rm -rf "$dir/pgdata"
cp -a "$work/pgdata" "$dir/pgdata"
rm -rf "$work"
touch "$dir/.installed"
