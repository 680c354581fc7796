#!/usr/bin/env bash
# Socket.IO 4.8 (npm), under target/apps/socketio_chat: the server library and the browser
# client it serves at /socket.io/socket.io.min.js, which tests/apps/socketio_chat/server.js
# runs as a chat (tests/apps/socketio_chat.rs). Idempotent; fast when done.
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir=target/apps/socketio_chat
if [ -f "$dir/.installed" ]; then
  command -v node >/dev/null || { echo "socketio_chat needs node: apt-get install nodejs npm" >&2; exit 1; }
  exit 0
fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error socket.io@4.8.1 >/dev/null
touch "$dir/.installed"
