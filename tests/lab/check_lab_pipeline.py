#!/usr/bin/env python3
"""Smoke proof of the embedded default (issue 7; CTest lab_pipeline_smoke):

1. the untrained lab student, evaluated on the pirate probe (`character eval`,
   no adapter, signal scoring), answers in the generic voice: a low in-character
   rate;
2. `character pipeline pirate` on that lab (no --student, no --teacher-url: the
   lab teacher is served on loopback) runs every stage and writes its export;
3. training moved the student towards the persona: the DPO adapter (evaluated on
   its own) and the pipeline's final adapter are in character clearly more often
   than the untrained student;
4. the gates that fail are only those a smoke-scale run is expected to fail, each
   named with the reason.

What is asserted must hold on any x86-64 CPU: the lab and the training are tiny,
so their results move with the kernels (ATEN_CPU_CAPABILITY, MKL_CBWR) and the
thread count. The bounds below come from the worst case of a sweep over those
(docs/lab.md, "The smoke test"), with a margin, and they fail when training is
disabled (--lr 0: the rates stay at the untrained student's).

Usage: check_lab_pipeline.py --character BIN --lab-dir DIR [--keep DIR] [--seed N] [--result FILE]
(--result writes the rates and failed gates as JSON, also when a check fails:
bench/lab_smoke_sweep.sh collects them.)
The lab in DIR must be built (`character lab build --size tiny --dir DIR`, the
CTest lab_build_tiny); the pipeline would build it otherwise, which is slower.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ["check", "generate-dpo", "train-dpo", "introspect", "train-sft", "eval", "gate", "export"]

# Every evaluation uses the same probe settings (the run's config below and the
# flags of the separate evals): the originals and the "please" variant of every
# probe prompt, one greedy and one sampled answer each, 64 new tokens.
PROBE_YAML = """probe:
  samples: 1
  variants: [please]
  max_new_tokens: 64
base_routing: false
"""
EVAL_FLAGS = ["--samples", "1", "--variants", "please", "--max-new-tokens", "64"]

# The untrained student was pretrained on generic-voice answers only: it may hit a
# pirate signal by chance, but not often (measured 0/172 on every code path).
MAX_RATE_BEFORE = 0.05
# Rises over the untrained student (absolute), about half the worst case measured
# over code paths, thread counts and seeds (docs/lab.md, "The smoke test"):
MIN_RISE_AFTER_DPO = 0.15   # the DPO adapter alone
MIN_RISE_FINAL = 0.10       # the pipeline's final (DPO + SFT) adapter

# Gates a smoke-scale run on the tiny lab is expected to fail, and why. Any other
# failed gate fails the check.
EXPECTED_GATE_FAILURES = {
    "in_character_rate": "the threshold is 0.80; a smoke run reaches about a third to a half",
    "min_category_rate": "the threshold is 0.60; some category stays low after so little training",
    "paraphrase_flip_rate": "the threshold is 0.15; at mid-range rates sampled verdicts flip often",
}


def run(cmd, **kw):
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    seconds = time.monotonic() - start
    return p, seconds


RESULT = {}  # what --result writes; filled as the steps run


def write_result(path):
    if path:
        path.write_text(json.dumps({k: v for k, v in RESULT.items() if not k.startswith("_")}) + "\n")


def fail(message, p=None):
    RESULT["failure"] = message
    write_result(RESULT.get("_path"))
    print("FAIL: " + message, file=sys.stderr)
    if p is not None:
        print("--- stdout\n" + p.stdout[-6000:] + "\n--- stderr\n" + p.stderr[-6000:], file=sys.stderr)
    sys.exit(1)


def evaluate(bin_, model, adapter, out, env, what):
    """Probe rate of MODEL (+ ADAPTER) with the smoke probe settings."""
    cmd = [bin_, "eval", str(model), "--persona", "pirate", "--out", str(out), "--quiet", *EVAL_FLAGS]
    if adapter:
        cmd += ["--adapter", str(adapter)]
    p, seconds = run(cmd, env=env)
    if p.returncode not in (0, 10):  # 10: its gates failed, which is not this step's question
        fail(f"character eval of {what} exited {p.returncode}", p)
    overall = json.loads((out / "report.json").read_text())["probe"]["overall"]
    print(f"{what}: {overall['in_character']}/{overall['responses']} in character ({overall['rate']:.3f}), "
          f"{seconds:.0f}s")
    return overall["rate"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--character", required=True)
    ap.add_argument("--lab-dir", required=True)
    ap.add_argument("--keep", help="write into this directory and keep it (debugging)")
    ap.add_argument("--seed", type=int, default=0, help="the pipeline's seed")
    ap.add_argument("--result", type=Path, help="write the measured rates here as JSON")
    # The tiny lab student (hidden 64) needs more than the lab's default lr (0.002):
    # 0.008 over 12 epochs of 128 pairs (about 150 DPO steps) takes the DPO adapter to
    # 0.26–0.56 in character (0.02 diverged in an earlier sweep). Epochs, not a fixed
    # step count, so that SFT on the handful of reflections the tiny student writes
    # gets a dozen steps, not 150: those reflections are its garbled answers to a
    # system prompt it never saw in pretraining, and 150 steps on them took the rate
    # back down to 0.02–0.51, by CPU. At 0.02 × lr SFT still runs every step.
    ap.add_argument("--dpo-pairs", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=0.008)
    ap.add_argument("--sft-lr-factor", type=float, default=0.02)
    args = ap.parse_args()
    RESULT.update(_path=args.result, seed=args.seed, epochs=args.epochs, lr=args.lr, sft_lr_factor=args.sft_lr_factor,
                  dpo_pairs=args.dpo_pairs)
    bin_ = os.path.abspath(args.character)
    lab = Path(args.lab_dir).resolve()
    if not (lab / "lab.json").exists():
        fail(f"{lab}/lab.json missing: build the lab first (character lab build --size tiny --dir {lab})")

    with tempfile.TemporaryDirectory(prefix="lab-pipeline-") as tmp_name:
        tmp = Path(args.keep).resolve() if args.keep else Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("CHARACTER_LAB_DIR", None)

        # 1. Before: the bare lab student.
        rate_before = RESULT["before"] = evaluate(bin_, lab / "student", None, tmp / "before", env, "before")
        if rate_before is None or rate_before > MAX_RATE_BEFORE:
            fail(f"the untrained lab student is already in character at {rate_before} > {MAX_RATE_BEFORE}: "
                 "the lab's generic voice is not generic")

        # 2. The pipeline on the lab, with no student and no teacher.
        config = tmp / "smoke.yaml"
        config.write_text(PROBE_YAML)
        cmd = [bin_, "pipeline", "pirate", "--lab-dir", str(lab), "--lab-size", "tiny", "--scale", "smoke",
               "--dpo-pairs", str(args.dpo_pairs), "--reflections", "10", "--interactions", "2",
               "--interaction-turns", "2", "--epochs", str(args.epochs), "--lr", str(args.lr),
               "--sft-lr-factor", str(args.sft_lr_factor), "--seed", str(args.seed), "--config", str(config),
               "--runs-dir", str(tmp / "runs"), "--export", "peft", "--force-export", "--json"]
        p, t_run = run(cmd, env=env)
        # 0: gates passed; 10: a gate failed (the lab keeps the real thresholds) and
        # --force-export exported anyway; which gates may fail is checked in 4.
        if p.returncode not in (0, 10):
            fail(f"character pipeline exited {p.returncode}", p)
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        run_dir = Path(summary["run_dir"])
        manifest = json.loads((run_dir / "manifest.json").read_text())
        for stage in STAGES:
            status = manifest["stages"].get(stage, {}).get("status")
            if status != "done":
                fail(f"stage {stage}: status {status}, expected done", p)
        lab_record = manifest.get("lab") or {}
        if lab_record.get("dir") != str(lab) or lab_record.get("size") != "tiny" or not lab_record.get("lab_json_sha256"):
            fail(f"manifest.json lab: {json.dumps(lab_record)[:400]}, expected this lab with its lab.json hash")
        if manifest["config"]["teacher"]["url"] or manifest["config"]["student"]:
            fail("manifest.json config records a teacher URL or student path; a resume would not use the lab")
        if "lab-teacher" not in p.stderr:
            fail("the stage lines do not show the lab teacher being served", p)
        exports = manifest.get("exports") or []
        if not exports or not all((run_dir / e["path"]).exists() for e in exports):
            fail(f"exports: {exports}, expected the peft export written", p)
        print(f"pipeline: {t_run:.0f}s, exit {p.returncode}")
        for stage in STAGES:
            s = manifest["stages"][stage]
            print(f"  {stage}: {s.get('seconds', 0):.1f}s  {s.get('summary', '')[:150]}")

        # 3. Training moved the student: the DPO adapter alone, then the final one.
        rate_dpo = RESULT["after_dpo"] = evaluate(bin_, lab / "student", run_dir / "checkpoints/dpo/adapter",
                                                  tmp / "after-dpo", env, "after DPO")
        final = json.loads((run_dir / "eval" / "report.json").read_text())["probe"]["overall"]
        rate_final = RESULT["final"] = final["rate"]
        RESULT["responses"] = final["responses"]
        print(f"after the pipeline: {final['in_character']}/{final['responses']} in character ({rate_final:.3f})")
        gates = json.loads((run_dir / "eval" / "gates.json").read_text())
        RESULT["failed_gates"] = [g["name"] for g in gates["gates"] if g["verdict"] == "fail"]
        if rate_dpo < rate_before + MIN_RISE_AFTER_DPO:
            fail(f"after DPO the in-character rate is {rate_dpo:.3f} (untrained {rate_before:.3f}): expected a rise "
                 f"of at least {MIN_RISE_AFTER_DPO}")
        if rate_final < rate_before + MIN_RISE_FINAL:
            fail(f"after the pipeline the in-character rate is {rate_final:.3f} (untrained {rate_before:.3f}): "
                 f"expected a rise of at least {MIN_RISE_FINAL}")

        # 4. Which gates failed, and that each was expected to.
        failed = [g for g in gates["gates"] if g["verdict"] == "fail"]
        if (p.returncode == 10) != bool(failed):
            fail(f"exit {p.returncode} but gates.json lists {len(failed)} failed gates")
        for g in failed:
            why = EXPECTED_GATE_FAILURES.get(g["name"])
            if why is None:
                fail(f"gate {g['name']} failed ({g['value']} {g['comparison']} {g['threshold']}: {g['note']}); "
                     "a smoke run is not expected to fail it")
            print(f"gate {g['name']} failed as expected: {g['value']:.3f} {g['comparison']} {g['threshold']} "
                  f"({why})")
        RESULT["ok"] = True
        write_result(args.result)
        print(f"OK: untrained {rate_before:.3f} → after DPO {rate_dpo:.3f} (≥ +{MIN_RISE_AFTER_DPO}) → after the "
              f"pipeline {rate_final:.3f} (≥ +{MIN_RISE_FINAL})")


if __name__ == "__main__":
    main()
