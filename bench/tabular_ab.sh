#!/usr/bin/env bash
# Benchmark (not a test): the tabular pipeline end to end, one build against another in the
# same run. `vigil run --fresh` (inspect, text profile, ingest, profile, analyses, report, all
# in the sandbox) of FILE by each binary in turn, each in a fresh data folder; prints every
# wall time and peak RSS, the medians and their ratio, and whether every plugin's response
# and artifacts are byte-identical between the two builds.
#
# Usage: BEFORE=BIN AFTER=BIN bench/tabular_ab.sh FILE [rounds]
#   FILE, for example: scripts/tabular/gen_erp.py 300000 target/bench-tabular/erp-300000.csv
set -euo pipefail
before=${BEFORE:?BEFORE=path of the build before}
after=${AFTER:?AFTER=path of the build after}
data=${1:?usage: BEFORE=BIN AFTER=BIN bench/tabular_ab.sh FILE [rounds]}
rounds=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -A times
for round in $(seq 1 "$rounds"); do
    for label in before after; do
        bin=${!label}
        dir="$work/$label-$round"
        mkdir -p "$dir"
        /usr/bin/time -f "TIME %e %M" "$bin" run --data "$dir" --fresh "$data" >/dev/null 2>"$dir/err" ||
            { tail -5 "$dir/err" >&2; exit 1; }
        read -r _ secs kb <<<"$(grep '^TIME' "$dir/err")"
        printf '%-6s round %d: %6.2f s, peak RSS %d MB\n' "$label" "$round" "$secs" "$((kb / 1024))"
        times[$label]+="$secs "
    done
done

python3 - "${times[before]}" "${times[after]}" <<'PY'
import statistics, sys
b, a = ([float(x) for x in arg.split()] for arg in sys.argv[1:3])
mb, ma = statistics.median(b), statistics.median(a)
print(f"median: before {mb:.2f} s, after {ma:.2f} s; after / before = {ma / mb:.3f}")
PY

# The same results: each plugin's response and artifacts, first round of each build.
differ=0
a=$(ls -d "$work"/before-1/runs/run_*) b=$(ls -d "$work"/after-1/runs/run_*)
for plugin in "$a"/plugins/*; do
    name=$(basename "$plugin")
    if ! cmp -s "$plugin/response.json" "$b/plugins/$name/response.json" ||
        ! diff -rq "$plugin/artifacts" "$b/plugins/$name/artifacts" >/dev/null; then
        echo "$name: results differ" && differ=1
    fi
done
[ "$differ" = 0 ] && echo "every plugin's response and artifacts are byte-identical"
