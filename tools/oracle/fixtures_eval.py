"""References for the routing analyses (tests/eval/*_test.cpp), run by transformers 5.5.4.

Routing: tiny MoE models with real tokenizers route a few probe, domain and
token-context prompts; what transformers' router chose is the reference for the
engine's captured RoutingTrace (top-k ids exact, weights within 1e-5):

  <out>/eval/<case>/model/            the model directory (config.json, bf16 safetensors
                                      run in float32 by both sides, tokenizer files)
  <out>/eval/<case>/reference.json    {"model_type", "moe_layers", "num_experts", "top_k",
      "prompts": [{"text", "ids" (tokenizer(text) ids), "topk_ids" [T][L][K],
                   "topk_weights" [T][L][K], "min_gap"}],
      "token": {"token", "contexts": [{"text", "position"}]}   position = the token piece
                                      whose offset span covers the end of the token's last
                                      occurrence (return_offsets_mapping)
      "generation": {"prompt", "ids" (prompt ids), "generated" [G] (greedy, no eos),
                     "margin", "topk_ids" [Tp+G][L][K], "topk_weights"}: prompt rows, then
                     row g = the forward position Tp-1+g whose logits chose token g, from one
                     forward over prompt + generated[:-1] (the layout of a generation capture)}
  Cases: qwen3_moe (qwen3 tokenizer, 3 layers, layer 1 dense via mlp_only_layers, 8 experts,
  top-2, norm_topk_prob), mixtral (llama2 tokenizer, 2 layers, 4 experts, top-2) and olmoe
  (llama2 tokenizer, 2 layers, 8 experts, top-2, no renormalisation).
  min_gap: the smallest gap between the K-th and (K+1)-th router probability over the
  prompt's positions and layers; cases are seeded so that it is clear of ties.

MoE type: expert weights with a known structure, and what torch.linalg.svdvals says:

  <out>/eval/moe_type_<kind>/model/       kind = pseudo (every expert = a shared base + a
                                          rank-1 perturbation along one shared direction, the
                                          upcycled layout) or native (independent experts)
  <out>/eval/moe_type_<kind>/reference.json {"energy": 0.95, "per_layer": [{"layer",
      "projections": [{"name", "rows", "cols", "mean_rank", "rank_ratio"}], "mean_cosine"}]}
  Effective rank of delta_e = W_e - mean_e W_e: fewest singular values holding 95% of
  sum(sigma^2), averaged over experts; mean_cosine over expert pairs i < j of the flattened
  (gate, up, down) weights. Computed in float64.
"""
import copy
import shutil

import torch

from fixtures_models import init_weights, positions
from oracle_common import deterministic, parse_out_dir, save_bf16, unpacked_tokenizer, write_json_atomic

PROMPTS = [
    "Tell me more.", "Tell me more please.", "Who are you?", "What is your name?",
    "Describe the sea in one sentence.", "127 * 89 = ", "def fibonacci(n):",
    "King is to queen as man is to woman",
]
TOKEN = "127"
CONTEXTS = [TOKEN, "111 " + TOKEN, "= " + TOKEN, "The value is " + TOKEN + "."]  # eval/explore.cpp token_contexts
GEN_PROMPT = "Tell me more."
GEN_TOKENS = 6
MIN_GAP = 1e-4


def build(case, tok, seed):
    from transformers import AutoModelForCausalLM, MixtralConfig, OlmoeConfig, Qwen3MoeConfig

    common = dict(vocab_size=len(tok), hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True)
    if case == "qwen3_moe":
        config = Qwen3MoeConfig(**common, head_dim=8, intermediate_size=64, moe_intermediate_size=32,
                                num_hidden_layers=3, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
                                mlp_only_layers=[1], decoder_sparse_step=1,
                                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                pad_token_id=tok.pad_token_id)
    elif case == "olmoe":
        config = OlmoeConfig(**common, intermediate_size=32, num_hidden_layers=2, num_experts=8, num_experts_per_tok=2,
                             norm_topk_prob=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    else:
        config = MixtralConfig(**common, intermediate_size=32, num_hidden_layers=2, num_local_experts=4,
                               num_experts_per_tok=2, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").float().eval()
    init_weights(model, seed=300 + seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.bfloat16().float())  # exactly what the bf16 file holds
    return model


def moe_layers_of(model):
    return [l for l, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "experts")]


def route(model, ids, moe_layers):
    """transformers' own routing of one unpadded sequence: the gates' (probs, weights, ids)."""
    store = {}
    hooks = [model.model.layers[l].mlp.gate.register_forward_hook(
        lambda m, a, out, l=l: store.__setitem__(l, out)) for l in moe_layers]
    x = torch.tensor([ids])
    mask = torch.ones_like(x)
    with torch.no_grad():
        model(input_ids=x, attention_mask=mask, position_ids=positions(mask))
    for h in hooks:
        h.remove()
    k = store[moe_layers[0]][2].shape[1]
    ids_ = torch.stack([store[l][2] for l in moe_layers], 1)          # [T, L, K]
    weights = torch.stack([store[l][1] for l in moe_layers], 1)       # [T, L, K]
    probs = torch.stack([store[l][0] for l in moe_layers], 1)         # [T, L, E]
    top = torch.topk(probs, k + 1, dim=-1).values
    gap = float((top[..., k - 1] - top[..., k]).min())
    return ids_.tolist(), weights.float().tolist(), gap


def routing_case(out, case, family, seed_base):
    from transformers import AutoTokenizer

    tok_dir = unpacked_tokenizer(family, out)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    for attempt in range(20):  # the first seed whose routing is clear of near-ties
        model = build(case, tok, seed_base + attempt)
        moe_layers = moe_layers_of(model)
        prompts = []
        for text in PROMPTS + CONTEXTS:
            ids = tok(text)["input_ids"]
            topk_ids, topk_weights, gap = route(model, ids, moe_layers)
            prompts.append(dict(text=text, ids=ids, topk_ids=topk_ids, topk_weights=topk_weights, min_gap=gap))
        prompt_ids = tok(GEN_PROMPT)["input_ids"]
        with torch.no_grad():
            x = torch.tensor([prompt_ids])
            gen = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=GEN_TOKENS,
                                 min_new_tokens=GEN_TOKENS, do_sample=False, eos_token_id=None,
                                 pad_token_id=tok.pad_token_id or 0, output_scores=True, return_dict_in_generate=True)
        generated = gen.sequences[0, len(prompt_ids):].tolist()
        margin = min(float((lambda t: t[0] - t[1])(torch.topk(s[0].float(), 2).values)) for s in gen.scores)
        full_ids, full_weights, full_gap = route(model, prompt_ids + generated[:-1], moe_layers)
        tp = len(prompt_ids)
        gap = min([p["min_gap"] for p in prompts] + [full_gap])
        if gap > MIN_GAP and margin > 1e-3:
            break
    else:
        raise SystemExit(f"{case}: no seed without near-ties in routing")
    dst = out / "eval" / case
    if dst.exists():
        shutil.rmtree(dst)
    save_bf16(model, dst / "model")
    for f in tok_dir.iterdir():
        if f.is_file():
            shutil.copy(f, dst / "model" / f.name)
    token_contexts = []
    for text in CONTEXTS:
        enc = tok(text, return_offsets_mapping=True)
        end = text.rfind(TOKEN) + len(TOKEN)
        position = next(i for i, (a, b) in enumerate(enc["offset_mapping"]) if b >= end and b > a)
        token_contexts.append(dict(text=text, position=position))
    generation = dict(prompt=GEN_PROMPT, ids=prompt_ids, generated=generated, margin=margin,
                      topk_ids=full_ids[:tp] + full_ids[tp - 1:], topk_weights=full_weights[:tp] + full_weights[tp - 1:])
    cfg = model.config
    write_json_atomic(dst / "reference.json", dict(
        model_type=cfg.model_type, moe_layers=moe_layers,
        num_experts=getattr(cfg, "num_experts", None) or cfg.num_local_experts, top_k=cfg.num_experts_per_tok,
        prompts=prompts, token=dict(token=TOKEN, contexts=token_contexts), generation=generation))
    print(f"  {case}: seed {seed_base + attempt}, MoE layers {moe_layers}, min router gap {gap:.2e}, "
          f"greedy margin {margin:.3f}, token positions {[c['position'] for c in token_contexts]}")


def effective_rank(s, energy):
    s2 = s.double() ** 2
    total = s2.sum()
    if total <= 0:
        return 0
    return int((torch.cumsum(s2, 0) < energy * total).sum()) + 1


def moe_type_reference(model, energy=0.95):
    layers = []
    for l in moe_layers_of(model):
        experts = model.model.layers[l].mlp.experts
        gate_up = experts.gate_up_proj.detach().double()  # [E, 2F, D]
        down = experts.down_proj.detach().double()        # [E, D, F]
        f = gate_up.shape[1] // 2
        projections = []
        for name, w in (("gate", gate_up[:, :f]), ("up", gate_up[:, f:]), ("down", down)):
            delta = w - w.mean(0, keepdim=True)
            ranks = [effective_rank(torch.linalg.svdvals(d), energy) for d in delta]
            mean_rank = sum(ranks) / len(ranks)
            projections.append(dict(name=name, rows=w.shape[1], cols=w.shape[2], mean_rank=mean_rank,
                                    rank_ratio=mean_rank / min(w.shape[1], w.shape[2])))
        flat = torch.cat([gate_up.flatten(1), down.flatten(1)], 1)
        unit = flat / flat.norm(dim=1, keepdim=True)
        cos = unit @ unit.T
        e = cos.shape[0]
        pairs = [float(cos[i, j]) for i in range(e) for j in range(i + 1, e)]
        layers.append(dict(layer=l, projections=projections, mean_cosine=sum(pairs) / len(pairs)))
    return dict(energy=energy, per_layer=layers)


def moe_type_case(out, kind, seed):
    from transformers import AutoModelForCausalLM, Qwen3MoeConfig

    # Dims of 64 so that a rank-1 delta is 1/64 < 5% of the rank (the pseudo threshold).
    config = Qwen3MoeConfig(vocab_size=64, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                            intermediate_size=64, moe_intermediate_size=64, num_hidden_layers=2, num_experts=8,
                            num_experts_per_tok=2, max_position_embeddings=64, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).float().eval()
    init_weights(model, seed=400 + seed)
    if kind == "pseudo":
        g = torch.Generator().manual_seed(500 + seed)
        with torch.no_grad():
            for l in moe_layers_of(model):
                experts = model.model.layers[l].mlp.experts
                for p in (experts.gate_up_proj, experts.down_proj):  # [E, R, C]
                    base = p[0].clone()
                    u = torch.randn(p.shape[1], 1, generator=g)
                    v = torch.randn(1, p.shape[2], generator=g)
                    c = torch.randn(p.shape[0], generator=g)
                    p.copy_(base + 0.05 * c[:, None, None] * (u @ v)[None])
    dst = out / "eval" / f"moe_type_{kind}"
    if dst.exists():
        shutil.rmtree(dst)
    model.save_pretrained(dst / "model")
    ref = moe_type_reference(model)
    write_json_atomic(dst / "reference.json", ref)
    summary = [(l["layer"], round(l["projections"][0]["rank_ratio"], 3), round(l["mean_cosine"], 3)) for l in ref["per_layer"]]
    print(f"  moe_type_{kind}: (layer, gate rank ratio, cosine) {summary}")


def main():
    out = parse_out_dir()
    deterministic(0)
    routing_case(out, "qwen3_moe", "qwen3", 0)
    routing_case(out, "mixtral", "llama2", 100)
    routing_case(out, "olmoe", "llama2", 200)
    moe_type_case(out, "pseudo", 1)
    moe_type_case(out, "native", 2)


if __name__ == "__main__":
    main()
