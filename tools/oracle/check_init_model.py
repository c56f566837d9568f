"""Conformance check for `character init-model` (run by CTest, not a fixture script).

For each architecture: runs `character init-model` into a temp dir, loads the result
with transformers' AutoModelForCausalLM (it must load with no missing, unexpected or
mismatched tensors), checks the initialisation is transformers' _init_weights
(normal(0, initializer_range) matrices, ones for norms) and deterministic per seed,
compares transformers' logits on fixed ids with the logits the engine prints
(`character generate --dump-logits`), and compares `character generate --raw
--json --temperature 0` with transformers' greedy generate on the same prompt, and
seeded sampling (`--seed S --temperature ... --top-k/--top-p/--repetition-penalty`)
with `torch.manual_seed(S); generate(do_sample=True, ...)`: the engine draws from
the same CPU generator state, so the sampled ids are equal token for token.
Exit status 0 only when everything matches.
"""
import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from oracle_common import unpacked_tokenizer

ARCHS = ["llama", "qwen3", "qwen3_moe", "mixtral", "olmoe"]
IDS = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889]
ATOL = 1e-4


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def init_model(character: str, arch: str, tokenizer: Path, out: Path, seed: int, preset: str = "tiny") -> None:
    subprocess.run([character, "init-model", "--arch", arch, "--preset", preset, "--tokenizer", str(tokenizer),
                    "--seed", str(seed), str(out)], check=True, capture_output=True, text=True)


def engine_logits(character: str, model_dir: Path, ids: list = IDS) -> torch.Tensor:
    run = subprocess.run([character, "generate", str(model_dir), "--dump-logits", "--prompt-ids",
                          ",".join(map(str, ids))], check=True, capture_output=True, text=True)
    return torch.tensor(json.loads(run.stdout)["logits"], dtype=torch.float32)


PROMPT = "Once upon a time, in a quiet harbour town,"
NEW_TOKENS = 10


# (seed, transformers generate kwargs, the same settings as `character generate` flags)
SAMPLING = [
    (5, dict(temperature=0.9, top_k=0), ["--temperature", "0.9", "--top-k", "0"]),
    (7, dict(temperature=0.7, top_k=50, top_p=0.9, repetition_penalty=1.3),
     ["--temperature", "0.7", "--top-k", "50", "--top-p", "0.9", "--repetition-penalty", "1.3"]),
]


def engine_ids(character: str, model_dir: Path, flags: list) -> list:
    run = subprocess.run([character, "generate", str(model_dir), "--raw", "--prompt", PROMPT, "--json",
                          "--max-new-tokens", str(NEW_TOKENS)] + flags,
                         check=True, capture_output=True, text=True)
    return json.loads(run.stdout)["ids"]


def check_init(model, failures: list, arch: str) -> None:
    std = model.config.initializer_range
    for name, p in model.named_parameters():
        p = p.detach()
        if name.endswith("norm.weight"):
            if not torch.all(p == 1):
                failures.append(f"{arch}: {name} is not all ones")
        elif p.numel() >= 2048:
            s = float(p.std())
            if abs(float(p.mean())) > 0.1 * std or abs(s - std) > 0.05 * std:
                failures.append(f"{arch}: {name} mean {float(p.mean()):.5f} std {s:.5f}, expected normal(0, {std})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--character", required=True)
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small"])
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    failures = []
    with tempfile.TemporaryDirectory(prefix="character-init-model-") as tmp:
        tmp = Path(tmp)
        tokenizer = unpacked_tokenizer("llama2", tmp)  # vocab 32000: small embeddings
        for arch in ARCHS:
            out = tmp / arch
            init_model(args.character, arch, tokenizer, out, seed=3, preset=args.preset)
            model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
            model.eval()
            for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
                if info.get(kind):
                    failures.append(f"{arch}: transformers reports {kind} {sorted(info[kind])[:5]}")
            if type(model).__name__.lower().replace("forcausallm", "") != arch.replace("_", ""):
                failures.append(f"{arch}: transformers built {type(model).__name__}")
            check_init(model, failures, arch)
            with torch.no_grad():
                expected = model(torch.tensor([IDS])).logits[0].float()  # [T, V]
            ours = engine_logits(args.character, out)
            err = float((ours - expected).abs().max())
            scale = float(expected.abs().max())
            print(f"{arch}: logits [{ours.shape[0]}, {ours.shape[1]}] max abs error {err:.3g} (max |logit| {scale:.3g})")
            if ours.shape != expected.shape or not err <= ATOL:
                failures.append(f"{arch}: logits differ from transformers by {err:.3g} (tolerance {ATOL})")

            from transformers import AutoTokenizer

            prompt = AutoTokenizer.from_pretrained(out)(PROMPT, return_tensors="pt")
            runs = [("greedy", None, dict(do_sample=False), ["--temperature", "0"])]
            runs += [(f"sample seed {seed}", seed, dict(do_sample=True, **kw), flags) for seed, kw, flags in SAMPLING]
            for label, seed, kw, flags in runs:
                if seed is not None:
                    torch.manual_seed(seed)
                    flags = flags + ["--seed", str(seed)]
                with torch.no_grad():
                    sequences = model.generate(**prompt, max_new_tokens=NEW_TOKENS, pad_token_id=2, **kw)
                expected_ids = sequences[0, prompt["input_ids"].shape[1]:].tolist()
                ours_ids = engine_ids(args.character, out, flags)
                print(f"{arch}: {label}: {len(ours_ids)} tokens, "
                      f"{'equal to' if ours_ids == expected_ids else 'DIFFERENT from'} transformers")
                if ours_ids != expected_ids:
                    failures.append(f"{arch}: {label}: ids {ours_ids} != transformers {expected_ids}")

            # Same seed → same bytes; another seed → other weights.
            again, other = tmp / f"{arch}-again", tmp / f"{arch}-other"
            init_model(args.character, arch, tokenizer, again, seed=3)
            init_model(args.character, arch, tokenizer, other, seed=4)
            if sha256(out / "model.safetensors") != sha256(again / "model.safetensors"):
                failures.append(f"{arch}: the same seed wrote different weights")
            if sha256(out / "model.safetensors") == sha256(other / "model.safetensors"):
                failures.append(f"{arch}: different seeds wrote the same weights")
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
