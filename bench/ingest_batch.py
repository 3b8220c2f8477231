"""Writes the seeded ingest batch the ingest benchmarks post, and wrk's script to post it.

Usage: python3 bench/ingest_batch.py DIR [--input-text]
Writes DIR/batch.json (1,000 vitals of 20 agents) and DIR/post.lua. With --input-text each
vital carries a short user message, so the injection scan is part of the measured path.
"""

import json
import random
import sys

out = sys.argv[1]
with_text = "--input-text" in sys.argv[2:]
random.seed(7)
vitals = []
for i in range(1000):
    vital = {
        "agent_id": f"agent-{i % 20:02d}",
        "latency_ms": round(random.lognormvariate(6.5, 0.2), 1),
        "input_tokens": int(random.lognormvariate(7, 0.15)),
        "output_tokens": int(random.lognormvariate(5.5, 0.2)),
        "tool_names": ["search"] if i % 3 == 0 else [],
        "cost_usd": round(random.uniform(0.001, 0.01), 6),
        "system_prompt_sha256": "ab" * 32,
    }
    if with_text:
        vital["input_text"] = "Where is my order? It was due on Monday."
    vitals.append(vital)
with open(f"{out}/batch.json", "w") as f:
    json.dump({"vitals": vitals}, f)
with open(f"{out}/post.lua", "w") as f:
    f.write(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{out}/batch.json", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
