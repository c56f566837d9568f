"""Router-training losses and coverage counts, computed by transformers 5.5.4.

Each case builds a tiny MoE model (the configs of fixtures_models.py) and runs
one right-padded batch with labels (-100 on the "prompt" and the padding) with
output_router_logits=True, as a training step would:

  <out>/router_train/<case>/model/                 the model (save_pretrained)
  <out>/router_train/<case>/reference.safetensors
      input_ids [B, T], attention_mask [B, T], labels [B, T] (-100 = no loss)
      position_ids [B, T]                cumsum(attention_mask) - 1, as the engine derives them
      aux_loss []                        MoeCausalLMOutputWithPast.aux_loss (load_balancing_loss_func
                                         on what the model records as router_logits, with the mask)
      aux_loss_no_mask []                the same function without attention_mask
      loss []                            the model's loss: cross-entropy + router_aux_loss_coef·aux_loss
      router_logits_<l> [N, E]           raw gate logits x·Wᵀ of MoE layer l (before softmax)
      router_probs_<l> [N, E]            what transformers records as router_logits (softmax)
      topk_ids_<l> [N, K]                the experts transformers routed each position to
      grad_aux.router_logits_<l> [N, E]  d aux_loss / d raw logits (the function applied to
                                         softmax(raw), raw a leaf; its value checked = aux_loss)
      grad_aux.<l> [E, D]                d aux_loss / d model.layers.<l>.mlp.gate.weight
      z_loss []                          router z-loss from the direct formula below
      grad_z.<l> [E, D]                  d z_loss / d model.layers.<l>.mlp.gate.weight
      coverage_loss_tokens [L_moe, E]    per MoE layer and expert: (position, top-k slot) pairs
                                         routed there whose position bears loss
      coverage_all_tokens [L_moe, E]     the same over every real (attention_mask = 1) position
  <out>/router_train/<case>/meta.json    moe_layers, num_experts, top_k, router_aux_loss_coef

Router z-loss (ST-MoE, Zoph et al. 2022, eq. 5): mean over the real positions of
every MoE layer (layers concatenated, as load_balancing_loss_func does) of
logsumexp(raw logits)².
A position t bears loss when it predicts a trained token: labels[t+1] != -100
(transformers' ForCausalLMLoss shifts the labels the same way).
"""
import copy

import torch
from safetensors.torch import save_file

from fixtures_models import configs, init_weights, positions
from oracle_common import deterministic, parse_out_dir, write_json_atomic

CASES = [
    # case, fixtures_models config (qwen3_moe_norm has a dense layer: mlp_only_layers=[1])
    ("qwen3_moe", "qwen3_moe_norm"),
    ("mixtral", "mixtral"),
    ("olmoe", "olmoe"),
]
LENGTHS = [10, 7, 4]  # right padding to T = 10
PROMPT = [4, 2, 1]    # label -100 on the first PROMPT[b] tokens of row b
PAD = 0


def build_model(config_name, seed):
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(dict((n, c) for n, c, _, _ in configs())[config_name])
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").float().eval()
    init_weights(model, seed=200 + seed)
    return model


def batch(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    t = max(LENGTHS)
    ids = torch.full((len(LENGTHS), t), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for b, (n, p) in enumerate(zip(LENGTHS, PROMPT)):
        ids[b, :n] = torch.randint(3, vocab, (n,), generator=g)
        mask[b, :n] = 1
        labels[b, p:n] = ids[b, p:n]
    return ids, mask, labels


def gate_hooks(model, moe_layers, store):
    """Raw logits (x·Wᵀ, recomputed from the gate's input) and the gate's outputs."""
    hooks = []
    for l in moe_layers:
        gate = model.model.layers[l].mlp.gate

        def hook(module, args, output, l=l):
            x = args[0].reshape(-1, module.weight.shape[1])
            store[l] = dict(raw=torch.nn.functional.linear(x, module.weight).float(),  # keeps the graph
                            probs=output[0].detach(), ids=output[2].detach())

        hooks.append(gate.register_forward_hook(hook))
    return hooks


def z_loss_formula(raw_logits, mask):
    """ST-MoE router z-loss: mean over (layer, real position) of logsumexp(logits)²."""
    z = torch.cat([torch.logsumexp(r, dim=-1) ** 2 for r in raw_logits])  # [L·N]
    keep = mask.reshape(-1).repeat(len(raw_logits)).float()               # [L·N]
    return (z * keep).sum() / keep.sum()


def coverage_counts(ids_per_layer, mask, labels, num_experts):
    """Counts per (MoE layer, expert) of top-k slots, over real / loss-bearing positions."""
    bearing = torch.zeros_like(mask)
    bearing[:, :-1] = (labels[:, 1:] != -100).long()  # position t predicts labels[t+1]
    real = mask.reshape(-1).bool()
    loss = bearing.reshape(-1).bool()
    all_counts, loss_counts = [], []
    for ids in ids_per_layer:  # [N, K]
        all_counts.append(torch.bincount(ids[real].reshape(-1), minlength=num_experts))
        loss_counts.append(torch.bincount(ids[loss].reshape(-1), minlength=num_experts))
    return torch.stack(loss_counts), torch.stack(all_counts)


def run_case(out_root, case, config_name, seed):
    from transformers.models.qwen3_moe.modeling_qwen3_moe import load_balancing_loss_func as qwen3_moe_lb
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func as mixtral_lb
    from transformers.models.olmoe.modeling_olmoe import load_balancing_loss_func as olmoe_lb

    lb_func = {"qwen3_moe": qwen3_moe_lb, "mixtral": mixtral_lb, "olmoe": olmoe_lb}[case]
    model = build_model(config_name, seed)
    cfg = model.config
    num_experts = cfg.num_local_experts if case == "mixtral" else cfg.num_experts
    top_k = cfg.num_experts_per_tok
    moe_layers = [l for l, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "experts")]
    ids, mask, labels = batch(cfg.vocab_size, seed)
    pos = positions(mask)

    store = {}
    hooks = gate_hooks(model, moe_layers, store)
    res = model(input_ids=ids, attention_mask=mask, position_ids=pos, labels=labels, output_router_logits=True)
    for h in hooks:
        h.remove()
    gates = [model.model.layers[l].mlp.gate.weight for l in moe_layers]
    grad_aux = torch.autograd.grad(res.aux_loss, gates, retain_graph=True)

    # The same function on softmax(raw logits) with the raw logits as leaves: its
    # gradient w.r.t. the logits (and a check that this is what the model computed).
    raw = [store[l]["raw"].detach().clone().requires_grad_(True) for l in moe_layers]
    aux_from_raw = lb_func(tuple(torch.softmax(r, dim=-1) for r in raw), num_experts, top_k, mask)
    assert torch.allclose(aux_from_raw, res.aux_loss, rtol=1e-6, atol=0), (aux_from_raw, res.aux_loss)
    grad_raw = torch.autograd.grad(aux_from_raw, raw)
    aux_no_mask = lb_func(tuple(res.router_logits), num_experts, top_k, None)

    # z-loss on the raw logits recomputed in the hooks (same graph as the model's).
    z = z_loss_formula([store[l]["raw"] for l in moe_layers], mask)
    grad_z = torch.autograd.grad(z, gates)

    loss_counts, all_counts = coverage_counts([store[l]["ids"] for l in moe_layers], mask, labels, num_experts)

    ref = dict(input_ids=ids, attention_mask=mask, labels=labels, position_ids=pos,
               aux_loss=res.aux_loss.detach(), aux_loss_no_mask=aux_no_mask.detach(), loss=res.loss.detach(),
               z_loss=z.detach(), coverage_loss_tokens=loss_counts, coverage_all_tokens=all_counts)
    for j, l in enumerate(moe_layers):
        ref[f"router_logits_{l}"] = store[l]["raw"].detach()
        ref[f"router_probs_{l}"] = store[l]["probs"]
        ref[f"topk_ids_{l}"] = store[l]["ids"]
        ref[f"grad_aux.router_logits_{l}"] = grad_raw[j]
        ref[f"grad_aux.{l}"] = grad_aux[j]
        ref[f"grad_z.{l}"] = grad_z[j]
    dst = out_root / "router_train" / case
    model.save_pretrained(dst / "model")
    ref = {k: (v.float() if v.is_floating_point() else v).detach().contiguous() for k, v in ref.items()}
    save_file(ref, str(dst / "reference.safetensors"))
    write_json_atomic(dst / "meta.json", dict(model_type=cfg.model_type, moe_layers=moe_layers,
                                              num_experts=num_experts, top_k=top_k,
                                              router_aux_loss_coef=cfg.router_aux_loss_coef,
                                              lengths=LENGTHS, prompt=PROMPT))
    print(f"  {case}: aux_loss {res.aux_loss.item():.6f} (no mask {aux_no_mask.item():.6f}), "
          f"z_loss {z.item():.4f}, MoE layers {moe_layers}")


def main():
    out = parse_out_dir()
    deterministic()
    for seed, (case, config_name) in enumerate(CASES):
        run_case(out, case, config_name, seed)


if __name__ == "__main__":
    main()
