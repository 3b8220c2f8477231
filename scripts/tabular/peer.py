"""The peers' side of scripts/bench-tabular.sh: read a CSV (or, for a `.ndjson` file, JSON
Lines) and profile it with pandas or polars.

Usage: peer.py pandas|polars FILE. Prints one line with the read, profile and total seconds.
Profile means what Vigil's profile also does at the least: describe every column and the
correlation matrix of the numeric ones.
"""
import sys
import time

which, path = sys.argv[1], sys.argv[2]
lines = path.endswith(".ndjson")
t = time.perf_counter()
if which == "pandas":
    import pandas as pd
    df = pd.read_json(path, lines=True) if lines else pd.read_csv(path)
    t1 = time.perf_counter()
    df.describe(include="all")
    df.corr(numeric_only=True)
elif which == "polars":
    import polars as pl
    df = pl.read_ndjson(path) if lines else pl.read_csv(path, try_parse_dates=True)
    t1 = time.perf_counter()
    df.describe()
    df.select(pl.selectors.numeric()).corr()
else:
    raise SystemExit(f"unknown peer {which}")
t2 = time.perf_counter()
print(f"{which}: read {t1 - t:.3f} s, profile {t2 - t1:.3f} s, total {t2 - t:.3f} s")
