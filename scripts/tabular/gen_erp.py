"""Writes an ERP-like order-lines CSV: N rows x 20 columns, deterministic."""
import sys
import numpy as np
import pandas as pd

n = int(sys.argv[1]); out = sys.argv[2]
rng = np.random.default_rng(42)
words = np.array("the quick brown fox jumps over lazy dog carefully final ironic deposits sleep".split())
start = np.datetime64("2020-01-01")
order_date = start + rng.integers(0, 2000, n).astype("timedelta64[D]")
qty = rng.integers(1, 50, n)
price = np.round(rng.lognormal(4, 1, n), 2)
df = pd.DataFrame({
    "order_id": np.arange(1, n + 1) // 4 + 1,
    "line_no": np.arange(n) % 4 + 1,
    "customer_id": rng.integers(1, 150_000, n),
    "vendor_code": np.char.add("V", rng.integers(0, 2000, n).astype(str)),
    "order_date": order_date.astype(str),
    "ship_date": (order_date + rng.integers(1, 30, n).astype("timedelta64[D]")).astype(str),
    "status": rng.choice(["open", "shipped", "invoiced", "cancelled"], n),
    "priority": rng.choice(["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"], n),
    "quantity": qty,
    "unit_price": price,
    "extended_price": np.round(price * qty, 2),
    "discount": np.round(rng.integers(0, 11, n) / 100, 2),
    "tax": np.round(rng.integers(0, 9, n) / 100, 2),
    "currency": rng.choice(["EUR", "USD", "GBP"], n, p=[0.6, 0.3, 0.1]),
    "amount_eur": np.round(price * qty * 0.92, 2),
    "region": rng.choice(["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"], n),
    "clerk": np.char.add("Clerk#", rng.integers(1, 1000, n).astype(str)),
    "comment": [" ".join(w) for w in words[rng.integers(0, len(words), (n, 4))]],
    "is_paid": rng.choice(["true", "false"], n),
    "weight_kg": np.round(rng.gamma(2, 3, n), 3),
})
df.loc[rng.random(n) < 0.01, "discount"] = np.nan
df.to_csv(out, index=False)
