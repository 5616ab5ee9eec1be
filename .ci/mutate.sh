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
#   PKG       one package to mutate, e.g. PKG=./index (same as PKGS=./index)
#   PKGS      packages to mutate. Default: every package where a bug loses
#             data (ALL below). ./client and ./gateway are big and their
#             tests start PostgreSQL or a gateway, so there only the
#             data-losing files are mutated (FILES below) and only the tests
#             that exercise them run (RUN below).
#   BASE      mutate only lines changed since this commit (git diff BASE,
#             uncommitted changes included), e.g. BASE=main before a review;
#             default: every line. In overlay mode cmd/internal/mutant
#             filters the dry run's mutants by the diff itself: gremlins'
#             --diff names files from the repository root while the mutants
#             of a package are named from its directory, so it skipped them
#             all.
#   WORKERS   mutants tested at once (default 1: the suite is not alone on
#             a 2-core machine)
#   COEFF     a mutant's test run may take COEFF times gremlins' coverage
#             run before it counts as timed out. Default 40 where that run
#             takes seconds (each mutant also recompiles the package, which
#             under load takes longer than the tests), 6 for ./client and
#             ./gateway, whose coverage run takes minutes. With gremlins'
#             default of 3, a loaded 2-core machine turns slow compiles
#             into false "timed out" results. A timed-out mutant is counted
#             neither killed nor lived.
#   TIMEOUT   wall-clock limit per package (default 30m; timeout(1) syntax)
#   OUT       directory for gremlins' JSON reports and logs (default
#             mutate-out)
#   FILES     the only files of PKG to mutate, e.g. FILES=backupfetch.go
#             (default: files_for below; every file for most packages)
#   RUN       a go test -run pattern replacing run_for below
#   GREMLINS_FLAGS  more flags for gremlins unleash, e.g.
#             "--exclude-files codec.go" to measure part of a package
#   MODE      overlay (default): gremlins lists the mutants (--dry-run) and
#             cmd/internal/mutant tests each one with go test -overlay in
#             this tree, the build cache warm (mutants compiled together into
#             one switched test binary where they can be, the tests that
#             reach each mutant only): seconds a mutant where
#             gremlins' own runner, which copies the module for its worker,
#             takes minutes on a 2-core machine. gremlins: gremlins' runner.
#             Same mutators, same positions, same verdicts. In overlay mode
#             COEFF defaults to 10 and WORKERS is not used.
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
MODE=${MODE:-overlay}
# The packages where a bug loses data.
ALL="./backends/fs ./client/codec ./client/basebackup ./index ./gateway/stores
./gateway/rebuild ./lifecycle ./lifecycle/apply ./client ./gateway"
PKGS=${PKGS:-${PKG:-$ALL}}

# skip_for PACKAGE: a go test -skip pattern for the package, or "".
skip_for() {
	case "$1" in
	./client/codec) echo 'TestMemory|^Fuzz' ;;
	./lifecycle) echo 'TestStreamMemoryBounded' ;;
	*) echo '' ;;
	esac
}

# coeff_for PACKAGE: gremlins' timeout coefficient for the package.
coeff_for() {
	case "$1" in
	./client | ./gateway) echo 6 ;;
	*) echo 40 ;;
	esac
}

# files_for PACKAGE: the only files mutated in the package, or "" for all.
# gremlins walks subdirectories too; those are packages of their own.
files_for() {
	if [ -n "${FILES:-}" ]; then
		echo "$FILES"
		return
	fi
	case "$1" in
	./client) echo 'wal.go backupfetch.go' ;;
	./gateway) echo 'auth.go' ;;
	*) echo '' ;;
	esac
}

# run_for PACKAGE FILES: a go test -run pattern for the package, or "":
# the tests that exercise FILES.
run_for() {
	if [ -n "${RUN:-}" ]; then
		echo "$RUN"
		return
	fi
	case "$1 $2" in
	"./client backupfetch.go") echo '^(TestBackupFetch.*|TestChainFetch.*)$' ;;
	"./client wal.go") echo '^(TestRoundTrip|TestConflict|TestFetchNotFound|TestFetchWAL.*|TestFetchIntegrity|TestPushWAL.*|TestKeyRotation|TestTooLarge|TestInvalidNames|TestPrefetch.*)$' ;;
	"./client "*) echo '^(TestRoundTrip|TestConflict|TestFetchNotFound|TestFetchWAL.*|TestFetchIntegrity|TestPushWAL.*|TestKeyRotation|TestTooLarge|TestInvalidNames|TestBackupFetch.*|TestChainFetch.*|TestPrefetch.*)$' ;;
	"./gateway "*) echo '^(TestAuth|TestTokenBoundToItsExactCluster|TestHealthEndpointAuth)$' ;;
	*) echo '' ;;
	esac
}

# excludes PACKAGE: gremlins flags leaving out every subdirectory (each is
# a package with its own tests and its own run) and every file of the
# package but those files_for names.
excludes() {
	local files f
	printf -- '--exclude-files / '
	files=$(files_for "$1")
	[ -n "$files" ] || return 0
	for f in "${1#./}"/*.go; do
		case $f in *_test.go) continue ;; esac
		f=${f##*/}
		case " $files " in *" $f "*) continue ;; esac
		printf -- '--exclude-files ^%s$ ' "${f//./\\.}"
	done
}

STEPS=gremlins WALGATE_TOOLS="$WALGATE_TOOLS" bash .ci/install-deps.sh >/dev/null
GREMLINS="$WALGATE_TOOLS/bin/gremlins"
mkdir -p "$OUT"
# Built once and run directly, so that timeout(1)'s SIGTERM reaches it (not
# only a go run in between): it then stops the running tests, writes the
# verdicts so far to the JSON report and removes its work directory.
MUTANT="$OUT/.mutant"
[ "$MODE" != overlay ] || go build -o "$MUTANT" ./cmd/internal/mutant

status=0
for pkg in $PKGS; do
	name=$(echo "${pkg#./}" | tr / -)
	skip=$(skip_for "$pkg")
	files=$(files_for "$pkg")
	run=$(run_for "$pkg" "$files")
	echo "mutate: $pkg${files:+ (files $files)}${skip:+ (skipping tests $skip)}${BASE:+ (lines changed since $BASE)}"
	if [ "$MODE" = overlay ]; then
		# gremlins lists the mutants (its mutators, its positions, the
		# lines its coverage run reaches); cmd/internal/mutant tests each
		# with go test -overlay in this tree, with the build cache warm.
		if ! GOFLAGS="${GOFLAGS:-} -count=1 -vet=off${skip:+ -skip=$skip}${run:+ -run=$run}" \
			"$GREMLINS" unleash --dry-run $(excludes "$pkg") ${GREMLINS_FLAGS:-} "$pkg" >"$OUT/$name.dry" 2>&1 ||
			! timeout "$TIMEOUT" "$MUTANT" -pkg "$pkg" ${BASE:+-base "$BASE"} ${run:+-run "$run"} ${skip:+-skip "$skip"} \
				-coeff "${COEFF:-10}" -from "$OUT/$name.dry" -json "$OUT/$name.json" >"$OUT/$name.log" 2>&1; then
			echo "mutate: $pkg failed or ran past $TIMEOUT (see $OUT/$name.dry, $OUT/$name.log; the verdicts reached are in $OUT/$name.json)" >&2
			status=1
		fi
		grep -E 'NOT COVERED|Mutator coverage' "$OUT/$name.dry" || true
		grep -E 'LIVED|TIMED OUT|Killed:|Test efficacy' "$OUT/$name.log" || true
		continue
	fi
	# GOFLAGS reaches both gremlins' coverage run and every mutant's run.
	# -vet=off: a mutant go vet rejects is not one a test caught.
	# -count=1: a cached coverage run would take no time, and gremlins
	# sets each mutant's time limit from it.
	if ! GOFLAGS="${GOFLAGS:-} -count=1 -vet=off${skip:+ -skip=$skip}${run:+ -run=$run}" timeout "$TIMEOUT" \
		"$GREMLINS" unleash --workers "$WORKERS" --timeout-coefficient "${COEFF:-$(coeff_for "$pkg")}" \
		${BASE:+--diff "$BASE"} $(excludes "$pkg") ${GREMLINS_FLAGS:-} --output "$OUT/$name.json" "$pkg" >"$OUT/$name.log" 2>&1; then
		echo "mutate: $pkg failed or ran past $TIMEOUT" >&2
		status=1
	fi
	# The survivors and the totals; the whole run is in $OUT/$name.log.
	grep -E 'LIVED|TIMED OUT|Killed:|Mutator coverage|Test efficacy' "$OUT/$name.log" || true
done
exit $status
