#!/usr/bin/env bash
# Sets up what is missing (fast when nothing changed), then starts the server.
# With no configuration it runs on :8080 with the embedded database in ./data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Serving needs no promtool (the metrics test's), nor the Prometheus service its package brings.
SWITCHBOARD_NO_PROMTOOL="${SWITCHBOARD_NO_PROMTOOL:-1}" bash "$ROOT/scripts/setup.sh"
# setup may have installed Node 24 into one of these.
export PATH="/usr/local/bin:$HOME/.local/bin:$PATH"
cd "$ROOT"
exec node dist/server/main.js
