#!/usr/bin/env bash
# node-oidc-provider 8 (npm; 9 wants Node 22), under target/apps/oidc: an OpenID Connect provider with the
# authorization-code flow and PKCE, started by tests/apps/oidc/server.mjs
# (tests/apps/oidc.rs). Idempotent; fast when done.
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir=target/apps/oidc
if [ -f "$dir/.installed" ]; then
  command -v node >/dev/null || { echo "oidc needs node: apt-get install nodejs npm" >&2; exit 1; }
  exit 0
fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
  oidc-provider@8.8.1 >/dev/null
touch "$dir/.installed"
