#!/usr/bin/env bash
# Ingest + profile of a 1,000,000 x 20 ERP-like CSV: Vigil's tabular pack against pandas
# (read_csv, describe, corr) and polars doing the same work, in one run, alternating runs
# so machine noise hits all three alike. Prints median wall time, ratios and peak RSS.
# A fourth row times the real path end to end: `vigil run` on the same file (the whole
# recommended pipeline in the sandbox: inspect, text profile, ingest, profile, analyses,
# plots and report), which does more than the peers and is shown for what it costs.
# A fifth, pandas-same, is pandas and numpy computing what Vigil's profile computes, on the
# columns Vigil chose (scripts/tabular/peer.py says what exactly).
#
#   ./scripts/bench-tabular.sh            # 1M rows, 3 runs each
#   ROWS=200000 RUNS=5 ./scripts/bench-tabular.sh
#   FORMAT=ndjson ./scripts/bench-tabular.sh   # the same table as JSON Lines (pandas
#                                              # read_json(lines=True), polars read_ndjson)
#
# pandas, numpy and polars are installed (pinned) into target/bench-tabular-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-1000000}
runs=${RUNS:-3}
venv=target/bench-tabular-venv
if ! "$venv/bin/python" -c 'import pandas, polars' >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "pandas==3.1.1" "numpy==2.4.6" "polars==2.1.0"
fi
format=${FORMAT:-csv}
data=target/bench-tabular/erp-$rows.csv
mkdir -p target/bench-tabular
[ -s "$data" ] || "$venv/bin/python" scripts/tabular/gen_erp.py "$rows" "$data"
case "$format" in
    csv) ;;
    ndjson)
        csv=$data
        data=target/bench-tabular/erp-$rows.ndjson
        [ -s "$data" ] || "$venv/bin/python" -c 'import sys, polars as pl
pl.read_csv(sys.argv[1], infer_schema_length=10000).write_ndjson(sys.argv[2])' "$csv" "$data"
        ;;
    *) echo "FORMAT is csv or ndjson, not $format" >&2; exit 2 ;;
esac
cargo build -q --release -p vigil-tabular --example ingest
cargo build -q --release -p vigil
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "input: $data ($(du -h "$data" | cut -f1)), $(nproc) cores" >&2
# Vigil's own output, once, untimed: pandas-same computes the same statistics on the columns
# it names (numeric, categorical, dates, ids).
target/release/examples/ingest "$data" >"$scratch/vigil.json"

declare -A times mems
for ((i = 0; i < runs; i++)); do
    for tool in vigil pandas polars vigil-run pandas-same; do
        if [ "$tool" = vigil ]; then
            cmd=(target/release/examples/ingest "$data" --quiet)
        elif [ "$tool" = vigil-run ]; then
            cmd=(target/release/vigil run --data "$scratch" --fresh "$data")
        elif [ "$tool" = pandas-same ]; then
            cmd=("$venv/bin/python" scripts/tabular/peer.py pandas-same "$data" "$scratch/vigil.json")
        else
            cmd=("$venv/bin/python" scripts/tabular/peer.py "$tool" "$data")
        fi
        out=$( { /usr/bin/time -f "TIME %e %M" "${cmd[@]}" >/dev/null; } 2>&1 )
        echo "$out" | grep -v "^TIME" >&2 || true
        read -r _ secs kb <<<"$(echo "$out" | grep '^TIME')"
        times[$tool]+="$secs "
        mems[$tool]+="$kb "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
v=$(echo "${times[vigil]}" | median)
echo
echo "| tool | median wall (s), $runs runs | vs Vigil | peak RSS (MB) |"
echo "|---|---|---|---|"
for tool in vigil pandas polars vigil-run pandas-same; do
    t=$(echo "${times[$tool]}" | median)
    m=$(echo "${mems[$tool]}" | median)
    printf "| %s | %.2f | %.2fx | %d |\n" "$tool" "$t" "$(echo "$t / $v" | bc -l)" "$((m / 1024))"
done
