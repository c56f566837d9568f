"""Turns bench/train_bench.py's JSONL into the training table of docs/benchmarks.md.

train_bench.py alternates the two sides once per repeat. Per (model, kind) the table gives
each side's median tokens/s and peak RSS, and the median ratio with its range over the
repeats (ratio of the two runs of one repeat; character / peer: tokens/s > 1 means we
train faster, memory < 1 means we use less). Equal work is checked, loudly: both sides
must report the same tokens per step, or the report fails instead of printing a row. (The
first-step losses are recorded but not compared: the two sides draw their batches in
different orders from the same rows.)
Usage: train_report.py RESULTS.jsonl docs/benchmarks.md
"""
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from report import measured_line, read_rows, replace_table

BEGIN, END = "<!-- train-bench:begin -->", "<!-- train-bench:end -->"
PEER = {"sft": "PEFT + transformers", "dpo": "TRL DPOTrainer + PEFT"}


def spread(values: list, fmt: str = "{:.2f}") -> str:
    return f"[{fmt.format(min(values))}–{fmt.format(max(values))}]"


def check_equal_work(key, pairs: list) -> None:
    for p in pairs:
        c, q = p["character"], p["peer"]
        if c["tokens_per_step"] != q["tokens_per_step"]:
            raise SystemExit(f"{key}: unequal work, {c['tokens_per_step']} tokens per step (ours) vs "
                             f"{q['tokens_per_step']} (peer)")


def main() -> None:
    rows = read_rows(Path(sys.argv[1]))
    doc = Path(sys.argv[2])
    runs = defaultdict(lambda: defaultdict(dict))  # key → repeat → engine → row
    for r in rows:
        key = (r["model"], r["kind"], r["batch"], r["tokens_per_step"], r["steps"], r["warmup"], r["threads"])
        runs[key][r["repeat"]][r["engine"]] = r
    lines = [
        BEGIN,
        measured_line(rows, "`bench/train_bench.py` (medians over alternated repeats; ratio = character / peer, "
                            "[lowest–highest repeat])"),
        "",
        "| model | kind (peer) | rows × tokens per step | threads | repeats | tok/s (ours / peer) | tok/s ratio "
        "| peak RSS MB (ours / peer) | memory ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, by_repeat in sorted(runs.items()):
        model, kind, batch, tokens, steps, warmup, threads = key
        pairs = [e for e in by_repeat.values() if "character" in e and "peer" in e]
        if not pairs:
            raise SystemExit(f"{model} {kind}: no repeat with both sides")
        check_equal_work(key, pairs)
        med = lambda side, m: statistics.median(p[side][m] for p in pairs)  # noqa: E731
        speed = [p["character"]["tokens_per_s"] / p["peer"]["tokens_per_s"] for p in pairs]
        memory = [p["character"]["peak_rss_mb"] / p["peer"]["peak_rss_mb"] for p in pairs]
        shape = f"{batch} pairs × 2 rows" if kind == "dpo" else f"{batch} rows"
        lines.append(
            f"| {model} | {kind} ({PEER[kind]}) | {shape}, {tokens} tokens | {threads} | {len(pairs)} "
            f"| {med('character', 'tokens_per_s'):.0f} / {med('peer', 'tokens_per_s'):.0f} "
            f"| **{statistics.median(speed):.2f}×** {spread(speed)} "
            f"| {med('character', 'peak_rss_mb'):.0f} / {med('peer', 'peak_rss_mb'):.0f} "
            f"| **{statistics.median(memory):.2f}×** {spread(memory)} |")
    lines.append(END)
    replace_table(doc, BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    main()
