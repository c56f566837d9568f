"""Turns bench/train_bench.py's JSONL into the training table of docs/benchmarks.md.

For every (model, kind) the median over repeats of each side's tokens/s and peak
RSS is kept; ratios are character / peer: tokens/s > 1 means we train faster,
peak memory < 1 means we use less. The table replaces the text between the
train-bench markers. Usage: train_report.py RESULTS.jsonl docs/benchmarks.md
"""
import json
import platform
import statistics
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from report import replace_table

BEGIN, END = "<!-- train-bench:begin -->", "<!-- train-bench:end -->"
PEER = {"sft": "PEFT + transformers", "dpo": "TRL DPOTrainer + PEFT"}


def main() -> None:
    rows = [json.loads(l) for l in Path(sys.argv[1]).read_text().splitlines() if l.strip()]
    doc = Path(sys.argv[2])
    runs = defaultdict(lambda: defaultdict(list))
    for r in rows:
        runs[(r["model"], r["kind"], r["batch"], r["tokens_per_step"], r["steps"], r["warmup"], r["threads"])][
            r["engine"]].append(r)
    lines = [
        BEGIN,
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {platform.machine()}, CPU fp32, `bench/train_bench.py` "
        "(median of repeats; ratio = character / peer).",
        "",
        "| model | kind (peer) | rows × tokens per step | threads | tok/s (ours / peer) | tok/s ratio "
        "| peak RSS MB (ours / peer) | memory ratio | repeats |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, kind, batch, tokens, steps, warmup, threads), e in sorted(runs.items()):
        if "character" not in e or "peer" not in e:
            continue
        med = {side: {m: statistics.median(r[m] for r in e[side]) for m in ("tokens_per_s", "peak_rss_mb")}
               for side in ("character", "peer")}
        c, p = med["character"], med["peer"]
        shape = f"{batch} pairs × 2 rows" if kind == "dpo" else f"{batch} rows"
        lines.append(
            f"| {model} | {kind} ({PEER[kind]}) | {shape}, {tokens} tokens | {threads} "
            f"| {c['tokens_per_s']:.0f} / {p['tokens_per_s']:.0f} | **{c['tokens_per_s'] / p['tokens_per_s']:.2f}×** "
            f"| {c['peak_rss_mb']:.0f} / {p['peak_rss_mb']:.0f} | **{c['peak_rss_mb'] / p['peak_rss_mb']:.2f}×** "
            f"| {min(len(e['character']), len(e['peer']))} |")
    lines.append(END)
    replace_table(doc, BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    main()
