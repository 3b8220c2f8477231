"""The peers' side of scripts/bench-tabular.sh: read a CSV (or, for a `.ndjson` file, JSON
Lines) and profile it with pandas or polars.

Usage: peer.py pandas|polars FILE
       peer.py pandas-same FILE VIGIL_OUTPUT
Prints one line with the read, profile and total seconds.

`pandas` and `polars` profile as the issue's benchmark asks: describe every column and the
correlation matrix of the numeric ones (less than Vigil's profile does). `pandas-same`
computes with pandas and numpy what Vigil's profile computes, on the columns Vigil chose
(VIGIL_OUTPUT is the JSON the `ingest` example prints for the same file): per column the
count, missing, distinct and top values, numeric statistics with quantiles and a
histogram, string lengths, date range and gaps, duplicate keys of id columns; per table
duplicate rows, missingness patterns, Pearson and Spearman over the numeric columns and
Cramér's V over the categorical ones.
"""
import json
import sys
import time

which, path = sys.argv[1], sys.argv[2]
lines = path.endswith(".ndjson")


def spec_of(vigil_output):
    with open(vigil_output) as f:
        profile = json.load(f)["profile"]
    columns = profile["columns"]
    return {
        "numeric_stats": [c["name"] for c in columns if c.get("numeric")],
        "dates": [c["name"] for c in columns if c.get("dates")],
        "lengths": [c["name"] for c in columns if c.get("lengths")],
        "ids": [c["name"] for c in columns if c["role"] == "id"],
        "numeric": profile["correlations"]["numeric"],
        "categorical": profile["correlations"]["categorical"],
    }


def pandas_same(path, spec):
    """pandas computing what Vigil's profile computes, on the columns Vigil chose: the
    per-column statistics, duplicate rows and keys, missingness patterns, Pearson and
    Spearman over the numeric columns and Cramér's V over the categorical ones."""
    import numpy as np
    import pandas as pd

    if lines:
        df = pd.read_json(path, lines=True)
        for name in spec["dates"]:
            df[name] = pd.to_datetime(df[name])
    else:
        df = pd.read_csv(path, parse_dates=spec["dates"])
    t1 = time.perf_counter()
    quantiles = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    out = {}
    for name in df.columns:
        s = df[name]
        counts = s.value_counts()
        col = {"count": int(s.count()), "missing": int(s.isna().sum()), "distinct": len(counts),
               "top": counts.head(10).to_dict()}
        if name in spec["numeric_stats"]:
            v = s.dropna().to_numpy(dtype=float)
            col.update(min=v.min(), max=v.max(), mean=v.mean(), median=np.median(v), std=v.std(ddof=1),
                       quantiles=np.quantile(v, quantiles), zeros=int((v == 0).sum()),
                       negatives=int((v < 0).sum()), histogram=np.histogram(v, bins=20))
        if name in spec["dates"]:
            days = np.unique(s.dropna().dt.normalize().to_numpy())
            steps = np.diff(days).astype("timedelta64[D]").astype(np.int64)
            col.update(first=days[0], last=days[-1], days_with_rows=len(days), gaps=int((steps > 1).sum()))
        if name in spec["lengths"]:
            lengths = s.dropna().astype(str).str.len()
            col.update(len_min=lengths.min(), len_max=lengths.max(), len_mean=lengths.mean())
        if name in spec["ids"]:
            repeated = counts[counts > 1]
            col.update(duplicate_values=len(repeated), duplicate_rows=int(repeated.sum()))
        out[name] = col
    out["duplicate_rows"] = int(df.duplicated().sum())
    missing = df.isna()
    out["missingness"] = missing[missing.any(axis=1)].value_counts()
    numeric = df[spec["numeric"]].astype(float)
    out["pearson"] = numeric.corr()
    out["spearman"] = numeric.corr(method="spearman")
    cramers = {}
    for i, a in enumerate(spec["categorical"]):
        for b in spec["categorical"][i + 1:]:
            table = pd.crosstab(df[a], df[b]).to_numpy(dtype=float)
            n = table.sum()
            expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
            chi2 = ((table - expected) ** 2 / expected).sum()
            k = min(table.shape) - 1
            cramers[(a, b)] = np.sqrt(chi2 / n / k) if k > 0 else None
    out["cramers_v"] = cramers
    return t1


t = time.perf_counter()
if which == "pandas-same":
    t1 = pandas_same(path, spec_of(sys.argv[3]))
elif which == "pandas":
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
