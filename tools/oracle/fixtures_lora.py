"""LoRA forward and gradients of one SFT step, computed by PEFT and autograd.

Each case builds a tiny model (the configs of fixtures_models.py), attaches LoRA
adapters with given values, runs one batch with a loss mask on "assistant"
positions, takes the masked mean cross-entropy and back-propagates:

  <out>/lora/<case>/model/                 the base model (save_pretrained)
  <out>/lora/<case>/adapters.safetensors   adapter values under the C++ names
                                           (lora/adapters.h); A random, B small random
                                           so that gradients reach A as well
  <out>/lora/<case>/reference.safetensors
      input_ids [B, T], loss_mask [B, T]   labels are input_ids shifted by one
      base_logits [B, T, V]                adapters off
      logits [B, T, V]                     adapters on
      loss []                              masked mean cross-entropy
      grad.<name>                          d loss / d adapter tensor, C++ names
      router_logits_<l> [N, E]             raw router logits with adapters on (MoE)
  <out>/lora/<case>/meta.json              rank, alpha, switches, expert layout

Cases:
  llama_peft          attn + dense MLP + lm_head through PEFT (target_modules).
  qwen3_moe_peft      attn + dense MLP + routed experts through PEFT, experts via
                      target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
                      (PEFT builds per-expert A (E·r, in) expert-major and B
                      (out, r·E) expert-minor; mapped here to [E, r, in] / [E, out, r]).
  qwen3_moe_shared_outer_router_lora
                      Tinker's shared-outer expert factors and a router LoRA. PEFT
                      has neither, so the reference is W' = W + (alpha/r)·B·A
                      written straight from the formula as torch parametrizations.
  qwen3_tied_peft     lm_head LoRA on tied embeddings (PEFT wraps lm_head; the
                      embedding input side stays unadapted).
  olmoe_peft, mixtral_shared_outer_router_lora
                      the same on the other MoE architectures (olmoe with lm_head).
  qwen3_moe_router_full
                      only the router weights train (plain autograd on mlp.gate.weight).
"""
import copy
import re

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.nn.utils import parametrize

from fixtures_models import configs, init_weights
from oracle_common import deterministic, parse_out_dir, write_json_atomic

RANK = 4
ALPHA = 32.0  # Tinker's default; scale alpha/r = 8
SCALE = ALPHA / RANK
B_STD = 0.02


def base_model(name, seed, **overrides):
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(dict((n, c) for n, c, _, _ in configs())[name])
    for key, value in overrides.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").float().eval()
    init_weights(model, seed=100 + seed)
    return model


def batch(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (2, 10), generator=g)
    # "assistant" tokens: the second half of row 0, the last three of row 1.
    mask = torch.zeros_like(ids)
    mask[0, 5:] = 1
    mask[1, 7:] = 1
    return ids, mask


def masked_ce(logits, ids, mask):
    """Mean next-token cross-entropy over the positions whose label is masked in."""
    labels = ids[:, 1:]
    weights = mask[:, 1:].float()
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return (ce * weights.reshape(-1)).sum() / weights.sum()


def kaiming_a(shape, g):
    bound = 1.0 / shape[-1] ** 0.5  # kaiming_uniform_(a=√5) on [r, in]
    return (torch.rand(shape, generator=g) * 2 - 1) * bound


def small_b(shape, g):
    return torch.randn(shape, generator=g) * B_STD


def router_logit_hooks(model, moe_layers, store):
    hooks = []
    for l in moe_layers:
        gate = model.model.layers[l].mlp.gate

        def hook(module, args, output, l=l):
            x = args[0].reshape(-1, module.weight.shape[1])
            store[l] = F.linear(x, module.weight).float().detach()

        hooks.append(gate.register_forward_hook(hook))
    return hooks


def moe_layers_of(model):
    return [l for l, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "experts")]


def write_case(out_root, case, model, adapters, ref, meta):
    dst = out_root / case
    model.save_pretrained(dst / "model")
    save_file({k: v.detach().contiguous() for k, v in adapters.items()}, str(dst / "adapters.safetensors"))
    ref = {k: (v.float() if v.is_floating_point() else v).detach().contiguous() for k, v in ref.items()}
    save_file(ref, str(dst / "reference.safetensors"))
    write_json_atomic(dst / "meta.json", dict(rank=RANK, alpha=ALPHA, **meta))


def peft_case(out_root, case, model_name, seed, train_unembed, **overrides):
    """attn + MLP (+ experts by target_parameters) (+ lm_head) through PEFT.

    On MoE models PEFT 0.21 rewrites target_modules gate_proj/up_proj/down_proj
    into target_parameters on the fused experts (transformers_weight_conversion.py
    _convert_peft_config_moe) and then no longer targets dense MLP modules, so
    MoE cases here have no dense layers; the formula cases cover mixed models."""
    from peft import LoraConfig, get_peft_model

    model = base_model(model_name, seed, **overrides)
    ids, mask = batch(model.config.vocab_size, seed)
    with torch.no_grad():
        base_logits = model(input_ids=ids).logits.float()
    moe = moe_layers_of(model)
    base_save = base_model(model_name, seed, **overrides)  # an untouched copy to save (PEFT wraps modules in place)

    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    if not moe:
        targets += ["gate_proj", "up_proj", "down_proj"]
    if train_unembed:
        targets.append("lm_head")
    cfg = dict(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=targets)
    if moe:
        cfg["target_parameters"] = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
    peft_model = get_peft_model(model, LoraConfig(**cfg))

    # Our names ↔ PEFT's modules; expert factors reshaped to [E, r, in] / [E, out, r].
    g = torch.Generator().manual_seed(1000 + seed)
    ours = {}  # C++ name → (PEFT A param, PEFT B param, expert count or 0)
    for name, module in peft_model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        short = name.removeprefix("base_model.model.")
        num_experts = 0
        if hasattr(module, "parameter_name"):
            # nested ParamWrappers: experts, experts.base_layer, … → experts.<parameter>
            short = re.sub(r"(\.base_layer)+$", "", short) + "." + module.parameter_name
            num_experts = module.num_experts
        ours[short] = (module.lora_A["default"].weight, module.lora_B["default"].weight, num_experts)
    adapters = {}
    with torch.no_grad():
        for short, (a, b, e) in ours.items():
            a.copy_(kaiming_a(a.shape, g))
            b.copy_(small_b(b.shape, g))
            if e > 1:
                adapters[f"{short}.lora_A"] = a.reshape(e, RANK, a.shape[-1]).clone()
                adapters[f"{short}.lora_B"] = b.reshape(b.shape[0], RANK, e).permute(2, 0, 1).clone()
            else:
                adapters[f"{short}.lora_A"] = a.clone()
                adapters[f"{short}.lora_B"] = b.clone()

    router = {}
    hooks = router_logit_hooks(peft_model.base_model.model, moe, router)
    logits = peft_model(input_ids=ids).logits.float()
    for h in hooks:
        h.remove()
    loss = masked_ce(logits, ids, mask)
    loss.backward()
    ref = dict(input_ids=ids, loss_mask=mask, base_logits=base_logits, logits=logits.detach(), loss=loss.detach())
    for short, (a, b, e) in ours.items():
        if e > 1:
            ref[f"grad.{short}.lora_A"] = a.grad.reshape(e, RANK, a.shape[-1])
            ref[f"grad.{short}.lora_B"] = b.grad.reshape(b.shape[0], RANK, e).permute(2, 0, 1)
        else:
            ref[f"grad.{short}.lora_A"] = a.grad
            ref[f"grad.{short}.lora_B"] = b.grad
    for l, v in router.items():
        ref[f"router_logits_{l}"] = v
    write_case(out_root, case, base_save, adapters, ref,
               dict(model=model_name, train_attn=True, train_mlp=True, train_unembed=train_unembed,
                    train_router="none", expert_lora="per-expert", reference="peft"))


class PlusLowRank(torch.nn.Module):
    """Parametrization W ↦ W + scale · Σ_parts B·A (the LoRA formula), parts
    concatenated along the output rows (gate rows first for gate_up_proj)."""

    def __init__(self, parts):
        super().__init__()
        self.parts = parts  # list of (A, B) tensors; A [.., r, in], B [.., out, r]

    def forward(self, w):
        deltas = [torch.matmul(b, a) for a, b in self.parts]
        delta = deltas[0] if len(deltas) == 1 else torch.cat(deltas, dim=-2)
        return w + SCALE * delta.expand_as(w)


class FullReplace(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, w):
        return self.weight


def formula_case(out_root, case, model_name, seed, train_attn, train_mlp, train_router):
    """Shared-outer experts and router training, from W' = W + (alpha/r)·B·A."""
    model = base_model(model_name, seed)
    ids, mask = batch(model.config.vocab_size, seed)
    with torch.no_grad():
        base_logits = model(input_ids=ids).logits.float()
    for p in model.parameters():
        p.requires_grad_(False)
    moe = moe_layers_of(model)
    g = torch.Generator().manual_seed(1000 + seed)
    adapters = {}

    def factors(name, a_shape, b_shape):
        a = kaiming_a(a_shape, g).requires_grad_(True)
        b = small_b(b_shape, g).requires_grad_(True)
        adapters[f"{name}.lora_A"], adapters[f"{name}.lora_B"] = a, b
        return a, b

    for l, layer in enumerate(model.model.layers):
        prefix = f"model.layers.{l}."
        linears = []
        if train_attn:
            linears += [(layer.self_attn, f"self_attn.{p}") for p in ("q_proj", "k_proj", "v_proj", "o_proj")]
        if train_mlp and not hasattr(layer.mlp, "experts"):
            linears += [(layer.mlp, f"mlp.{p}") for p in ("gate_proj", "up_proj", "down_proj")]
        for parent, path in linears:
            lin = getattr(parent, path.split(".")[1])
            a, b = factors(prefix + path, (RANK, lin.in_features), (lin.out_features, RANK))
            parametrize.register_parametrization(lin, "weight", PlusLowRank([(a, b)]))
        if hasattr(layer.mlp, "experts"):
            ex = layer.mlp.experts
            e, f2, d = ex.gate_up_proj.shape
            f = f2 // 2
            if train_mlp:
                ga = factors(prefix + "mlp.experts.gate_proj", (1, RANK, d), (e, f, RANK))
                ua = factors(prefix + "mlp.experts.up_proj", (1, RANK, d), (e, f, RANK))
                da = factors(prefix + "mlp.experts.down_proj", (e, RANK, f), (1, d, RANK))
                parametrize.register_parametrization(ex, "gate_up_proj", PlusLowRank([ga, ua]))
                parametrize.register_parametrization(ex, "down_proj", PlusLowRank([da]))
            gate = layer.mlp.gate
            if train_router == "lora":
                ra = factors(prefix + "mlp.gate", (RANK, d), (e, RANK))
                parametrize.register_parametrization(gate, "weight", PlusLowRank([ra]))
            elif train_router == "full":
                w = (gate.weight.detach().clone() + small_b(gate.weight.shape, g)).requires_grad_(True)
                adapters[prefix + "mlp.gate.weight"] = w
                parametrize.register_parametrization(gate, "weight", FullReplace(w))

    router = {}
    hooks = router_logit_hooks(model, moe, router)
    logits = model(input_ids=ids).logits.float()
    for h in hooks:
        h.remove()
    loss = masked_ce(logits, ids, mask)
    loss.backward()
    ref = dict(input_ids=ids, loss_mask=mask, base_logits=base_logits, logits=logits.detach(), loss=loss.detach())
    for name, t in adapters.items():
        ref[f"grad.{name}"] = t.grad
    for l, v in router.items():
        ref[f"router_logits_{l}"] = v
    parametrize_free = base_model(model_name, seed)
    write_case(out_root, case, parametrize_free, {k: v.detach() for k, v in adapters.items()}, ref,
               dict(model=model_name, train_attn=train_attn, train_mlp=train_mlp, train_unembed=False,
                    train_router=train_router, expert_lora="shared-outer", reference="formula"))


def main():
    out_root = parse_out_dir() / "lora"
    deterministic(0)
    peft_case(out_root, "llama_peft", "llama_gqa", seed=0, train_unembed=True)
    peft_case(out_root, "qwen3_moe_peft", "qwen3_moe_norm", seed=3, train_unembed=False, mlp_only_layers=[])
    formula_case(out_root, "qwen3_moe_shared_outer_router_lora", "qwen3_moe_norm", seed=3, train_attn=True,
                 train_mlp=True, train_router="lora")
    peft_case(out_root, "qwen3_tied_peft", "qwen3_tied", seed=2, train_unembed=True)
    peft_case(out_root, "olmoe_peft", "olmoe", seed=7, train_unembed=True)
    formula_case(out_root, "mixtral_shared_outer_router_lora", "mixtral", seed=5, train_attn=True, train_mlp=True,
                 train_router="lora")
    formula_case(out_root, "qwen3_moe_router_full", "qwen3_moe_norm", seed=3, train_attn=False, train_mlp=False,
                 train_router="full")


if __name__ == "__main__":
    main()
