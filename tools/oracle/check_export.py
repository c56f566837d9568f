"""Conformance check for `character export` (run by CTest, not a fixture script).

For a dense model and an MoE model written by `character init-model`, with router
training none / lora / full (and per-expert expert factors), writes an adapter in
our format with seeded non-zero values (lora/adapter_file.h names and shapes; the
C++ side rejects any name or shape it would not produce), takes the engine's
logits with that adapter (`character generate --adapter --dump-logits`), runs
`character export` in all three formats and checks, against those logits:
  peft   — PeftModel.from_pretrained (peft 0.21.2) on the transformers model loads
           every exported tensor (none missing, none unexpected) and gives our
           logits within 1e-4 (fp32);
  tinker — the archive extracts with tinker-cookbook's own extractor, and both of
           tinker-cookbook's converters accept it: weights.build_hf_model's merged
           model and weights.build_lora_adapter's PEFT adapter (loaded by PEFT) give
           our logits within 1e-4; with router training the export refuses without
           --allow-drop-router, and with it gives the logits of the same adapter
           without its router tensors;
  merged — transformers loads the directory with no missing or unexpected tensors;
           the fp32 export gives our logits within 1e-4, the bf16 export (the
           default) within BF16_TOL of them.
Exit status 0 only when everything matches.
"""
import argparse
import os
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from oracle_common import unpacked_tokenizer

IDS = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889]
RANK, ALPHA = 4, 16.0
FP32_TOL = 1e-4
# bf16 weights (8 mantissa bits, relative rounding 2^-9) on a 2-layer model whose
# logits are O(1): measured max abs error ~1e-2; a wrong or missing delta moves
# logits by > 0.3 here (checked below as the adapter's own effect).
BF16_TOL = 5e-2
MIN_EFFECT = 0.1  # the adapter must move the logits at least this much, or the test proves nothing

# (name, arch, train_router, expert_lora, train_unembed)
CASES = [
    ("qwen3 dense", "qwen3", "none", "shared-outer", True),
    ("qwen3_moe router none", "qwen3_moe", "none", "shared-outer", True),
    ("qwen3_moe router lora", "qwen3_moe", "lora", "shared-outer", False),
    ("qwen3_moe router full", "qwen3_moe", "full", "shared-outer", False),
    ("qwen3_moe per-expert router lora", "qwen3_moe", "lora", "per-expert", False),
    ("olmoe router full", "olmoe", "full", "shared-outer", True),
    ("mixtral router lora", "mixtral", "lora", "shared-outer", False),
]


def run(cmd: list, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stderr}")
    return result


def our_adapter(config: dict, train_router: str, expert_lora: str, train_unembed: bool, seed: int) -> dict:
    """Adapter tensors named and shaped as lora/adapters.h attaches them, with
    A ~ U(±1/√in) as PEFT initialises it and B drawn non-zero."""
    g = torch.Generator().manual_seed(seed)
    r = RANK
    d = config["hidden_size"]
    heads, kv, hd = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    experts = config.get("num_experts", config.get("num_local_experts", 0))
    f = config.get("moe_intermediate_size", config["intermediate_size"])
    out = {}

    def a(name, *shape):
        bound = 1 / math.sqrt(shape[-1])
        out[name + ".lora_A"] = (torch.rand(*shape, generator=g) * 2 - 1) * bound

    def b(name, *shape, std=0.05):
        out[name + ".lora_B"] = torch.randn(*shape, generator=g) * std

    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for proj, o, i in [("q_proj", heads * hd, d), ("k_proj", kv * hd, d), ("v_proj", kv * hd, d),
                           ("o_proj", d, heads * hd)]:
            a(p + "self_attn." + proj, r, i)
            b(p + "self_attn." + proj, o, r)
        if not experts:
            fi = config["intermediate_size"]
            for proj, o, i in [("gate_proj", fi, d), ("up_proj", fi, d), ("down_proj", d, fi)]:
                a(p + "mlp." + proj, r, i)
                b(p + "mlp." + proj, o, r)
            continue
        e = p + "mlp.experts."
        if expert_lora == "shared-outer":
            for proj in ("gate_proj", "up_proj"):
                a(e + proj, 1, r, d)
                b(e + proj, experts, f, r)
            a(e + "down_proj", experts, r, f)
            b(e + "down_proj", 1, d, r)
        else:
            a(e + "gate_up_proj", experts, r, d)
            b(e + "gate_up_proj", experts, 2 * f, r)
            a(e + "down_proj", experts, r, f)
            b(e + "down_proj", experts, d, r)
        if train_router == "lora":
            a(p + "mlp.gate", r, d)
            b(p + "mlp.gate", experts, r, std=0.2)  # routing moves visibly (checked)
        elif train_router == "full":
            out[p + "mlp.gate.weight"] = None  # filled from the base weights below
    if train_unembed:
        a("lm_head", r, d)
        b("lm_head", config["vocab_size"], r)
    return out


def write_adapter(dst: Path, model_dir: Path, config: dict, tensors: dict, train_router: str, expert_lora: str,
                  train_unembed: bool) -> None:
    dst.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(dst / "adapter_model.safetensors"))
    meta = {"format": "character-adapter", "version": 1, "base_model": str(model_dir.resolve()),
            "model_type": config["model_type"], "rank": RANK, "alpha": ALPHA, "train_attn": True, "train_mlp": True,
            "train_unembed": train_unembed, "train_router": train_router, "router_lr_multiplier": 1.0,
            "expert_lora": expert_lora, "seed": 0}
    (dst / "adapter_config.json").write_text(json.dumps(meta, indent=2))


def engine_logits(character: str, model_dir: Path, adapter: Path | None) -> torch.Tensor:
    cmd = [character, "generate", model_dir, "--dump-logits", "--prompt-ids", ",".join(map(str, IDS))]
    if adapter is not None:
        cmd += ["--adapter", adapter]
    return torch.tensor(json.loads(run(cmd).stdout)["logits"], dtype=torch.float32)


def hf_logits(model) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([IDS])).logits[0].float()


def load_hf(model_dir: Path, failures: list, label: str, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, output_loading_info=True)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(kind):
            failures.append(f"{label}: transformers reports {kind} {sorted(info[kind])[:5]}")
    return model


def compare(label: str, got: torch.Tensor, want: torch.Tensor, tol: float, failures: list) -> None:
    err = float((got - want).abs().max()) if got.shape == want.shape else math.inf
    print(f"  {label}: max abs error {err:.3g} (tolerance {tol:g})")
    if not err <= tol:
        failures.append(f"{label}: logits differ by {err:.3g} (tolerance {tol:g})")


def load_peft(model_dir: Path, adapter_dir: Path, failures: list, label: str) -> torch.Tensor:
    """PEFT's logits, after checking it loaded every tensor of the file and nothing else."""
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict

    model = PeftModel.from_pretrained(load_hf(model_dir, failures, label), adapter_dir)
    saved = load_file(str(adapter_dir / "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model, save_embedding_layers=False)  # not lm_head's base weight
    if set(saved) != set(loaded):
        failures.append(f"{label}: PEFT holds {sorted(set(loaded) - set(saved))[:4]} beyond the file and lacks "
                        f"{sorted(set(saved) - set(loaded))[:4]}")
    else:
        worst = max(float((saved[k] - loaded[k].float()).abs().max()) for k in saved)
        if worst != 0:
            failures.append(f"{label}: PEFT's loaded tensors differ from the file by {worst}")
    return hf_logits(model)


def check_case(character: str, tmp: Path, tokenizer: Path, case: tuple, failures: list) -> None:
    name, arch, train_router, expert_lora, train_unembed = case
    print(f"{name}:")
    work = tmp / name.replace(" ", "_")
    model_dir = work / "model"
    run([character, "init-model", "--arch", arch, "--preset", "tiny", "--tokenizer", tokenizer, "--seed", "3",
         model_dir])
    config = json.loads((model_dir / "config.json").read_text())
    tensors = our_adapter(config, train_router, expert_lora, train_unembed, seed=11)
    if train_router == "full":
        base = load_file(str(model_dir / "model.safetensors"))
        g = torch.Generator().manual_seed(12)
        for key in [k for k in tensors if k.endswith("mlp.gate.weight")]:
            tensors[key] = base[key] + torch.randn(base[key].shape, generator=g) * 0.2
    adapter = work / "adapter"
    write_adapter(adapter, model_dir, config, tensors, train_router, expert_lora, train_unembed)

    ours = engine_logits(character, model_dir, adapter)
    base_logits = engine_logits(character, model_dir, None)
    effect = float((ours - base_logits).abs().max())
    print(f"  adapter's effect on the logits: {effect:.3g}")
    if effect < MIN_EFFECT:
        failures.append(f"{name}: the adapter moves the logits by only {effect:.3g}; the comparisons prove nothing")

    # peft
    peft_dir = work / "peft"
    run([character, "export", adapter, "--format", "peft", peft_dir])
    compare(f"{name}: peft", load_peft(model_dir, peft_dir, failures, f"{name}: peft"), ours, FP32_TOL, failures)

    # merged, fp32 and bf16
    for dtype, tol in (("float32", FP32_TOL), ("bfloat16", BF16_TOL)):
        merged = work / f"merged-{dtype}"
        run([character, "export", adapter, "--format", "merged", "--dtype", dtype, merged])
        stored = json.loads((merged / "config.json").read_text()).get("dtype")
        if stored != dtype:
            failures.append(f"{name}: merged {dtype} config.json says dtype {stored}")
        if not (merged / "tokenizer.json").exists() and not (merged / "tokenizer.model").exists():
            failures.append(f"{name}: merged {dtype} has no tokenizer files")
        model = load_hf(merged, failures, f"{name}: merged {dtype}")
        compare(f"{name}: merged {dtype}", hf_logits(model), ours, tol, failures)

    check_tinker(character, work, model_dir, adapter, config, tensors, case, ours, failures)


def check_tinker(character, work, model_dir, adapter, config, tensors, case, ours, failures) -> None:
    from peft import PeftModel
    from tinker_cookbook import weights
    from tinker_cookbook.weights._download import _safe_extract_tar

    name, arch, train_router, expert_lora, train_unembed = case
    tar = work / "tinker.tar"
    cmd = [character, "export", adapter, "--format", "tinker", tar]
    if expert_lora == "per-expert" or arch == "mixtral":  # not Tinker's layout / names: refused
        refused = run(cmd, check=False)
        if refused.returncode != 2 or "--format peft or merged" not in refused.stderr:
            failures.append(f"{name}: tinker export was not refused clearly: {refused.stderr.strip()}")
        print(f"  tinker: refused ({refused.stderr.strip().splitlines()[-1][:90]}...)")
        return
    want = ours
    if train_router != "none":
        refused = run(cmd, check=False)
        if refused.returncode != 2 or "--allow-drop-router" not in refused.stderr or "merged" not in refused.stderr:
            failures.append(f"{name}: tinker export with router deltas did not refuse naming the formats "
                            f"that keep them: {refused.stderr.strip()}")
        dropped = run(cmd + ["--allow-drop-router"])
        if "ROUTER DELTAS DROPPED" not in dropped.stderr or "--format merged" not in dropped.stderr:
            failures.append(f"{name}: tinker export dropping router deltas did not warn: {dropped.stderr.strip()}")
        # What the archive should hold: the same adapter without its router tensors.
        no_router = work / "adapter-no-router"
        write_adapter(no_router, model_dir, config, {k: v for k, v in tensors.items() if ".mlp.gate." not in k},
                      "none", expert_lora, train_unembed)
        want = engine_logits(character, model_dir, no_router)
        router_effect = float((want - ours).abs().max())
        print(f"  router deltas' effect on the logits: {router_effect:.3g}")
        if router_effect < MIN_EFFECT:
            failures.append(f"{name}: the router deltas move the logits by only {router_effect:.3g}; dropping "
                            "them is not tested")
    else:
        run(cmd)

    extracted = work / "tinker"
    extracted.mkdir()
    _safe_extract_tar(tar, extracted)
    files = sorted(p.name for p in extracted.iterdir())
    if files != ["adapter_config.json", "adapter_model.safetensors", "checkpoint_complete"]:
        failures.append(f"{name}: tinker archive holds {files}")
    if (extracted / "checkpoint_complete").stat().st_size != 0:
        failures.append(f"{name}: tinker checkpoint_complete is not empty")
    stored = load_file(str(extracted / "adapter_model.safetensors"))
    if any(t.dtype != torch.float32 for t in stored.values()):
        failures.append(f"{name}: tinker tensors are not all fp32")
    if config.get("num_experts"):
        w1a = stored.get("base_model.model.model.layers.0.mlp.experts.w1.lora_A.weight")
        w2b = stored.get("base_model.model.model.layers.0.mlp.experts.w2.lora_B.weight")
        if w1a is None or w1a.shape[0] != 1 or w2b is None or w2b.shape[0] != 1:
            failures.append(f"{name}: tinker experts are not in the shared-outer layout")
    if train_unembed and "base_model.model.model.unembed_tokens.lora_A.weight" not in stored:
        failures.append(f"{name}: tinker archive lacks unembed_tokens")

    merged = work / "tinker-merged"
    weights.build_hf_model(base_model=str(model_dir), adapter_path=str(extracted), output_path=str(merged))
    compare(f"{name}: tinker → build_hf_model", hf_logits(load_hf(merged, failures, f"{name}: build_hf_model")),
            want, FP32_TOL, failures)
    converted = work / "tinker-peft"
    weights.build_lora_adapter(base_model=str(model_dir), adapter_path=str(extracted), output_path=str(converted))
    model = PeftModel.from_pretrained(load_hf(model_dir, failures, f"{name}: build_lora_adapter"), converted)
    compare(f"{name}: tinker → build_lora_adapter → peft", hf_logits(model), want, FP32_TOL, failures)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--character", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    failures = []
    with tempfile.TemporaryDirectory(prefix="character-export-") as tmp:
        tmp = Path(tmp)
        tokenizer = unpacked_tokenizer("llama2", tmp)  # vocab 32000: small embeddings
        only = os.environ.get("CHECK_EXPORT_ARCHS")  # e.g. "mixtral,olmoe" while debugging
        for case in CASES if not only else [c for c in CASES if c[1] in only.split(",")]:
            try:
                check_case(args.character, tmp, tokenizer, case, failures)
            except Exception as e:  # one broken case must not hide the others
                failures.append(f"{case[0]}: {type(e).__name__}: {e}")
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
