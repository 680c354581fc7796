#!/usr/bin/env bash
# node-oidc-provider 8 (npm; 9 wants Node 22), under target/apps/oidc: an OpenID Connect provider with the
# authorization-code flow and PKCE, started by tests/apps/oidc/server.mjs
# (tests/apps/oidc.rs). Idempotent; fast when done.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh

npm_app oidc oidc-provider@8.8.1
