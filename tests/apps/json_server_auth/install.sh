#!/usr/bin/env bash
# json-server 0.17 with json-server-auth 2 (npm), under target/apps/json_server_auth: a JSON
# REST API with a JWT login (tests/apps/json_server_auth.rs). Idempotent; fast when done.
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir=target/apps/json_server_auth
if [ -f "$dir/.installed" ]; then
  command -v node >/dev/null || { echo "json_server_auth needs node: apt-get install nodejs npm" >&2; exit 1; }
  exit 0
fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
  json-server@0.17.4 json-server-auth@2.1.0 >/dev/null
touch "$dir/.installed"
