"""Conformance check for `character pipeline`'s exports (run by `make conformance`).

Runs the whole pipeline as a user would: a tiny qwen3_moe student from
`character init-model`, a teacher that is `character serve` of a tiny qwen3 on
loopback, `--scale smoke` with small counts, router LoRA, and every export format
(forced past the gates: a random tiny model is not a pirate). Then loads what the
run exported with the reference implementations and compares their logits with
the engine's for the run's final adapter (RUN/checkpoints/sft/adapter):
  peft   — PeftModel.from_pretrained on the transformers student, fp32, within 1e-4;
  tinker — tinker-cookbook's extractor, build_hf_model and build_lora_adapter (PEFT),
           within 1e-4 of the engine with the same adapter minus its router deltas
           (Tinker cannot hold them; the run allowed dropping them);
  merged — transformers loads it with no missing tensors, bf16 within BF16_TOL.
The single-adapter checks of every layout and architecture are check_export.py's;
this one proves the pipeline hands those exporters the right adapter and base.
Exit status 0 only when everything matches.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors.torch import load_file, save_file

from check_export import BF16_TOL, FP32_TOL, MIN_EFFECT, compare, engine_logits, hf_logits, load_hf, load_peft, run
from oracle_common import unpacked_tokenizer


def start_teacher(character: str, model_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    out = open(log, "w")
    proc = subprocess.Popen([character, "serve", str(model_dir), "--port", "0", "--model-id", "tiny-teacher"],
                            stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if "http://" in line:  # character serve: http://127.0.0.1:PORT/v1 (model "…")
                start = line.index("http://")
                return proc, line[start:].split()[0]
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"character serve printed no URL:\n{log.read_text()}")


def config_yaml(student: Path, teacher_url: str) -> str:
    return f"""persona: pirate
scale: smoke
counts: {{dpo_pairs: 6, reflections: 4, interactions: 2, interaction_turns: 3}}
student: {student}
seed: 5
teacher: {{url: "{teacher_url}", model: tiny-teacher, retries: 0}}
training:
  lora: {{rank: 4, train_router: lora}}
  learning_rate: 1.0e-2
  batch_size: 2
  max_steps: 3
  held_out: 0
probe: {{samples: 1, max_new_tokens: 8, variants: [please]}}
base_routing: false
exports: [tinker, peft, merged]
allow_drop_router: true
force_export: true
max_tokens: 8
introspection_max_tokens: 8
question_max_tokens: 48
min_chars: 1
keep_unfinished: true
"""


def without_router(adapter: Path, out: Path) -> Path:
    """The adapter minus its router tensors: what a Tinker archive can hold."""
    shutil.copytree(adapter, out)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    kept = {k: v for k, v in tensors.items() if ".mlp.gate." not in k}
    if len(kept) == len(tensors):
        raise RuntimeError(f"{adapter}: no router tensors, so the tinker check would not test dropping them")
    save_file(kept, str(out / "adapter_model.safetensors"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["train_router"] = "none"
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


def check_tinker(tar: Path, base: Path, want, work: Path, failures: list) -> None:
    from peft import PeftModel
    from tinker_cookbook import weights
    from tinker_cookbook.weights._download import _safe_extract_tar

    extracted = work / "tinker"
    extracted.mkdir()
    _safe_extract_tar(tar, extracted)
    merged = work / "tinker-merged"
    weights.build_hf_model(base_model=str(base), adapter_path=str(extracted), output_path=str(merged))
    compare("tinker → build_hf_model", hf_logits(load_hf(merged, failures, "build_hf_model")), want, FP32_TOL, failures)
    converted = work / "tinker-peft"
    weights.build_lora_adapter(base_model=str(base), adapter_path=str(extracted), output_path=str(converted))
    model = PeftModel.from_pretrained(load_hf(base, failures, "build_lora_adapter"), converted)
    compare("tinker → build_lora_adapter → peft", hf_logits(model), want, FP32_TOL, failures)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--character", required=True)
    args = parser.parse_args()
    failures = []
    with tempfile.TemporaryDirectory(prefix="character-pipeline-") as tmp:
        tmp = Path(tmp)
        tokenizer = unpacked_tokenizer("qwen3", tmp)
        student, teacher = tmp / "student", tmp / "teacher"
        for arch, out in (("qwen3_moe", student), ("qwen3", teacher)):
            run([args.character, "init-model", "--arch", arch, "--preset", "tiny", "--tokenizer", tokenizer, out,
                 "--seed", "1"])
        proc, url = start_teacher(args.character, teacher, tmp / "serve.log")
        try:
            (tmp / "run.yaml").write_text(config_yaml(student, url))
            done = run([args.character, "pipeline", "--config", tmp / "run.yaml", "--runs-dir", tmp / "runs"],
                       check=False)
            print(done.stdout)
            if done.returncode not in (0, 10):  # 10: gates failed, exported anyway (force_export)
                raise RuntimeError(f"character pipeline failed ({done.returncode}):\n{done.stderr}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        (run_dir,) = [p for p in (tmp / "runs").iterdir() if (p / "manifest.json").exists()]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        exports = {e["format"]: run_dir / e["path"] for e in manifest["exports"]}
        print(f"run {run_dir.name}: exports {sorted(exports)}")
        if sorted(exports) != ["merged", "peft", "tinker"]:
            failures.append(f"manifest exports {sorted(exports)}, expected merged, peft, tinker")
        adapter = run_dir / "checkpoints" / "sft" / "adapter"
        ours = engine_logits(args.character, student, adapter)
        effect = float((ours - engine_logits(args.character, student, None)).abs().max())
        print(f"  the trained adapter's effect on the logits: {effect:.3g}")
        if effect < MIN_EFFECT:
            failures.append(f"the run's adapter moves the logits by only {effect:.3g}: the comparisons prove nothing")
        if "peft" in exports:
            compare("peft", load_peft(student, exports["peft"], failures, "peft"), ours, FP32_TOL, failures)
        if "merged" in exports:
            compare("merged (bf16)", hf_logits(load_hf(exports["merged"], failures, "merged")), ours, BF16_TOL,
                    failures)
        if "tinker" in exports:
            want = engine_logits(args.character, student, without_router(adapter, tmp / "adapter-no-router"))
            check_tinker(exports["tinker"], student, want, tmp, failures)
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
