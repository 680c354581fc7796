#!/usr/bin/env bash
# PostGraphile 4 (npm) over Debian's PostgreSQL 15, under target/apps/graphql: a GraphQL API
# (tests/apps/graphql.rs). Prepares once a cluster holding the `forum` database with
# tests/apps/graphql/schema.sql loaded, which each instance copies; prepares it again when
# schema.sql changed (its sha256 is kept beside). Idempotent; when done it only checks that the
# Debian packages are there and the schema is the one prepared.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh
dir=target/apps/graphql

missing=()
for package in postgresql-15 postgresql-client-15; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  # The tests start their own clusters; no system cluster on port 5432.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  fi
  apt_install "${missing[@]}"
fi
schema=tests/apps/graphql/schema.sql
checksum=$(sha256sum "$schema" | cut -d' ' -f1)
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/schema.sha256" 2>/dev/null)" = "$checksum" ]; then
  exit 0
fi

mkdir -p "$dir"
if [ ! -d "$dir/node_modules/postgraphile" ]; then
  npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
    postgraphile@4.14.1 >/dev/null
fi
bin=/usr/lib/postgresql/15/bin
work=$(mktemp -d)
chmod 755 "$work"
cp "$schema" "$work/schema.sql"
chown -R postgres "$work"
as_postgres() { runuser -u postgres -- "$@"; }
# 1 MB WAL segments keep the copy each instance makes small.
as_postgres "$bin/initdb" -D "$work/pgdata" -U postgres --auth=trust --encoding=UTF8 \
  --locale=C.UTF-8 --wal-segsize=1 --no-sync >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres "$bin/pg_ctl" -D "$work/pgdata" -w -l "$work/postgres.log" \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=" start >/dev/null
psql=(as_postgres "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
if ! { "${psql[@]}" -d postgres -c "create database forum" &&
       "${psql[@]}" -d forum -f "$work/schema.sql" >/dev/null; }; then
  as_postgres "$bin/pg_ctl" -D "$work/pgdata" -m fast stop >/dev/null
  rm -rf "$work"
  exit 1
fi
as_postgres "$bin/pg_ctl" -D "$work/pgdata" -m fast stop >/dev/null
rm -rf "$dir/pgdata"
cp -a "$work/pgdata" "$dir/pgdata"
rm -rf "$work"
echo "$checksum" > "$dir/schema.sha256"
touch "$dir/.installed"
