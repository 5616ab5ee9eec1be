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
#   pguser     the postgres OS user.
#   chromium   Debian's chromium, for the dashboard's browser test
#              (driven headless through the DevTools protocol).
#
# Tools that are not Debian packages (S3/GCS/Azure emulators, to come) go in
# a versioned cache outside the repository, $WALGATE_TOOLS (default
# /var/cache/walgate-tools/v1): bump the version in the path when their set
# or versions change, so CI caches keyed on it stay correct.
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
ALL_STEPS="postgres runuser pguser chromium"
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

# Later steps (emulators) keep their files under $WALGATE_TOOLS:
#   step_minio() { tools_dir; [ -x "$WALGATE_TOOLS/minio" ] && { log "ok: minio"; return; }; ... }
tools_dir() {
	if [ ! -d "$WALGATE_TOOLS" ]; then
		need_root "tools directory $WALGATE_TOOLS"
		log "creating $WALGATE_TOOLS"
		mkdir -p "$WALGATE_TOOLS"
	fi
}

for step in $STEPS; do
	case " $ALL_STEPS " in
	*" $step "*) "step_$step" ;;
	*) die "unknown step '$step' (steps: $ALL_STEPS)" ;;
	esac
done
log "done"
