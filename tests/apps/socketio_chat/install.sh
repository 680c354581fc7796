#!/usr/bin/env bash
# Socket.IO 4.8 (npm), under target/apps/socketio_chat: the server library and the browser
# client it serves at /socket.io/socket.io.min.js, which tests/apps/socketio_chat/server.js
# runs as a chat (tests/apps/socketio_chat.rs). Idempotent; fast when done.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh

npm_app socketio_chat socket.io@4.8.1
