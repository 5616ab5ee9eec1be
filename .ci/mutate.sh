#!/usr/bin/env bash
# mutate.sh: mutation testing with gremlins over the packages where a bug
# loses data. `make mutate` runs it; it is not part of `make test`.
#
# For each package, gremlins measures which lines the package's own tests
# cover, then changes one operator or condition at a time (a mutant) and
# runs those tests again: a mutant the tests do not notice "lives". The
# score is the test efficacy: killed / (killed + lived). docs/testing.md
# records the scores and what each surviving mutant means.
#
# Environment:
#   PKGS      packages to mutate. Default: the packages whose tests run in
#             seconds (FAST below), every line; with BASE, also the client
#             and the gateway, whose tests start PostgreSQL and take minutes
#             a run, so only changed lines are practical there.
#   BASE      mutate only lines changed since this commit (git diff BASE),
#             e.g. BASE=main before a review; default: every line
#   WORKERS   mutants tested at once (default 1: the suite is not alone on
#             a 2-core machine)
#   TIMEOUT   wall-clock limit per package (default 30m; timeout(1) syntax)
#   OUT       directory for gremlins' JSON reports and logs (default
#             mutate-out)
#   GREMLINS_FLAGS  more flags for gremlins unleash, e.g.
#             "--exclude-files codec.go" to measure part of a package
#   WALGATE_TOOLS  tools cache (default /var/cache/walgate-tools/v1)
#
# Per package, tests that only measure memory or run for seconds without
# reaching different code are skipped (SKIP below), so that one mutant
# costs one short test run. A mutant only those tests would kill shows as
# living; docs/testing.md says which.
set -euo pipefail

cd "$(dirname "$0")/.."
WALGATE_TOOLS=${WALGATE_TOOLS:-/var/cache/walgate-tools/v1}
WORKERS=${WORKERS:-1}
TIMEOUT=${TIMEOUT:-30m}
OUT=${OUT:-mutate-out}
BASE=${BASE:-}
# The packages where a bug loses data.
FAST="./backends/fs ./client/codec ./client/basebackup ./lifecycle ./index"
SLOW="./client ./gateway"
if [ -z "${PKGS:-}" ]; then
	PKGS=$FAST
	[ -z "$BASE" ] || PKGS="$FAST $SLOW"
fi

# skip_for PACKAGE: a go test -skip pattern for the package, or "".
skip_for() {
	case "$1" in
	./client/codec) echo 'TestMemory|^Fuzz' ;;
	./lifecycle) echo 'TestStreamMemoryBounded' ;;
	*) echo '' ;;
	esac
}

STEPS=gremlins WALGATE_TOOLS="$WALGATE_TOOLS" bash .ci/install-deps.sh >/dev/null
GREMLINS="$WALGATE_TOOLS/bin/gremlins"
mkdir -p "$OUT"

status=0
for pkg in $PKGS; do
	name=$(echo "${pkg#./}" | tr / -)
	skip=$(skip_for "$pkg")
	echo "mutate: $pkg${skip:+ (skipping tests $skip)}${BASE:+ (lines changed since $BASE)}"
	# GOFLAGS reaches both gremlins' coverage run and every mutant's run.
	# -count=1: a cached coverage run would take no time, and gremlins
	# sets each mutant's time limit from it.
	if ! GOFLAGS="${GOFLAGS:-} -count=1${skip:+ -skip=$skip}" timeout "$TIMEOUT" \
		"$GREMLINS" unleash --workers "$WORKERS" --timeout-coefficient 3 \
		${BASE:+--diff "$BASE"} ${GREMLINS_FLAGS:-} --output "$OUT/$name.json" "$pkg" >"$OUT/$name.log" 2>&1; then
		echo "mutate: $pkg failed or ran past $TIMEOUT" >&2
		status=1
	fi
	# The survivors and the totals; the whole run is in $OUT/$name.log.
	grep -E 'LIVED|TIMED OUT|Killed:|Mutator coverage|Test efficacy' "$OUT/$name.log" || true
done
exit $status
