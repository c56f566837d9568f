"""The peer side of the training bench: PEFT + transformers SFT and TRL DPO.

Runs the same JSONL rows as `character train` (bench/train_bench.py writes them),
with PEFT LoRA on the same targets and rank (attention q/k/v/o, the dense MLP or,
on MoE models, every expert through `target_parameters` on the fused expert
banks, as PEFT does it), AdamW betas 0.9/0.95 without weight decay, clipping at
1.0, fp32 on CPU, the same thread count. Prints one JSON line: the wall time at
the end of every optimizer step, the tokens per step and the loss.

- sft: a plain loop (transformers' own loss through `labels`, MoE aux loss
  included via `output_router_logits`), labels on the assistant reply only.
- dpo: TRL's DPOTrainer itself (loss_type ["sigmoid", "sft"], weights [1, 0.1],
  the reference = the PEFT model with its adapter disabled), timed by a callback
  at the end of each step, so data collation and Trainer bookkeeping count, as
  they do on our side.

Usage: train_peer.py sft|dpo MODEL_DIR DATA.jsonl --steps N --batch B --rank R --threads T
"""
import argparse
import json
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer


def lora_model(model_dir: str, rank: int, alpha: float):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    moe = getattr(model.config, "num_experts", 0) or getattr(model.config, "num_local_experts", 0)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    cfg = dict(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets)
    if moe:
        # PEFT's way to train experts (docs/training.md): LoRA on the fused banks.
        model.config.output_router_logits = True  # the load-balancing loss, as our RouterStepHook
        cfg["target_parameters"] = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
    else:
        targets += ["gate_proj", "up_proj", "down_proj"]
    return get_peft_model(model, LoraConfig(**cfg)), bool(moe)


def sft(a, model, moe: bool) -> dict:
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    rows = [json.loads(l) for l in open(a.data) if l.strip()]
    ids, labels = [], []
    for r in rows:
        msgs = r["messages"]
        full = tok(tok.apply_chat_template(msgs, tokenize=False), add_special_tokens=False).input_ids
        prompt = tok(tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True),
                     add_special_tokens=False).input_ids
        ids.append(full)
        labels.append([-100] * len(prompt) + full[len(prompt):])
    if len({len(x) for x in ids}) != 1:
        raise SystemExit(f"{a.data}: rows of different lengths {sorted({len(x) for x in ids})}, expected one length")
    ids, labels = torch.tensor(ids), torch.tensor(labels)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    model.train()
    times, losses, start = [], [], time.perf_counter()
    g = torch.Generator().manual_seed(0)
    for step in range(a.steps):
        rows_ = torch.randperm(len(ids), generator=g)[: a.batch]
        batch, lab = ids[rows_], labels[rows_]
        out = model(input_ids=batch, attention_mask=torch.ones_like(batch), labels=lab)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
        times.append(time.perf_counter() - start)
    return {"tokens_per_step": a.batch * ids.shape[1], "loss_tokens_per_step": int((labels[:, 1:] != -100).sum()) * a.batch // len(ids),
            "step_end_s": times, "losses": losses}


def dpo(a, model, moe: bool) -> dict:
    from datasets import load_dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    tok = AutoTokenizer.from_pretrained(a.model_dir)
    data = load_dataset("json", data_files=a.data, split="train")
    times, start = [], [0.0]

    class StepClock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            start[0] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - start[0])

    cfg = DPOConfig(
        output_dir=a.out, per_device_train_batch_size=a.batch, max_steps=a.steps, learning_rate=1e-4,
        lr_scheduler_type="linear", adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8, weight_decay=0.0,
        max_grad_norm=1.0, beta=0.1, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.1], max_length=None,
        use_cpu=True, bf16=False, fp16=False, report_to="none", save_strategy="no", logging_steps=1,
        dataloader_num_workers=0, disable_tqdm=True, seed=0, gradient_checkpointing=False)
    trainer = DPOTrainer(model=model, args=cfg, train_dataset=data, processing_class=tok, callbacks=[StepClock()])
    first = trainer.train_dataset[0]
    length = len(first["prompt_ids"]) + len(first["chosen_ids"])
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens_per_step": 2 * a.batch * length, "step_end_s": times, "losses": losses}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["sft", "dpo"])
    p.add_argument("model_dir")
    p.add_argument("data")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--alpha", type=float, default=32.0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, moe = lora_model(a.model_dir, a.rank, a.alpha)
    result = sft(a, model, moe) if a.kind == "sft" else dpo(a, model, moe)
    print(json.dumps({"engine": "peer", "kind": a.kind, **result}))


if __name__ == "__main__":
    main()
