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
  <out>/full_train/<case>/meta.json   lr, steps, clip, per-step losses and grad norms

Training: transformers' ForCausalLMLoss (model(..., labels=...)), torch.optim.AdamW
(betas 0.9/0.95, eps 1e-8, weight decay 0), constant learning rate,
clip_grad_norm_(all parameters, 1.0) before each step, fp32.

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
LENGTHS = [12, 12, 9, 7]
PROMPT = 3  # leading tokens of each row without a label


def base_model(name, seed):
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(dict((n, c) for n, c, _, _ in configs())[name])
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").float()
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


def train_case(out_root, name, seed):
    model = base_model(name, seed)
    dst = out_root / name
    model.save_pretrained(dst / "model")
    ids, attention, loss_mask = batch(model.config.vocab_size, seed)
    labels = ids.masked_fill(loss_mask == 0, -100)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    model.train()
    losses, norms = [], []
    for _ in range(STEPS):
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, CLIP)))
        losses.append(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits.float()
    ref = dict(input_ids=ids, attention_mask=attention, loss_mask=loss_mask, final_logits=logits)
    for pname, p in model.named_parameters():
        ref[f"final.{pname}"] = p.detach().float().contiguous()
    save_file({k: v.contiguous() for k, v in ref.items()}, str(dst / "reference.safetensors"))
    write_json_atomic(dst / "meta.json", dict(model=name, lr=LR, steps=STEPS, clip=CLIP, lengths=LENGTHS,
                                              prompt=PROMPT, pad=PAD, losses=losses, grad_norms=norms))


def main():
    out = parse_out_dir() / "full_train"
    deterministic(0)
    for i, name in enumerate(CASES):
        train_case(out, name, seed=i)


if __name__ == "__main__":
    main()
