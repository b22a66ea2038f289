#!/usr/bin/env bash
# Runs fuzz targets, each given as package:Function:executions, on top of their committed
# corpus (testdata/fuzz); FUZZTIME, when set, replaces every count (say 30s or 500000x).
#
# A real finding always writes its input ("Failing input written to testdata/fuzz/..."), and a
# failing seed fails again on a second run. A run that fails without either is a hiccup of the
# fuzz engine or of a worker's start-up (a bare "context deadline exceeded": golang/go#75804 in
# go1.26; "fuzzing process terminated without fuzzing", a worker whose TestMain could not bring
# up the stack the server/api targets run against): that target is run once more, and only a
# second failure fails the run.
set -uo pipefail
go=${GO:-go}
status=0
for t in "$@"; do
	pkg=${t%%:*}
	rest=${t#*:}
	name=${rest%%:*}
	n=${FUZZTIME:-${rest#*:}}
	for try in 1 2; do
		out=$("$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$n" "$pkg" 2>&1)
		rc=$?
		printf '%s\n' "$out"
		[ "$rc" -eq 0 ] && break
		if grep -q 'Failing input written to' <<<"$out" || [ "$try" -eq 2 ]; then
			status=1
			break
		fi
		echo "fuzz: $name failed without a failing input; running it once more"
	done
done
exit "$status"
