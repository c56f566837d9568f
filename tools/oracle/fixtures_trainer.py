"""Reference numbers for the trainer's optimizer (lora/optimizer.h).

  <out>/trainer/optimizer.json
    schedules: the learning-rate multiplier at each optimizer step of transformers'
      get_{constant,linear,cosine}_schedule_with_warmup (LambdaLR, stepped after
      every optimizer.step(), as transformers' Trainer does).
    adamw: torch.optim.AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0) over two
      parameter groups (base lr, router lr = lr x multiplier) with a cosine
      schedule, clip_grad_norm_ on all tensors before each step: the initial
      tensors, the gradients of each step, the grad norms and the tensors after.
"""
import torch
from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                          get_linear_schedule_with_warmup)

from oracle_common import deterministic, parse_out_dir, write_json_atomic

SCHEDULES = [("constant", 3, 10), ("linear", 3, 10), ("cosine", 3, 10), ("linear", 0, 5), ("cosine", 0, 7)]


def factors(name, warmup, total):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=1.0)
    if name == "constant":
        sched = get_constant_schedule_with_warmup(opt, warmup)
    elif name == "linear":
        sched = get_linear_schedule_with_warmup(opt, warmup, total)
    else:
        sched = get_cosine_schedule_with_warmup(opt, warmup, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def adamw_case():
    lr, mult, warmup, total, clip = 0.01, 0.5, 1, 4, 1.0
    base = [torch.randn(3, 4), torch.randn(2, 3)]
    router = [torch.randn(4, 2)]
    params = [t.clone().requires_grad_(True) for t in base + router]
    opt = torch.optim.AdamW([{"params": params[:2]}, {"params": params[2:], "lr": lr * mult}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, warmup, total)
    grads, norms = [], []
    for step in range(total):
        # Step 2's gradients are large, so clipping acts there.
        g = [torch.randn_like(p) * (3.0 if step == 2 else 0.3) for p in params]
        for p, gi in zip(params, g):
            p.grad = gi.clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip)))
        opt.step()
        sched.step()
        grads.append([gi.tolist() for gi in g])
    return {"lr": lr, "router_lr_multiplier": mult, "warmup": warmup, "total": total, "clip": clip,
            "schedule": "cosine", "initial": [t.tolist() for t in base + router], "base_count": 2,
            "grads": grads, "grad_norms": norms, "after": [p.detach().tolist() for p in params]}


def main():
    out = parse_out_dir()
    deterministic(0)
    schedules = [{"schedule": n, "warmup": w, "total": t, "factors": factors(n, w, t)} for n, w, t in SCHEDULES]
    write_json_atomic(out / "trainer" / "optimizer.json", {"schedules": schedules, "adamw": adamw_case()})


if __name__ == "__main__":
    main()
