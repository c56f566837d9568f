"""Turns bench/run.sh's JSONL into ratio tables (ours / peer) in docs/benchmarks.md.

For every (model, shape) the best of each engine's rounds is kept, and the ratio
is character / transformers: > 1 means the engine is faster.
"""
import json
import platform
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

BEGIN, END = "<!-- engine-bench:begin -->", "<!-- engine-bench:end -->"


def main() -> None:
    rows = [json.loads(l) for l in Path(sys.argv[1]).read_text().splitlines() if l.strip()]
    doc = Path(sys.argv[2])
    best = defaultdict(dict)
    for r in rows:
        key = (r["model_type"], r.get("preset", "small"), r["batch"], r["prompt_len"], r["decode_steps"], r["threads"])
        kept = best[key].setdefault(r["engine"], {"prefill_tokens_per_s": 0.0, "decode_tokens_per_s": 0.0})
        for metric in kept:
            kept[metric] = max(kept[metric], r[metric])
    lines = [
        BEGIN,
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {platform.machine()}, "
        f"CPU fp32, `bench/run.sh` (best of rounds; ratio = character / transformers).",
        "",
        "| model | batch × prompt | decode steps | threads | prefill tok/s (ours / hf) | prefill ratio | decode tok/s (ours / hf) | decode ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (model, preset, b, t, d, th), e in sorted(best.items()):
        if "character" not in e or "transformers" not in e:
            continue
        c, h = e["character"], e["transformers"]
        lines.append(
            f"| {model} ({preset}) | {b} × {t} | {d} | {th} "
            f"| {c['prefill_tokens_per_s']:.0f} / {h['prefill_tokens_per_s']:.0f} "
            f"| **{c['prefill_tokens_per_s'] / h['prefill_tokens_per_s']:.2f}×** "
            f"| {c['decode_tokens_per_s']:.0f} / {h['decode_tokens_per_s']:.0f} "
            f"| **{c['decode_tokens_per_s'] / h['decode_tokens_per_s']:.2f}×** |")
    lines.append(END)
    replace_table(doc, BEGIN, END, "\n".join(lines))


def replace_table(doc: Path, begin: str, end: str, table: str) -> None:
    """Prints `table` (which starts with `begin` and ends with `end`) and puts it
    in place of the text between those markers in `doc`, or appends it."""
    print(table)
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + table + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + table + "\n"
    doc.write_text(text)


if __name__ == "__main__":
    main()
