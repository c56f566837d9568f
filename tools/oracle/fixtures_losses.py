"""Training losses of lora/losses.h, computed by the reference implementations.

Each case builds a tiny model (fixtures_models.py configs), attaches PEFT LoRA with
fixed A and non-zero B (so the policy differs from its adapters-off reference), and
writes what the references compute:

  <out>/losses/<case>/model/                 the base model (save_pretrained)
  <out>/losses/<case>/adapters.safetensors   adapter values under the C++ names (lora/adapters.h)
  <out>/losses/<case>/meta.json              rank, alpha, switches, expert layout, kind, pairs
  <out>/losses/<case>/reference.safetensors

SFT cases (plain full-logit autograd: [N, V] logits, no chunking):
  input_ids, attention_mask, labels [B, T]  right-padded; labels -100 on prompt and padding
  token_logprobs [B, T]   log_softmax(logits)[t, labels[t+1]], 0 where labels[t+1] = -100 and at T-1
  loss []                 transformers' ForCausalLMLoss: model(..., labels=labels).loss
  grad.<name>             d loss / d adapter tensor

DPO cases (TRL 1.16's DPOTrainer code on one batch, loss_type ["sigmoid", "sft"] with
loss_weights [1, 0.1], beta 0.1: RPO's alpha = 0.1 in TRL 1.16, which has no rpo_alpha):
  input_ids, attention_mask, completion_mask [2B, T]   trl DataCollatorForPreference (pad 0)
  labels [2B, T]          input_ids where completion_mask, else -100 (dpo_trainer.py 1296)
  policy_logps [2B]       the fused-LM-head forward _compute_loss runs, summed (dpo_trainer.py 1297-1304)
  reference_logps [2B]    DPOTrainer.compute_ref_log_probs (adapters disabled)
  loss []                 DPOTrainer._compute_loss, ["sigmoid", "sft"], [1, 0.1]
  dpo_loss [], nll_loss [] _compute_loss with ["sigmoid"] only and ["sft"] only
  rewards_chosen, rewards_rejected, rewards_accuracies, rewards_margins []   TRL's logged metrics
  grad.<name>             d loss / d adapter tensor (backward of _compute_loss)

DPOTrainer is not constructed (its __init__ needs a tokenizer, a dataset and a Trainer);
an instance is made with __new__ and given the attributes __init__ sets that
_compute_loss and compute_ref_log_probs read (dpo_trainer.py 799-806, 905-914, 960-974).
"""
import copy
import re
from collections import defaultdict
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from fixtures_lora import ALPHA, RANK, base_model, kaiming_a, moe_layers_of, small_b
from oracle_common import deterministic, parse_out_dir, write_json_atomic

BETA = 0.1
NLL_WEIGHT = 0.1
PAD = 0


def attach_peft(model, seed, train_unembed, dense_mlp=True, attn=True):
    """PEFT LoRA on attention (+ dense MLP) (+ experts) (+ lm_head), with fixed values.
    Returns the PEFT model and {C++ name: (PEFT A, PEFT B, experts or 0)}."""
    from peft import LoraConfig, get_peft_model

    moe = moe_layers_of(model)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"] if attn else []
    if dense_mlp and not moe:
        targets += ["gate_proj", "up_proj", "down_proj"]
    if train_unembed:
        targets.append("lm_head")
    cfg = dict(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=targets)
    if moe:
        cfg["target_parameters"] = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
    peft_model = get_peft_model(model, LoraConfig(**cfg))

    # Our names ↔ PEFT's modules, as fixtures_lora.py peft_case: expert factors
    # (E·r, in) expert-major / (out, r·E) expert-minor ↔ [E, r, in] / [E, out, r].
    g = torch.Generator().manual_seed(1000 + seed)
    ours = {}
    for name, module in peft_model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        short = name.removeprefix("base_model.model.")
        experts = 0
        if hasattr(module, "parameter_name"):
            short = re.sub(r"(\.base_layer)+$", "", short) + "." + module.parameter_name
            experts = module.num_experts
        ours[short] = (module.lora_A["default"].weight, module.lora_B["default"].weight, experts)
    with torch.no_grad():
        for a, b, _ in ours.values():
            a.copy_(kaiming_a(a.shape, g))
            b.copy_(small_b(b.shape, g) * 5)  # larger than fixtures_lora's: a visible policy/reference gap
    return peft_model, ours


def to_ours(a, b, experts):
    if experts > 1:
        return (a.reshape(experts, RANK, a.shape[-1]), b.reshape(b.shape[0], RANK, experts).permute(2, 0, 1))
    return a, b


def adapter_values(ours):
    out = {}
    for short, (a, b, e) in ours.items():
        va, vb = to_ours(a.detach(), b.detach(), e)
        out[f"{short}.lora_A"], out[f"{short}.lora_B"] = va.clone(), vb.clone()
    return out


def adapter_grads(ours):
    out = {}
    for short, (a, b, e) in ours.items():
        ga, gb = to_ours(a.grad, b.grad, e)
        out[f"grad.{short}.lora_A"], out[f"grad.{short}.lora_B"] = ga.clone(), gb.clone()
    return out


def write_case(out_root, case, model_name, seed, overrides, adapters, ref, meta):
    dst = out_root / case
    base_model(model_name, seed, **overrides).save_pretrained(dst / "model")  # untouched by PEFT
    save_file({k: v.contiguous() for k, v in adapters.items()}, str(dst / "adapters.safetensors"))
    ref = {k: (v.float() if v.is_floating_point() else v).detach().contiguous() for k, v in ref.items()}
    save_file(ref, str(dst / "reference.safetensors"))
    write_json_atomic(dst / "meta.json", dict(rank=RANK, alpha=ALPHA, model=model_name, **meta))


def sft_batch(vocab, seed):
    """3 right-padded rows; labels on the 'assistant' part only."""
    g = torch.Generator().manual_seed(seed)
    lengths, prompts = [12, 9, 7], [5, 3, 4]
    ids = torch.full((3, 12), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for r, (n, p) in enumerate(zip(lengths, prompts)):
        ids[r, :n] = torch.randint(3, vocab, (n,), generator=g)
        mask[r, :n] = 1
        labels[r, p:n] = ids[r, p:n]
    return ids, mask, labels


def sft_case(out_root, case, model_name, seed, train_unembed, attn=True, mlp=True, overrides=None):
    overrides = overrides or {}
    model = base_model(model_name, seed, **overrides)
    peft_model, ours = attach_peft(model, seed, train_unembed, attn=attn, dense_mlp=mlp)
    ids, mask, labels = sft_batch(model.config.vocab_size, seed)
    out = peft_model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()  # transformers loss_utils.py ForCausalLMLoss
    logits = out.logits.detach().float()
    next_labels = labels[:, 1:]
    logprobs = torch.log_softmax(logits[:, :-1], -1).gather(-1, next_labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    token_logprobs = torch.zeros(labels.shape)
    token_logprobs[:, :-1] = logprobs.masked_fill(next_labels == -100, 0.0)
    ref = dict(input_ids=ids, attention_mask=mask, labels=labels, token_logprobs=token_logprobs,
               loss=out.loss.detach(), **adapter_grads(ours))
    moe = bool(moe_layers_of(peft_model.get_base_model()))
    write_case(out_root, case, model_name, seed, overrides, adapter_values(ours), ref,
               dict(kind="sft", train_attn=attn, train_mlp=mlp, train_unembed=train_unembed, train_router="none",
                    expert_lora="per-expert", moe=moe))


def dpo_pairs(vocab, seed):
    """3 pairs of different prompt and completion lengths (padding in both halves)."""
    g = torch.Generator().manual_seed(seed)

    def ids(n):
        return torch.randint(3, vocab, (n,), generator=g).tolist()

    return [dict(prompt_ids=ids(p), chosen_ids=ids(c), rejected_ids=ids(r)) for p, c, r in
            [(5, 4, 6), (3, 7, 2), (6, 3, 3)]]


def trl_trainer(model, loss_types, loss_weights):
    """A DPOTrainer with the attributes its __init__ sets for these options
    (dpo_trainer.py 799-806 loss settings, 905 aux loss, 914 PEFT → no ref_model,
    965-974 metrics); nothing else of it is used."""
    from accelerate import Accelerator
    from trl.trainer.dpo_trainer import DPOTrainer

    t = DPOTrainer.__new__(DPOTrainer)
    t.accelerator = Accelerator(cpu=True)
    t.model = model
    t.ref_model = None
    t.args = SimpleNamespace(gradient_checkpointing_kwargs=None)
    t.beta = BETA
    t.precompute_ref_logps = False
    t.loss_types = list(loss_types)
    t.loss_weights = list(loss_weights)
    t.ld_alpha = None
    t.f_divergence_type = "reverse_kl"
    t.f_alpha_divergence_coef = 1.0
    t.label_smoothing = 0.0
    t.use_weighting = False
    t.aux_loss_enabled = False  # router losses are router_train's, not part of the DPO loss
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    t._total_train_tokens = 0
    t._tp_size = 1
    return t


def dpo_case(out_root, case, model_name, seed, overrides=None):
    from trl.trainer.dpo_trainer import DataCollatorForPreference
    from trl.trainer.utils import add_fused_lm_head

    overrides = overrides or {}
    model = base_model(model_name, seed, **overrides)
    peft_model, ours = attach_peft(model, seed, train_unembed=False)
    # As DPOTrainer.__init__ (dpo_trainer.py 957-960): the fused head on the PEFT base model.
    add_fused_lm_head(peft_model.get_base_model(), outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    peft_model.eval()  # no dropout; TRL's metrics land under "eval"

    pairs = dpo_pairs(model.config.vocab_size, seed)
    inputs = DataCollatorForPreference(pad_token_id=PAD)(pairs)
    labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)

    def loss_of(types, weights):
        t = trl_trainer(peft_model, types, weights)
        return t, t._compute_loss(peft_model, inputs, return_outputs=False)

    with torch.no_grad():
        _, dpo_loss = loss_of(["sigmoid"], [1.0])
        _, nll_loss = loss_of(["sft"], [1.0])
        policy = peft_model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels,
                            fused_lm_head=True, use_cache=False).log_probs.sum(dim=1)
        ref_chosen, ref_rejected = trl_trainer(peft_model, ["sigmoid"], [1.0]).compute_ref_log_probs(peft_model, inputs)
    trainer, loss = loss_of(["sigmoid", "sft"], [1.0, NLL_WEIGHT])
    loss.backward()
    metrics = trainer._metrics["eval"]

    ref = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
               completion_mask=inputs["completion_mask"], labels=labels, policy_logps=policy,
               reference_logps=torch.cat([ref_chosen, ref_rejected]), loss=loss.detach(), dpo_loss=dpo_loss,
               nll_loss=nll_loss, **adapter_grads(ours))
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        ref[key.replace("/", "_")] = torch.tensor(metrics[key][0])
    moe = bool(moe_layers_of(peft_model.get_base_model()))
    write_case(out_root, case, model_name, seed, overrides, adapter_values(ours), ref,
               dict(kind="dpo", train_attn=True, train_mlp=True, train_unembed=False, train_router="none",
                    expert_lora="per-expert", moe=moe, beta=BETA, nll_coef=NLL_WEIGHT, pad_id=PAD, pairs=pairs))


def main():
    out_root = parse_out_dir() / "losses"
    deterministic(0)
    moe_all = dict(mlp_only_layers=[])  # PEFT on MoE models targets no dense MLP (fixtures_lora.py peft_case)
    sft_case(out_root, "sft_llama_unembed", "llama_gqa", seed=11, train_unembed=True)
    sft_case(out_root, "sft_qwen3_moe", "qwen3_moe_norm", seed=12, train_unembed=False, overrides=moe_all)
    sft_case(out_root, "sft_qwen3_tied_unembed_only", "qwen3_tied", seed=13, train_unembed=True, attn=False,
             mlp=False)
    dpo_case(out_root, "dpo_llama", "llama_gqa", seed=14)
    dpo_case(out_root, "dpo_qwen3_moe", "qwen3_moe_norm", seed=15, overrides=moe_all)


if __name__ == "__main__":
    main()
