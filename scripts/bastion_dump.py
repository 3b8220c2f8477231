"""Writes the bastioncorpus prompt-injection corpus as JSON lines for the Rust benchmark.

One object per line: id, text (the `{canary}` slot removed, as the package's own adapters
do), label (malicious|benign), category, channel, lang.
Usage: python bastion_dump.py OUT.jsonl
"""
import json
import sys

import bastioncorpus
from bastioncorpus import load_corpus

with open(sys.argv[1], "w", encoding="utf-8") as out:
    for row in load_corpus():
        out.write(json.dumps({
            "id": row.id,
            "text": row.stripped(),
            "label": row.label,
            "category": row.category,
            "channel": row.channel,
            "lang": row.lang,
        }, ensure_ascii=False) + "\n")
print(f"bastioncorpus {bastioncorpus.__version__}", file=sys.stderr)
