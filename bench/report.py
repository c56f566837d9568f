"""Turns bench/run.sh's JSONL into the engine table (ours / peer) in docs/benchmarks.md.

bench/run.sh alternates the two engines in rounds (each engine's figure in a round is the
best of its in-process repeats). Per (model, shape) and round, ratio = character /
transformers (> 1: the engine is faster); the table gives each side's median tokens/s and
the median ratio with its range over the rounds, and says whether the target is met:
"met" when even the lowest round's ratio reaches it, "not shown" when the median does but
the spread reaches below it, "not met" when the median is below.
Usage: report.py RESULTS.jsonl docs/benchmarks.md
"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

BEGIN, END = "<!-- engine-bench:begin -->", "<!-- engine-bench:end -->"
# Targets on CPU (docs/benchmarks.md): dense ≥ 1.0×, MoE ≥ 1.5×, for prefill and decode.
MOE = {"qwen3_moe", "mixtral", "olmoe"}


def read_rows(path: Path) -> list:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def measured_line(rows: list, what: str) -> str:
    """'Measured DATE at commit C on CPU (N rounds …)' from the rows' own records."""
    meta = rows[0].get("machine", {})
    return (f"Measured {meta.get('date', '?')} at commit `{meta.get('commit', '?')}` on {meta.get('cpu', '?')} "
            f"({meta.get('cores', '?')} cores), CPU fp32, {what}.")


def ratio_cell(ratios: list, target: float) -> str:
    """'**1.23×** [1.10–1.30], met' from the per-round ratios."""
    med, lo, hi = statistics.median(ratios), min(ratios), max(ratios)
    verdict = "met" if lo >= target else ("not shown" if med >= target else "not met")
    return f"**{med:.2f}×** [{lo:.2f}–{hi:.2f}] (≥ {target:g}×: {verdict})"


def main() -> None:
    rows = read_rows(Path(sys.argv[1]))
    doc = Path(sys.argv[2])
    rounds = defaultdict(lambda: defaultdict(dict))  # key → round → engine → row
    for r in rows:
        key = (r["model_type"], r.get("preset", "small"), r["batch"], r["prompt_len"], r["decode_steps"], r["threads"])
        rounds[key][r["round"]][r["engine"]] = r
    lines = [
        BEGIN,
        measured_line(rows, "`bench/run.sh` (per round: each engine's best of 3 repeats; medians over the "
                            "rounds; ratio = character / transformers, [lowest–highest round])"),
        "",
        "| model | batch × prompt | decode steps | threads | rounds | prefill tok/s (ours / hf) | prefill ratio "
        "| decode tok/s (ours / hf) | decode ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, preset, b, t, d, th), by_round in sorted(rounds.items()):
        pairs = [e for e in by_round.values() if "character" in e and "transformers" in e]
        if not pairs:
            raise SystemExit(f"{model} ({preset}) {b}×{t}: no round with both engines")
        target = 1.5 if model in MOE else 1.0
        cells = []
        for metric in ("prefill_tokens_per_s", "decode_tokens_per_s"):
            ours = statistics.median(p["character"][metric] for p in pairs)
            peer = statistics.median(p["transformers"][metric] for p in pairs)
            ratios = [p["character"][metric] / p["transformers"][metric] for p in pairs]
            cells += [f"{ours:.0f} / {peer:.0f}", ratio_cell(ratios, target)]
        lines.append(f"| {model} ({preset}) | {b} × {t} | {d} | {th} | {len(pairs)} | " + " | ".join(cells) + " |")
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
