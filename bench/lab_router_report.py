#!/usr/bin/env python3
"""The router experiment's table (bench/lab_router.sh, docs/lab.md "The experiment").

Reads every run directory under RUNS named `<train_router>-aug<off|on>-s<seed>` (what
lab_router.sh writes), takes from each RUN/eval/report.json (eval/report_json.cpp):
  probe.overall.rate                    the in-character rate over every probe response
  probe.categories[].{name, rate}       the same per probe category
  probe.paraphrase.flip_rate            share of (original, variant) pairs whose verdict flips
  routing.coverage.probe_coverage       share of the probe's (position, slot) routes on experts
                                        that saw >= N loss tokens in training (null: no coverage)
and from RUN/data/generation.json the augmentation's record (coverage_augment:
target_pairs, covered_before, covered_after), then prints Markdown tables of the
mean ± sample standard deviation over seeds per (train_router, augment), and writes
them to --out when given. A run without a report counts as failed and is listed.

Usage: lab_router_report.py RUNS [--out FILE.md] [--json FILE.json]
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path

RUN_NAME = re.compile(r"^(?P<router>[a-z]+)-aug(?P<augment>off|on)-s(?P<seed>\d+)$")
ROUTER_ORDER = ["none", "lora", "full"]
CATEGORY_ORDER = ["identity", "continuation", "factual", "creative", "instruction", "opinion", "meta", "short"]


def number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_run(run: Path) -> dict:
    """The metrics of one run; raises ValueError naming the file and field when malformed."""
    report_path = run / "eval" / "report.json"
    report = json.loads(report_path.read_text())
    try:
        probe = report["probe"]
        out = {
            "overall": number(probe["overall"]["rate"]),
            "flip_rate": number(probe["paraphrase"]["flip_rate"]),
            "categories": {c["name"]: number(c["rate"]) for c in probe["categories"]},
        }
    except (KeyError, TypeError) as e:
        raise ValueError(f"{report_path}: missing field {e}, expected an eval report (eval/report_json.cpp)") from e
    routing = report.get("routing") or {}
    coverage = routing.get("coverage") if isinstance(routing, dict) else None
    out["probe_coverage"] = number(coverage.get("probe_coverage")) if isinstance(coverage, dict) else None
    generation = run / "data" / "generation.json"
    out["target_pairs"] = out["covered_before"] = out["covered_after"] = None
    if generation.exists():
        record = json.loads(generation.read_text()).get("coverage_augment")
        if isinstance(record, dict):
            for key in ("target_pairs", "covered_before", "covered_after"):
                out[key] = number(record.get(key))
    return out


def mean_sd(values):
    """(mean, sample sd or None, n) over the values that are numbers."""
    xs = [v for v in values if v is not None]
    if not xs:
        return None, None, 0
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return m, sd, len(xs)


def cell(values, percent=True, digits=1):
    m, sd, n = mean_sd(values)
    if m is None:
        return "—"
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    text = f"{m * scale:.{digits}f}{unit}"
    if sd is not None:
        text += f" ± {sd * scale:.{digits}f}"
    return text


def collect(runs_dir: Path):
    groups, failed, ignored = {}, [], []
    for run in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        match = RUN_NAME.match(run.name)
        if not match:
            ignored.append(run.name)
            continue
        key = (match["router"], match["augment"])
        try:
            metrics = read_run(run)
        except FileNotFoundError:
            failed.append(run.name)
            continue
        metrics["seed"] = int(match["seed"])
        groups.setdefault(key, []).append(metrics)
    return groups, failed, ignored


def order(key):
    router, augment = key
    return (ROUTER_ORDER.index(router) if router in ROUTER_ORDER else len(ROUTER_ORDER), router, augment != "off")


def markdown(groups, failed, ignored) -> str:
    keys = sorted(groups, key=order)
    categories = [c for c in CATEGORY_ORDER if any(c in r["categories"] for k in keys for r in groups[k])]
    categories += sorted({c for k in keys for r in groups[k] for c in r["categories"]} - set(categories))
    lines = ["| train_router | augment | seeds | in-character | flip rate | probe coverage | probe pairs covered (random → picked) |",
             "|---|---|---|---|---|---|---|"]
    for key in keys:
        rows = groups[key]
        pairs = "—"
        if key[1] == "on":
            before, after, target = (mean_sd([r[f] for r in rows])[0] for f in ("covered_before", "covered_after", "target_pairs"))
            if target is not None:
                pairs = f"{before:.1f} → {after:.1f} of {target:.1f}"
        lines.append(f"| {key[0]} | {key[1]} | {len(rows)} | {cell([r['overall'] for r in rows])} | "
                     f"{cell([r['flip_rate'] for r in rows])} | {cell([r['probe_coverage'] for r in rows])} | {pairs} |")
    lines += ["", "In-character rate per probe category:", "",
              "| train_router | augment | " + " | ".join(categories) + " |",
              "|---|---|" + "---|" * len(categories)]
    for key in keys:
        rows = groups[key]
        lines.append(f"| {key[0]} | {key[1]} | " +
                     " | ".join(cell([r["categories"].get(c) for r in rows], digits=0) for c in categories) + " |")
    lines += ["", "Mean ± sample standard deviation over seeds (no ± with one seed); — = not measured "
              "(no coverage data, or augmentation off)."]
    if failed:
        lines.append(f"Runs without an eval report (failed or unfinished): {', '.join(failed)}.")
    if ignored:
        lines.append(f"Directories not named <train_router>-aug<off|on>-s<seed>, ignored: {', '.join(ignored)}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="directory of run directories <train_router>-aug<off|on>-s<seed>")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--json", type=Path, help="also write the per-run metrics as JSON here")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        print(f"lab_router_report: {args.runs} is not a directory", file=sys.stderr)
        return 2
    try:
        groups, failed, ignored = collect(args.runs)
    except (ValueError, json.JSONDecodeError) as e:
        print(f"lab_router_report: {e}", file=sys.stderr)
        return 1
    if not groups:
        print(f"lab_router_report: no run under {args.runs} has an eval report", file=sys.stderr)
        return 1
    text = markdown(groups, failed, ignored)
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        per_run = {f"{k[0]}-aug{k[1]}": rows for k, rows in sorted(groups.items(), key=lambda kv: order(kv[0]))}
        args.json.write_text(json.dumps({"runs": per_run, "failed": failed}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
