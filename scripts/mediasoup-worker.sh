#!/usr/bin/env bash
# Ensures a working mediasoup worker binary at
#   node_modules/mediasoup/worker/out/Release/mediasoup-worker
# (mediasoup's default location, so MEDIASOUP_WORKER_BIN is never needed).
#
#   1. already there and runs            -> done
#   2. offline-built binary in the cache -> copy it into place
#   3. mediasoup's own prebuilt download (skipped if SWITCHBOARD_OFFLINE_WORKER=1)
#   4. offline build from node_modules/mediasoup/worker against Debian/Ubuntu
#      system libraries (wrappers in scripts/mediasoup-offline/), cached
#   5. verify: mediasoup createWorker() + createRouter()
#
# Cache: ${SWITCHBOARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/mediasoup-worker/<key>/
# where <key> hashes the mediasoup version, this script, scripts/mediasoup-offline/
# and the versions of the Debian packages the build uses.
# Offline build needs (apt): pkg-config ninja-build meson g++ libssl-dev libuv1-dev
#   libsrtp2-dev libusrsctp-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler
set -euo pipefail

log() { echo "[mediasoup-worker] $*"; }
die() {
	echo "[mediasoup-worker] ERROR: $*" >&2
	exit 1
}

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SCRIPT_DIR="$(dirname "$SCRIPT_PATH")"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
OFFLINE_DIR="$SCRIPT_DIR/mediasoup-offline"
MS_DIR="$ROOT/node_modules/mediasoup"
BIN_DIR="$MS_DIR/worker/out/Release"
BIN="$BIN_DIR/mediasoup-worker"
CACHE_ROOT="${SWITCHBOARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/mediasoup-worker"
# Debian packages whose versions go into the cache key (the libraries linked + toolchain).
KEY_PKGS=(libssl-dev libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev libflatbuffers-dev meson g++)
# Everything the offline build needs installed.
BUILD_PKGS=("${KEY_PKGS[@]}" flatbuffers-compiler pkg-config ninja-build)

# mediasoup must find its worker at the default path; never use an override here.
unset MEDIASOUP_WORKER_BIN

TMP_PATHS=()
cleanup() {
	local p
	for p in "${TMP_PATHS[@]+"${TMP_PATHS[@]}"}"; do
		rm -rf -- "$p"
	done
}
trap cleanup EXIT

[ -f "$MS_DIR/package.json" ] || die "mediasoup is not installed ($MS_DIR); run 'npm ci' first"
command -v node >/dev/null 2>&1 || die "node is not on PATH"

# A worker started without MEDIASOUP_VERSION exits with code 41 right after
# loading (see worker/src/main.cpp); any other result means it cannot run here
# (not an ELF, missing shared library, wrong arch, ...).
worker_runs() {
	local bin="$1" magic rc=0
	[ -f "$bin" ] && [ -x "$bin" ] || return 1
	magic="$(LC_ALL=C head -c 4 "$bin" 2>/dev/null | tr -d '\0')" || return 1
	[ "$magic" = $'\x7fELF' ] || return 1
	env -i timeout 10 "$bin" </dev/null >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 41 ]
}

# Atomically copy $1 to the worker's default location.
install_bin() {
	local src="$1" tmp
	mkdir -p "$BIN_DIR"
	tmp="$BIN_DIR/.mediasoup-worker.tmp.$$"
	TMP_PATHS+=("$tmp")
	cp -f -- "$src" "$tmp"
	chmod 0755 "$tmp"
	mv -f -- "$tmp" "$BIN"
}

verify() {
	log "verifying: mediasoup createWorker() + createRouter()"
	(cd "$ROOT" && timeout 60 node -e '
const mediasoup = require("mediasoup");
(async () => {
  const worker = await mediasoup.createWorker({ logLevel: "warn" });
  const router = await worker.createRouter({
    mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }],
  });
  if (!router.rtpCapabilities.codecs.some((c) => c.mimeType.toLowerCase() === "audio/opus"))
    throw new Error("router has no opus codec");
  const pid = worker.pid;
  worker.close();
  console.log(`[mediasoup-worker] OK: mediasoup ${mediasoup.version}, worker pid ${pid} created a router`);
})().catch((err) => {
  console.error("[mediasoup-worker] ERROR: mediasoup worker check failed:", err);
  process.exit(1);
});
') || die "the worker at $BIN does not work with mediasoup"
}

# ---------------------------------------------------------------------------
# 1. Already present and runnable.
if worker_runs "$BIN"; then
	log "worker present and runnable: ${BIN#"$ROOT"/}"
	exit 0
fi
[ -e "$BIN" ] && log "existing worker at ${BIN#"$ROOT"/} does not run here; replacing it"

MS_VERSION="$(node -p 'require(process.argv[1]).version' "$MS_DIR/package.json")"

cache_key() {
	{
		echo "mediasoup $MS_VERSION"
		echo "script $(sha256sum <"$SCRIPT_PATH" | cut -d' ' -f1)"
		(cd "$SCRIPT_DIR" && find mediasoup-offline -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
		if command -v dpkg-query >/dev/null 2>&1; then
			dpkg-query -W "${KEY_PKGS[@]}" 2>&1 || true
		else
			echo "no-dpkg $(uname -sm)"
		fi
	} | sha256sum | cut -d' ' -f1
}
KEY="$(cache_key)"
CACHE_DIR="$CACHE_ROOT/$KEY"
CACHED_BIN="$CACHE_DIR/mediasoup-worker"

mkdir -p "$CACHE_ROOT"
# Serialize concurrent runs (they would otherwise build twice / race on copies).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$CACHE_ROOT/.lock"
	if ! flock -n 9; then
		log "another run holds $CACHE_ROOT/.lock; waiting"
		flock 9
		if worker_runs "$BIN"; then
			log "worker installed by the other run"
			verify
			exit 0
		fi
	fi
fi

# ---------------------------------------------------------------------------
# 2. Cache hit.
if [ -f "$CACHED_BIN" ]; then
	if worker_runs "$CACHED_BIN"; then
		log "cache hit ($KEY): copying into place"
		install_bin "$CACHED_BIN"
		verify
		exit 0
	fi
	log "cached worker $CACHED_BIN does not run here; discarding it"
	rm -rf -- "$CACHE_DIR"
fi

# ---------------------------------------------------------------------------
# 3. mediasoup's normal prebuilt download (needs internet access to GitHub).
if [ "${SWITCHBOARD_OFFLINE_WORKER:-0}" != "1" ]; then
	log "trying mediasoup's prebuilt worker download (timeout 120 s; SWITCHBOARD_OFFLINE_WORKER=1 skips it)"
	DL_LOG="$CACHE_ROOT/download.log"
	had_prebuild_dir=0
	[ -d "$MS_DIR/worker/prebuild" ] && had_prebuild_dir=1
	start=$SECONDS
	rc=0
	# PYTHON=/bin/false makes npm-scripts.mjs' local-build fallback (buildWorker ->
	# installInvoke -> "$PYTHON -m pip ...") fail at once instead of compiling.
	(
		cd "$MS_DIR" &&
			env -u MEDIASOUP_LOCAL_DEV -u MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD -u npm_package_resolved \
				MEDIASOUP_FORCE_WORKER_PREBUILT_DOWNLOAD=1 PYTHON=/bin/false \
				timeout 120 node npm-scripts.mjs postinstall
	) >"$DL_LOG" 2>&1 || rc=$?
	[ "$had_prebuild_dir" = 1 ] || rmdir "$MS_DIR/worker/prebuild" 2>/dev/null || true
	if worker_runs "$BIN"; then
		log "downloaded prebuilt worker ($((SECONDS - start)) s)"
		verify
		exit 0
	fi
	reason="$(grep -m1 -o 'downloadPrebuiltWorker() | [^[]*' "$DL_LOG" | tail -n1 || true)"
	log "prebuilt download unavailable after $((SECONDS - start)) s (exit $rc${reason:+: $reason}); log: $DL_LOG"
	rm -f -- "$BIN"
fi

# ---------------------------------------------------------------------------
# 4. Offline build against the distribution's libraries.
command -v dpkg-query >/dev/null 2>&1 ||
	die "no usable worker: the prebuilt download failed and the offline build supports only Debian/Ubuntu (dpkg). Build it per node_modules/mediasoup docs (python3, pip, make) or set up network access to GitHub."

missing=()
for p in "${BUILD_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || die "offline build needs: apt-get install -y ${missing[*]}"

WORKER_SRC="$MS_DIR/worker"
# Each mediasoup wrap must map to a wrapper dir (meson uses an existing
# subprojects/<directory> as-is and never downloads it).
wrapper_dirs=()
for wrap in "$WORKER_SRC"/subprojects/*.wrap; do
	name="$(basename "$wrap" .wrap)"
	[ "$name" = wingetopt ] && continue # Windows only
	dir="$(sed -n -E 's/^[[:space:]]*directory[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$/\1/p' "$wrap" | head -n1)"
	[ -n "$dir" ] || die "cannot read 'directory =' from $wrap"
	[ -f "$OFFLINE_DIR/subprojects/$dir/meson.build" ] ||
		die "mediasoup $MS_VERSION wants subproject '$name' in '$dir', which has no wrapper in scripts/mediasoup-offline/subprojects/ (update the wrappers for this mediasoup version)"
	wrapper_dirs+=("$dir")
done

# Drop leftovers of earlier failed/interrupted builds (we hold the lock).
rm -rf -- "$CACHE_ROOT"/build.*
BUILD_ROOT="$(mktemp -d "$CACHE_ROOT/build.XXXXXX")"
SRC="$BUILD_ROOT/worker"
BLD="$BUILD_ROOT/build"
BUILD_LOG="$CACHE_ROOT/build-$KEY.log"
: >"$BUILD_LOG"

fail_build() {
	echo "[mediasoup-worker] ERROR: offline build failed: $1" >&2
	echo "[mediasoup-worker] ---- last 40 lines of $BUILD_LOG ----" >&2
	tail -n 40 "$BUILD_LOG" >&2 || true
	echo "[mediasoup-worker] ---- (build dir kept: $BUILD_ROOT) ----" >&2
	exit 1
}
run_logged() {
	echo "+ $*" >>"$BUILD_LOG"
	"$@" >>"$BUILD_LOG" 2>&1
}

log "offline build of mediasoup $MS_VERSION worker in $BUILD_ROOT (log: $BUILD_LOG; takes a few minutes)"
start=$SECONDS

# Work on a copy so node_modules stays untouched.
cp -a "$WORKER_SRC" "$SRC"
rm -rf "$SRC/out" "$SRC/prebuild" "$SRC/pip_invoke"
for dir in "${wrapper_dirs[@]}"; do
	rm -rf "${SRC:?}/subprojects/$dir"
	cp -a "$OFFLINE_DIR/subprojects/$dir" "$SRC/subprojects/$dir"
done

# Debian 12 ships meson 1.0.1; the worker asks for >= 1.1.0 but builds with 1.0.1.
sed -i -E "s/^([[:space:]]*meson_version[[:space:]]*:[[:space:]]*)'[^']*'/\1'>= 1.0.0'/" "$SRC/meson.build"

# DTLS fix: onSslBioOut() must test the BIO_CB_RETURN flag with '&' (the
# callback receives BIO_CB_RETURN | BIO_CB_WRITE); with '==' the worker crashes
# (SIGSEGV) on the first DTLS ClientHello of a real WebRTC peer.
DTLS_CPP="$SRC/src/RTC/DtlsTransport.cpp"
sed -i 's/(operationType == BIO_CB_RETURN)/(operationType \& BIO_CB_RETURN)/g' "$DTLS_CPP"
grep -q '(operationType & BIO_CB_RETURN)' "$DTLS_CPP" ||
	fail_build "DTLS fix: pattern '(operationType == BIO_CB_RETURN)' not found in src/RTC/DtlsTransport.cpp and fix not present (mediasoup changed; revisit the fix)"
if grep -q 'operationType == BIO_CB_RETURN' "$DTLS_CPP"; then
	fail_build "DTLS fix: 'operationType == BIO_CB_RETURN' still present in src/RTC/DtlsTransport.cpp"
fi

log "configuring (meson $(meson --version))"
run_logged meson setup "$BLD" "$SRC" \
	--buildtype release -Db_ndebug=true -Dms_disable_liburing=true --wrap-mode=nodownload ||
	fail_build "meson setup"
log "generating FlatBuffers headers"
run_logged meson compile -C "$BLD" flatbuffers-generator || fail_build "flatbuffers-generator"
log "compiling mediasoup-worker"
run_logged meson compile -C "$BLD" mediasoup-worker || fail_build "compile mediasoup-worker"

BUILT="$BLD/mediasoup-worker"
worker_runs "$BUILT" || fail_build "built binary $BUILT does not start (expected exit code 41 without MEDIASOUP_VERSION)"

mkdir -p "$CACHE_DIR"
tmp="$CACHE_DIR/.mediasoup-worker.tmp.$$"
TMP_PATHS+=("$tmp")
cp -f -- "$BUILT" "$tmp"
chmod 0755 "$tmp"
mv -f -- "$tmp" "$CACHED_BIN"
cp -f -- "$BUILD_LOG" "$CACHE_DIR/build.log"
rm -rf -- "$BUILD_ROOT" "$BUILD_LOG"
log "built in $((SECONDS - start)) s; cached at $CACHED_BIN"

install_bin "$CACHED_BIN"
verify
