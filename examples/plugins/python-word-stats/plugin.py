#!/usr/bin/env python3
"""Example Vigil plugin: word statistics.

Protocol (docs/plugin-protocol.md): one JSON request on stdin, one JSON response on
stdout. Everything else (progress, debugging) goes to stderr, which Vigil keeps in a
size-capped log. The plugin runs in Vigil's sandbox: no network, and it may only write in
request["output_dir"] and its working directory.
"""
import collections
import json
import os
import sys


def main():
    request = json.load(sys.stdin)
    config = request.get("config", {})
    top = config.get("top", 5)
    threshold = config.get("repeat_threshold", 4)

    counts = collections.Counter()
    lines = 0
    repeated_rows = []
    with open(request["input"]["path"], encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            lines += 1
            words = line.lower().split()
            counts.update(words)
            most = collections.Counter(words).most_common(1)
            if most and most[0][1] >= threshold:
                repeated_rows.append(number)

    findings = []
    if repeated_rows:
        findings.append({
            "kind": "repeated_word",
            "title": f"{len(repeated_rows)} lines repeat one word {threshold} or more times",
            "severity": "low",
            "measurement_type": "measured",
            "evidence": {"rows": repeated_rows[:20], "values": {"lines": len(repeated_rows)}},
        })

    # An artifact: the full word counts, written where Vigil keeps this plugin's output.
    artifact = "word_counts.json"
    with open(os.path.join(request["output_dir"], artifact), "w", encoding="utf-8") as out:
        json.dump(dict(sorted(counts.items())), out, indent=1, sort_keys=True)

    print(f"counted {sum(counts.values())} words", file=sys.stderr)
    json.dump({
        "status": "ok",
        "summary": f"{sum(counts.values())} words on {lines} lines",
        "metrics": {
            "words": sum(counts.values()),
            "lines": lines,
            "top_words": [[w, n] for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
        },
        "findings": findings,
        "artifacts": [{"path": artifact, "description": "every word and its count"}],
    }, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
