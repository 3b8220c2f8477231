"""Reference statistics for the profile, computed independently with pandas, numpy and scipy.

Usage: reference.py FIXTURE COLUMNS_JSON
  FIXTURE       a fixture in tests/fixtures (read here with pandas, by its own rules)
  COLUMNS_JSON  {"numeric": [...], "categorical": [...], "dates": [...], "measured": [...],
                "amounts": [...]}: the columns the Rust side treats as such, so both sides
                compute the same matrices and analyses.
Prints one JSON object. Run by tests/reference.rs with the interpreter scripts/test.sh
installs pandas and scipy into.
"""
import json
import math
import sys

import numpy as np
import pandas as pd
from scipy.stats import chisquare, median_abs_deviation
from scipy.stats.contingency import association


def read(path):
    name = path.rsplit("/", 1)[-1]
    if name == "orders.csv":
        money = lambda s: (
            np.nan if s == "" else
            -float(s.strip("()").replace("$", "").replace(",", "")) if s.startswith("(")
            else float(s.replace("$", "").replace(",", ""))
        )
        df = pd.read_csv(
            path, thousands=",", dtype={"zip": str, "order_id": str}, keep_default_na=False,
            na_values=["", "NA"], converters={"amount_usd": money},
            true_values=["yes"], false_values=["no"], parse_dates=["order_date"],
        )
        df["discount"] = df["discount"].str.rstrip("%").astype(float) / 100
        return df
    if name == "ledger.csv":
        df = pd.read_csv(path, sep=";", decimal=",", thousands=".", keep_default_na=False, na_values=[""], dtype={"Datum": str, "Beleg": str})
        df["Datum"] = pd.to_datetime(df["Datum"], format="%d.%m.%Y")
        return df
    raise SystemExit(f"no reading rules for {name}")


def num(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def main():
    df = read(sys.argv[1])
    spec = json.loads(sys.argv[2])
    out = {"rows": len(df), "columns": {}}
    for name in df.columns:
        s = df[name]
        col = {"count": int(s.count()), "missing": int(s.isna().sum()), "distinct": int(s.nunique())}
        col["top_counts"] = [int(c) for c in s.value_counts().head(10).tolist()]
        if name in spec["numeric"]:
            v = s.dropna().astype(float).to_numpy()
            counts, edges = np.histogram(v, bins=20) if v.min() != v.max() else np.histogram(v, bins=20, range=(v.min() - 0.5, v.max() + 0.5))
            col.update(
                mean=num(s.mean()), std=num(s.std()), min=num(s.min()), max=num(s.max()), median=num(s.median()),
                quantiles=[num(s.quantile(q)) for q in [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]],
                zeros=int((v == 0).sum()), negatives=int((v < 0).sum()),
                histogram=[int(c) for c in counts], edges=[float(e) for e in edges],
            )
        elif name in spec["dates"]:
            col.update(first=str(s.min().date()), last=str(s.max().date()), days=int(s.dt.normalize().nunique()))
        elif pd.api.types.is_string_dtype(s.dtype):
            lengths = s.dropna().str.len()
            col.update(len_min=int(lengths.min()), len_max=int(lengths.max()), len_mean=float(lengths.mean()))
        out["columns"][name] = col
    numeric = df[spec["numeric"]].astype(float)
    for method in ["pearson", "spearman"]:
        matrix = numeric.corr(method=method).to_dict()
        out[method] = {a: {b: num(v) for b, v in row.items()} for a, row in matrix.items()}
    cramers = {}
    for a in spec["categorical"]:
        cramers[a] = {}
        for b in spec["categorical"]:
            table = pd.crosstab(df[a], df[b])
            cramers[a][b] = float(association(table.to_numpy(), method="cramer")) if min(table.shape) > 1 else None
    out["cramers_v"] = cramers
    out["duplicate_rows"] = int(df.duplicated().sum())
    patterns = df[df.isna().any(axis=1)].isna()
    out["missing_patterns"] = sorted(
        [sorted(c for c, m in zip(df.columns, key) if m), int(n)]
        for key, n in patterns.value_counts().items()
    )
    # Analyses: outliers of the measured columns, Benford of the amount columns.
    out["outliers"] = {}
    for name in spec.get("measured", []):
        v = df[name].dropna().astype(float)
        q1, q3 = v.quantile(0.25), v.quantile(0.75)
        low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        median = v.median()
        mad = float(median_abs_deviation(v.to_numpy()))
        z = 0.6745 * (v - median) / mad if mad > 0 else None
        out["outliers"][name] = {
            "q1": float(q1), "q3": float(q3), "below": int((v < low).sum()), "above": int((v > high).sum()),
            "median": float(median), "mad": mad, "flagged": None if z is None else int((z.abs() > 3.5).sum()),
        }
    out["benford"] = {}
    p = np.log10(1 + 1 / np.arange(1, 10))
    for name in spec.get("amounts", []):
        v = df[name].dropna().astype(float)
        v = v[v != 0].abs()
        digits = np.array([int(f"{x:e}"[0]) for x in v])
        observed = np.array([(digits == d).sum() for d in range(1, 10)])
        result = chisquare(observed, f_exp=p * observed.sum())
        out["benford"][name] = {
            "observed": [int(o) for o in observed], "chi2": float(result.statistic), "p": float(result.pvalue),
            "mad": float(np.abs(observed / observed.sum() - p).mean()),
        }
    print(json.dumps(out))


main()
