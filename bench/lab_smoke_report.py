"""The lab smoke test's spread over CPU code paths, thread counts and seeds, as a table.

Reads the JSONL of bench/lab_smoke_sweep.sh (one line per run of
tests/lab/check_lab_pipeline.py) and writes, between the lab-smoke markers of the
document given (docs/lab.md), one row per (code path, threads) with the rates of each
seed, and a last row with the lowest rates and the test's bounds.
Usage: lab_smoke_report.py RESULTS.jsonl [DOC.md]
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

BEGIN, END = "<!-- lab-smoke:begin -->", "<!-- lab-smoke:end -->"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))
from check_lab_pipeline import MAX_RATE_BEFORE, MIN_RISE_AFTER_DPO, MIN_RISE_FINAL  # noqa: E402
from report import replace_table  # noqa: E402


def main() -> None:
    rows = [json.loads(l) for l in Path(sys.argv[1]).read_text().splitlines() if l.strip()]
    if not rows:
        raise SystemExit(f"{sys.argv[1]}: no runs")
    groups = defaultdict(list)
    for r in rows:
        groups[(r["path"], r["threads"])].append(r)
    first = rows[0]
    lines = [
        BEGIN,
        f"{len(rows)} runs of `tests/lab/check_lab_pipeline.py` (epochs {first['epochs']}, lr {first['lr']}, "
        f"SFT at {first['sft_lr_factor']} × lr, {first['dpo_pairs']} DPO pairs) by `bench/lab_smoke_sweep.sh` "
        f"at commit `{first['commit']}` on {first['cpu']}; each lab built on its own code path. Cells: in-character "
        f"rate untrained → after DPO → after the pipeline, per seed.",
        "",
        "| code path | threads | seeds | " + " | ".join(f"seed {s}" for s in sorted({r["seed"] for r in rows})) +
        " | all checks pass |",
        "|---|---|---|" + "---|" * len({r["seed"] for r in rows}) + "---|",
    ]
    seeds = sorted({r["seed"] for r in rows})
    for (path, threads), runs in sorted(groups.items()):
        by_seed = {r["seed"]: r for r in runs}
        cells = []
        for s in seeds:
            r = by_seed.get(s)
            cells.append("—" if r is None else
                         f"{r.get('before', float('nan')):.2f} → {r.get('after_dpo', float('nan')):.2f} → "
                         f"{r.get('final', float('nan')):.2f}")
        ok = sum(1 for r in runs if r.get("ok"))
        label = "MKL_CBWR=COMPATIBLE" if path == "cbwr" else f"ATEN_CPU_CAPABILITY={path}"
        lines.append(f"| {label} | {threads} | {len(runs)} | " + " | ".join(cells) + f" | {ok} of {len(runs)} |")
    worst = lambda key, f: f(r.get(key, float("nan")) for r in rows)  # noqa: E731
    lines += [
        "",
        f"Worst case over the {len(rows)} runs: untrained at most {worst('before', max):.3f} (bound "
        f"{MAX_RATE_BEFORE}); after DPO at least {worst('after_dpo', min):.3f} (bound: untrained + "
        f"{MIN_RISE_AFTER_DPO}); after the pipeline at least {worst('final', min):.3f} (bound: untrained + "
        f"{MIN_RISE_FINAL}). Failed gates seen: "
        + ", ".join(sorted({g for r in rows for g in r.get("failed_gates", [])})) + ".",
        END,
    ]
    table = "\n".join(lines)
    if len(sys.argv) > 2:
        replace_table(Path(sys.argv[2]), BEGIN, END, table)
    else:
        print(table)


if __name__ == "__main__":
    main()
