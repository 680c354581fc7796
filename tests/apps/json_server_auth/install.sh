#!/usr/bin/env bash
# json-server 0.17 with json-server-auth 2 (npm), under target/apps/json_server_auth: a JSON
# REST API with a JWT login (tests/apps/json_server_auth.rs). Idempotent; fast when done.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh

npm_app json_server_auth json-server@0.17.4 json-server-auth@2.1.0
