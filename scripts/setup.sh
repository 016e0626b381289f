#!/usr/bin/env bash
# One-command setup for Switchboard, idempotent and fast when nothing changed:
#   1. OS packages (Debian/Ubuntu, as root): ffmpeg and what the offline mediasoup
#      worker build needs; only the missing ones are installed.
#   2. Node.js >= 22: when the machine's node is older, Node 24 from the npm
#      registry (package node@24) into /usr/local (root) or ~/.local (user).
#   3. npm ci, when package-lock.json changed since the last run.
#   4. The mediasoup worker (scripts/mediasoup-worker.sh): the normal prebuilt
#      download where it works, else an offline build cached by its inputs.
#   5. The Prisma client (prisma generate), when the schema changed.
#   6. The TypeScript build (dist/).
# Environment: SWITCHBOARD_SKIP_APT=1 skips step 1; SWITCHBOARD_NO_NGINX=1 leaves out nginx;
# SWITCHBOARD_NO_BROWSER=1 leaves out
# Chromium (only the browser test uses it; the Docker build sets it); SWITCHBOARD_NO_PROMTOOL=1
# leaves out Debian's prometheus (promtool; only the metrics test uses it; start.sh sets it);
# SWITCHBOARD_CACHE_DIR moves the build cache (default ~/.cache/switchboard).
set -euo pipefail
ORIGINAL_PATH="$PATH"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "[setup] $*"; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }
t0=$(date +%s)

# Debian packages: ffmpeg for recording; the rest builds the mediasoup worker offline.
APT_PKGS=(ffmpeg pkg-config ninja-build meson g++ make python3 libssl-dev libuv1-dev libsrtp2-dev
  libusrsctp-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler ca-certificates)
# The README's examples (and readme.test.ts, which runs them): curl, jq, openssl.
APT_PKGS+=(curl jq openssl)
# Debian's Chromium: the web client's browser test drives it (playwright-core).
[ "${SWITCHBOARD_NO_BROWSER:-0}" = 1 ] || APT_PKGS+=(chromium)
# Debian's Prometheus, for its promtool: the metrics test checks /metrics with it. The package
# also installs a Prometheus service (started where systemd runs): start.sh and Docker leave it out.
[ "${SWITCHBOARD_NO_PROMTOOL:-0}" = 1 ] || APT_PKGS+=(prometheus)
# Debian's nginx (nginx-light: the binary alone, ~1 MB): a test proxies upload chunks through
# deploy/nginx/switchboard.conf (skipped without it). SWITCHBOARD_NO_NGINX=1 leaves it out.
[ "${SWITCHBOARD_NO_NGINX:-0}" = 1 ] || APT_PKGS+=(nginx-light)
NODE_MIN_MAJOR=22
NODE_INSTALL=node@24

# ---- 1. OS packages ---------------------------------------------------------
if [ "${SWITCHBOARD_SKIP_APT:-0}" != 1 ] && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      log "installing OS packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      log "WARNING: missing OS packages: ${missing[*]}"
      log "         install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    fi
  fi
fi

# ---- 2. Node.js --------------------------------------------------------------
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if ! command -v npm >/dev/null 2>&1; then
  die "npm is not installed; install Node.js >= $NODE_MIN_MAJOR (https://nodejs.org) and run this again"
fi
if [ "$(node_major)" -lt "$NODE_MIN_MAJOR" ]; then
  if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
  log "node $(node --version 2>/dev/null || echo missing) is older than $NODE_MIN_MAJOR: installing $NODE_INSTALL into $prefix"
  npm install -g --prefix "$prefix" --no-audit --no-fund --loglevel=error "$NODE_INSTALL" >/dev/null
  export PATH="$prefix/bin:$PATH"
  hash -r
  [ "$(node_major)" -ge "$NODE_MIN_MAJOR" ] || die "installed $NODE_INSTALL but 'node' on PATH is still $(node --version); put $prefix/bin first on PATH"
  case ":$ORIGINAL_PATH:" in *":$prefix/bin:"*) ;; *) log "NOTE: add $prefix/bin to the front of your PATH" ;; esac
fi
log "node $(node --version), npm $(npm --version)"

# ---- 3. npm dependencies -----------------------------------------------------
stamp_dir="node_modules/.switchboard"
lock_hash="$( (cat package-lock.json; node --version) | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp_dir/lock" ] || [ "$(cat "$stamp_dir/lock")" != "$lock_hash" ]; then
  log "npm ci"
  # The mediasoup worker is handled by step 4 (download or offline build), not
  # by mediasoup's postinstall, whose source build cannot work offline.
  MEDIASOUP_WORKER_BIN=skip npm ci --no-audit --no-fund --loglevel=error
  mkdir -p "$stamp_dir"
  echo "$lock_hash" > "$stamp_dir/lock"
else
  log "npm dependencies are up to date"
fi

# ---- 4. mediasoup worker -------------------------------------------------------
bash scripts/mediasoup-worker.sh

# ---- 5. Prisma client ------------------------------------------------------------
gen_hash="$( (cat prisma/schema.prisma; node -p 'require("prisma/package.json").version') | sha256sum | cut -d' ' -f1)"
if [ ! -f server/generated/prisma/client.ts ] || [ ! -f "$stamp_dir/prisma" ] || [ "$(cat "$stamp_dir/prisma")" != "$gen_hash" ]; then
  log "prisma generate"
  # Prisma's CLI fetches its native schema engine first; where it cannot (offline)
  # point it at a stand-in: generate never runs the engine, and migrations are
  # applied by Switchboard itself (npm run db:migrate).
  if ! npx prisma generate >/tmp/switchboard-prisma.log 2>&1; then
    PRISMA_SCHEMA_ENGINE_BINARY="$ROOT/scripts/no-schema-engine.sh" npx prisma generate >/tmp/switchboard-prisma.log 2>&1 ||
      { cat /tmp/switchboard-prisma.log; die "prisma generate failed"; }
  fi
  echo "$gen_hash" > "$stamp_dir/prisma"
fi

# ---- 6. build ----------------------------------------------------------------------
log "building TypeScript"
npm run -s build

log "done in $(( $(date +%s) - t0 )) s"
