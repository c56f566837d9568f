"""Full-parameter training (lora/full_train.h) as transformers + torch do it.

Each case takes a tiny model of fixtures_models.py, trains every parameter for a
few optimizer steps on one fixed batch (all rows in one batch, so the trainer's
batch order cannot matter) and records what happened:

  <out>/full_train/<case>/model/               the model before training (save_pretrained)
  <out>/full_train/<case>/reference.safetensors
      input_ids [B, T]       right-padded with PAD
      attention_mask [B, T]  1 on real tokens
      loss_mask [B, T]       1 on trained tokens (labels = input_ids there, -100 elsewhere)
      final.<name>           every parameter after training, under transformers' in-memory
                             names (fused expert banks: mlp.experts.gate_up_proj [E, 2F, D])
      final_logits [B, T, V] the trained model's logits on the batch
      snr.<name>             per element: min over the steps of |g| / noise, where g is the
                             gradient of the same run in float64 and noise the element's
                             |g_fp32 − g_fp64| at that step, at least the median of that over the
                             tensor: how far above the reference's own fp32 rounding each
                             element's gradient stays
      planted.final.<name>, planted.final_logits
                             the same run with a planted bug: AdamW without bias correction
                             (m/√v instead of m̂/√v̂), for the test to show its checks catch it
  <out>/full_train/<case>/meta.json   lr, steps, clip, betas, eps, per-step losses and grad
                                      norms (fp32, fp64 twin, planted bug)

Training: transformers' ForCausalLMLoss (model(..., labels=...)), torch.optim.AdamW
(betas 0.9/0.95, eps 1e-8, weight decay 0), constant learning rate,
clip_grad_norm_(all parameters, 1.0) before each step, fp32. The float64 twin runs
the same model converted exactly (.double()) with the eager experts path (torch's
grouped_mm has no float64 kernel).

Why the snr tensors: Adam divides by √v̂, so an element whose gradient is at the level of
fp32 rounding (|g| ≈ 1e-8 ≈ eps, an attention direction the softmax ignores) gets an
update of either sign whatever the implementation; two correct fp32 trainers then differ
there by up to Adam's largest step. The test compares those elements against that bound
only, and every other element tightly (tests/lora/full_train_test.cpp says how tightly).

Cases: qwen3_tied (dense, tied embeddings: the embedding gets the unembedding's
gradient too) and qwen3_moe_norm (MoE with a dense layer, top-2 renormalised).
"""
import copy

import torch
from safetensors.torch import save_file

from fixtures_models import PAD, configs, init_weights
from oracle_common import deterministic, parse_out_dir, write_json_atomic

CASES = ["qwen3_tied", "qwen3_moe_norm"]
LR = 5e-3
STEPS = 3
CLIP = 1.0
BETAS = (0.9, 0.95)
EPS = 1e-8
LENGTHS = [12, 12, 9, 7]
PROMPT = 3  # leading tokens of each row without a label


def base_model(name, seed, experts=None):
    """experts: transformers' experts_implementation for MoE models (None: its default)."""
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(dict((n, c) for n, c, _, _ in configs())[name])
    torch.manual_seed(seed)
    extra = dict(experts_implementation=experts) if experts and "moe" in config.model_type else {}
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", **extra).float()
    init_weights(model, seed=200 + seed)
    return model


def batch(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    rows, width = len(LENGTHS), max(LENGTHS)
    ids = torch.full((rows, width), PAD, dtype=torch.long)
    attention = torch.zeros((rows, width), dtype=torch.long)
    loss_mask = torch.zeros((rows, width), dtype=torch.long)
    for r, n in enumerate(LENGTHS):
        ids[r, :n] = torch.randint(3, vocab, (n,), generator=g)
        attention[r, :n] = 1
        loss_mask[r, PROMPT:n] = 1
    return ids, attention, loss_mask


class NoBiasCorrectionAdamW:
    """The planted bug: AdamW whose update is m/(√v + eps), the moments not divided by
    (1 − β^t). At step 1 that is 0.1·g / (√0.05·|g|) ≈ 0.45 of the correct step."""

    def __init__(self, params):
        self.params = params
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self):
        for p, m, v in zip(self.params, self.m, self.v):
            m.mul_(BETAS[0]).add_(p.grad, alpha=1 - BETAS[0])
            v.mul_(BETAS[1]).addcmul_(p.grad, p.grad, value=1 - BETAS[1])
            p.add_(-LR * m / (v.sqrt() + EPS))

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None


def train(model, ids, attention, labels, planted_bug=False):
    """STEPS optimizer steps; returns per-step losses, grad norms and gradients (after clipping)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (NoBiasCorrectionAdamW(params) if planted_bug else
           torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0))
    model.train()
    losses, norms, grads = [], [], []
    for _ in range(STEPS):
        if next(model.parameters()).dtype == torch.float64:
            # transformers' ForCausalLMLoss casts the logits to float32; the twin keeps float64
            # through the same formula: mean cross-entropy of the next token where labelled.
            logits = model(input_ids=ids, attention_mask=attention).logits
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                     labels[:, 1:].reshape(-1), ignore_index=-100)
        else:
            loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, CLIP)))
        losses.append(loss.item())
        grads.append({n: p.grad.detach().double().clone() for n, p in model.named_parameters()})
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits.float()
    return losses, norms, grads, logits


def signal_to_noise(grads32, grads64):
    """Per element: min over steps of |g64| / noise, noise = max(|g32 − g64| of the element, the
    median of |g32 − g64| over its tensor at that step). The element's own rounding error is one
    draw; the tensor's median keeps an element whose draw happened to be tiny from passing as
    well-conditioned."""
    out = {}
    for name in grads64[0]:
        ratios = []
        for g32, g64 in zip(grads32, grads64):
            error = (g32[name] - g64[name]).abs()
            noise = torch.maximum(error, error.median()).clamp_min(1e-30)
            ratios.append(g64[name].abs() / noise)
        out[name] = torch.stack(ratios).min(0).values.float().contiguous()
    return out


def train_case(out_root, name, seed):
    model = base_model(name, seed)
    twin = base_model(name, seed, experts="eager").double()
    planted = copy.deepcopy(model)
    dst = out_root / name
    model.save_pretrained(dst / "model")
    ids, attention, loss_mask = batch(model.config.vocab_size, seed)
    labels = ids.masked_fill(loss_mask == 0, -100)

    losses, norms, grads32, logits = train(model, ids, attention, labels)
    losses64, norms64, grads64, _ = train(twin, ids, attention, labels)
    planted_losses, planted_norms, _, planted_logits = train(planted, ids, attention, labels, planted_bug=True)

    ref = dict(input_ids=ids, attention_mask=attention, loss_mask=loss_mask, final_logits=logits,
               **{"planted.final_logits": planted_logits})
    for pname, p in model.named_parameters():
        ref[f"final.{pname}"] = p.detach().float()
    for pname, p in planted.named_parameters():
        ref[f"planted.final.{pname}"] = p.detach().float()
    for pname, snr in signal_to_noise(grads32, grads64).items():
        ref[f"snr.{pname}"] = snr
    save_file({k: v.contiguous() for k, v in ref.items()}, str(dst / "reference.safetensors"))
    write_json_atomic(dst / "meta.json", dict(
        model=name, lr=LR, steps=STEPS, clip=CLIP, betas=list(BETAS), eps=EPS, lengths=LENGTHS, prompt=PROMPT,
        pad=PAD, losses=losses, grad_norms=norms, fp64=dict(losses=losses64, grad_norms=norms64),
        planted=dict(bug="AdamW without bias correction", losses=planted_losses, grad_norms=planted_norms)))


def main():
    out = parse_out_dir() / "full_train"
    deterministic(0)
    for i, name in enumerate(CASES):
        train_case(out, name, seed=i)


if __name__ == "__main__":
    main()
