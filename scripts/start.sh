#!/usr/bin/env bash
# Sets up what is missing (fast when nothing changed), then starts the server.
# With no configuration it runs on :8080 with the embedded database in ./data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Serving needs neither promtool nor nginx (tests use them), nor the services their packages bring.
SWITCHBOARD_NO_PROMTOOL="${SWITCHBOARD_NO_PROMTOOL:-1}" SWITCHBOARD_NO_NGINX="${SWITCHBOARD_NO_NGINX:-1}" bash "$ROOT/scripts/setup.sh"
# setup may have installed Node 24 into one of these.
export PATH="/usr/local/bin:$HOME/.local/bin:$PATH"
cd "$ROOT"
exec node dist/server/main.js
