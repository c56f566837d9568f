"""Training throughput and peak memory of `character train` against its peers.

For each model and kind (sft, dpo) it alternates, `--repeats` times, our side
(the `character train` binary users run) and the peer (bench/train_peer.py:
PEFT + transformers SFT, TRL DPO) on the same fixed-length rows, LoRA on
attention + MLP/experts at the same rank, the same steps, batch and threads,
fp32 on CPU. Prints one JSON line per run:

- tokens_per_s: real tokens per optimizer step (SFT: the rows; DPO: chosen and
  rejected rows) × measured steps / wall time from the end of step `--warmup`
  to the end of the last step (model loading, tokenisation and the first,
  allocation-heavy steps are left out on both sides).
- peak_rss_mb: the child process's ru_maxrss from wait4(), taken the same way
  for both sides (model, data and training included).

Usage: train_bench.py --character BIN --model DIR [--model DIR ...] --work DIR
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

# Words that the Qwen3 tokenizer (GPT-2 style pre-tokenizer) turns into one token
# each with their leading space, so every row has the same token count.
WORDS = ("the of and to in is was for on that with as by at from his her this which or had are but not "
         "be have one all were we when there can an your more about out up some what so into time only").split()


def write_data(work: Path, prompt_words: int, reply_words: int, rows: int) -> dict:
    rng = random.Random(0)
    text = lambda n: " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."  # noqa: E731
    sft, dpo = work / "sft.jsonl", work / "dpo.jsonl"
    with open(sft, "w") as f:
        for _ in range(rows):
            msgs = [{"role": "user", "content": text(prompt_words)}, {"role": "assistant", "content": text(reply_words)}]
            f.write(json.dumps({"messages": msgs}) + "\n")
    with open(dpo, "w") as f:
        for _ in range(rows):
            f.write(json.dumps({"prompt": [{"role": "user", "content": text(prompt_words)}],
                                "chosen": [{"role": "assistant", "content": text(reply_words)}],
                                "rejected": [{"role": "assistant", "content": text(reply_words)}]}) + "\n")
    return {"sft": sft, "dpo": dpo}


def run_measured(cmd: list, env: dict, log: Path) -> tuple:
    """Runs cmd, returns (stdout, peak RSS in MB) from wait4's rusage of that child."""
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} exited {proc.returncode}; see {log}")
    return out, usage.ru_maxrss / 1024.0


def throughput(step_end_s: list, tokens_per_step: list, warmup: int) -> float:
    """Tokens of steps warmup+1.. over the wall time from the end of step `warmup`."""
    if len(step_end_s) <= warmup:
        raise SystemExit(f"{len(step_end_s)} steps timed, expected more than --warmup {warmup}")
    return sum(tokens_per_step[warmup:]) / (step_end_s[-1] - step_end_s[warmup - 1] if warmup else step_end_s[-1])


def ours(a, model: Path, kind: str, data: Path, out: Path, env: dict) -> dict:
    cmd = [a.character, "train", kind, "--model", str(model), "--data", str(data), "--out", str(out),
           "--rank", str(a.rank), "--alpha", str(a.rank), "--max-steps", str(a.steps),
           "--batch-size", str(a.batch if kind == "sft" else a.pairs), "--held-out", "0", "--quiet",
           "--expert-lora", a.expert_lora, "--max-length", "4096", "--max-prompt-length", "2048"]
    _, rss = run_measured(cmd, env, out.with_suffix(".log"))
    steps = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
    steps = [s for s in steps if "step" in s and "tokens" in s]
    tokens = [s["tokens"] for s in steps]
    return {"tokens_per_s": throughput([s["elapsed_s"] for s in steps], tokens, a.warmup),
            "tokens_per_step": tokens[-1], "peak_rss_mb": rss, "first_loss": steps[0]["loss"],
            "final_loss": steps[-1]["loss"]}


def peer(a, model: Path, kind: str, data: Path, out: Path, env: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).with_name("train_peer.py")), kind, str(model), str(data),
           "--out", str(out), "--steps", str(a.steps), "--batch", str(a.batch if kind == "sft" else a.pairs),
           "--rank", str(a.rank), "--alpha", str(a.rank), "--threads", str(a.threads)]
    stdout, rss = run_measured(cmd, env, out.with_suffix(".log"))
    r = json.loads(stdout.strip().splitlines()[-1])
    tokens = [r["tokens_per_step"]] * len(r["step_end_s"])
    return {"tokens_per_s": throughput(r["step_end_s"], tokens, a.warmup), "tokens_per_step": r["tokens_per_step"],
            "peak_rss_mb": rss, "first_loss": r["losses"][0] if r["losses"] else None,
            "final_loss": r["losses"][-1] if r["losses"] else None}


def machine() -> dict:
    """What the results were measured on, recorded in every line."""
    return json.loads(os.environ["BENCH_MACHINE"]) if os.environ.get("BENCH_MACHINE") else {}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--character", required=True)
    p.add_argument("--model", action="append", required=True, help="model directory (repeatable)")
    p.add_argument("--work", required=True, help="scratch directory for data and run outputs")
    p.add_argument("--kinds", default="sft,dpo")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=4, help="SFT rows per step")
    p.add_argument("--pairs", type=int, default=2, help="DPO pairs per step")
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--prompt-words", type=int, default=16)
    p.add_argument("--reply-words", type=int, default=224)
    # PEFT's target_parameters LoRA is one (A, B) per expert: our per-expert layout.
    p.add_argument("--expert-lora", default="per-expert")
    a = p.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    data = write_data(work, a.prompt_words, a.reply_words, rows=32)
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads),
           "TOKENIZERS_PARALLELISM": "false"}
    for model in map(Path, a.model):
        model_type = json.loads((model / "config.json").read_text())["model_type"]
        for kind in a.kinds.split(","):
            for repeat in range(a.repeats):
                # Alternate the sides so that machine noise hits both alike.
                for engine, fn in (("character", ours), ("peer", peer)):
                    out = work / f"{model.name}-{kind}-{engine}-{repeat}-{time.time_ns()}"
                    r = fn(a, model, kind, data[kind], out, env)
                    print(json.dumps({"engine": engine, "kind": kind, "model": model.name, "model_type": model_type,
                                      "repeat": repeat, "threads": a.threads, "steps": a.steps, "warmup": a.warmup,
                                      "batch": a.batch if kind == "sft" else a.pairs, "rank": a.rank, **r,
                                      "machine": machine()}),
                          flush=True)


if __name__ == "__main__":
    main()
