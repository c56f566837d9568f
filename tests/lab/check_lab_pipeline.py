#!/usr/bin/env python3
"""Smoke proof of the embedded default (issue 7; CTest lab_pipeline_smoke):

1. the untrained lab student, evaluated on the pirate probe (`character eval`,
   no adapter, signal scoring), answers in the generic voice: a low in-character
   rate;
2. `character pipeline pirate` on that lab (no --student, no --teacher-url: the
   lab teacher is served on loopback) runs every stage, writes its export, and
   the in-character rate of RUN/eval/report.json is clearly higher than before.

Usage: check_lab_pipeline.py --character BIN --lab-dir DIR [--keep DIR]
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

# Both evaluations use the same probe settings (the run's config below and the
# flags of step 1): the originals and the "please" variant of every probe prompt,
# one greedy and one sampled answer each, 64 new tokens.
PROBE_YAML = """probe:
  samples: 1
  variants: [please]
  max_new_tokens: 64
base_routing: false
"""
EVAL_FLAGS = ["--samples", "1", "--variants", "please", "--max-new-tokens", "64"]

# The untrained student was pretrained on generic-voice answers only: it may hit
# a pirate signal by chance (the probe's signals include common words), but not
# often. 0.25 leaves room for chance hits without letting a pirate through.
MAX_RATE_BEFORE = 0.05
# After DPO + SFT on the teacher's pirate answers the rate must rise by at least
# this much (absolute): well above what reseeding the probe moves it (a few points
# over ~30 responses), so the rise is training's and not noise's.
MIN_RISE = 0.20


def run(cmd, **kw):
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    seconds = time.monotonic() - start
    return p, seconds


def fail(message, p=None):
    print("FAIL: " + message, file=sys.stderr)
    if p is not None:
        print("--- stdout\n" + p.stdout[-6000:] + "\n--- stderr\n" + p.stderr[-6000:], file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--character", required=True)
    ap.add_argument("--lab-dir", required=True)
    ap.add_argument("--keep", help="write into this directory and keep it (debugging)")
    # The tiny lab student (hidden 64) needs more than the lab's default lr: measured
    # on 2 idle cores (172 probe responses, rate before 0.000): 48 pairs/40 steps at
    # lr 0.002 → 0.000; 96/100 at lr 0.01 → 0.215 (0.02 diverged → 0.000);
    # 128/150 at lr 0.008 with SFT at 0.1 × lr → 0.512 in ~30 s. SFT trains on the
    # student's own reflections, which are not pirate yet, so it runs gently.
    ap.add_argument("--dpo-pairs", type=int, default=int(os.environ.get("LAB_SMOKE_DPO_PAIRS", "128")))
    ap.add_argument("--max-steps", type=int, default=int(os.environ.get("LAB_SMOKE_MAX_STEPS", "150")))
    ap.add_argument("--lr", type=float, default=0.008)
    ap.add_argument("--sft-lr-factor", type=float, default=0.1)
    args = ap.parse_args()
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
        before_dir = tmp / "before"
        p, t_before = run([bin_, "eval", str(lab / "student"), "--persona", "pirate", "--out", str(before_dir),
                           "--quiet", *EVAL_FLAGS], env=env)
        if p.returncode != 0:
            fail("character eval of the untrained student failed", p)
        before = json.loads((before_dir / "report.json").read_text())["probe"]["overall"]
        rate_before = before["rate"]
        print(f"before: {before['in_character']}/{before['responses']} in character ({rate_before:.3f}), "
              f"{t_before:.0f}s")
        if rate_before is None or rate_before > MAX_RATE_BEFORE:
            fail(f"the untrained lab student is already in character at {rate_before} > {MAX_RATE_BEFORE}: "
                 "the lab's generic voice is not generic")

        # 2. The pipeline on the lab, with no student and no teacher.
        config = tmp / "smoke.yaml"
        config.write_text(PROBE_YAML)
        runs = tmp / "runs"
        cmd = [bin_, "pipeline", "pirate", "--lab-dir", str(lab), "--lab-size", "tiny", "--scale", "smoke",
               "--dpo-pairs", str(args.dpo_pairs), "--reflections", "10", "--interactions", "2",
               "--interaction-turns", "2", "--max-steps", str(args.max_steps), "--lr", str(args.lr), "--sft-lr-factor", str(args.sft_lr_factor), "--config", str(config),
               "--runs-dir", str(runs),
               "--export", "peft", "--force-export", "--json"]
        p, t_run = run(cmd, env=env)
        # 0: gates passed; 10: a gate failed (the lab defaults keep the real
        # thresholds), exported anyway by --force-export. Anything else is an error.
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
        after = json.loads((run_dir / "eval" / "report.json").read_text())["probe"]["overall"]
        rate_after = after["rate"]
        print(f"after:  {after['in_character']}/{after['responses']} in character ({rate_after:.3f}), "
              f"pipeline {t_run:.0f}s, exit {p.returncode}")
        for stage in STAGES:
            s = manifest["stages"][stage]
            print(f"  {stage}: {s.get('seconds', 0):.1f}s  {s.get('summary', '')[:150]}")
        if rate_after < rate_before + MIN_RISE:
            fail(f"in-character rate {rate_before:.3f} → {rate_after:.3f}: expected a rise of at least {MIN_RISE}")
        print(f"OK: {rate_before:.3f} → {rate_after:.3f} (+{rate_after - rate_before:.3f} ≥ {MIN_RISE}), "
              f"{t_before + t_run:.0f}s in all")


if __name__ == "__main__":
    main()
