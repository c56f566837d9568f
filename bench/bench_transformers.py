"""Prefill and decode throughput of transformers on one model directory.

Mirrors bench/engine_bench.cpp step for step (same random prompt shape, greedy
decode with a KV cache, best of N repeats, same thread count) and prints one JSON
object. bench/run.sh runs both in one session and reports the ratios.
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM, DynamicCache


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--decode-steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    # transformers' own default (grouped_mm) unless named: eager | grouped_mm | batched_mm
    p.add_argument("--experts-implementation", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    extra = {"experts_implementation": a.experts_implementation} if a.experts_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32, **extra).eval()
    torch.manual_seed(0)
    prompt = torch.randint(model.config.vocab_size, (a.batch, a.prompt_len))
    best_prefill = best_decode = best_prefill_cpu = best_decode_cpu = float("inf")
    with torch.inference_mode():
        for _ in range(a.repeats):
            cache = DynamicCache(config=model.config)
            start, cpu_start = time.perf_counter(), time.process_time()
            out = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1)
            best_prefill = min(best_prefill, time.perf_counter() - start)
            best_prefill_cpu = min(best_prefill_cpu, time.process_time() - cpu_start)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(a.decode_steps):
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True, logits_to_keep=1)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            best_decode = min(best_decode, time.perf_counter() - start)
            best_decode_cpu = min(best_decode_cpu, time.process_time() - cpu_start)
    print(json.dumps({
        "engine": "transformers",
        "model_type": model.config.model_type,
        "batch": a.batch,
        "prompt_len": a.prompt_len,
        "decode_steps": a.decode_steps,
        "threads": a.threads,
        "experts_implementation": getattr(model.config, "_experts_implementation", None),
        "prefill_tokens_per_s": a.batch * a.prompt_len / best_prefill,
        "decode_tokens_per_s": a.batch * a.decode_steps / best_decode,
        # Process CPU time (all threads), as engine_bench reports it: steadier than
        # wall time with --threads 1 on a busy machine.
        "prefill_tokens_per_cpu_s": a.batch * a.prompt_len / best_prefill_cpu,
        "decode_tokens_per_cpu_s": a.batch * a.decode_steps / best_decode_cpu,
    }))


if __name__ == "__main__":
    main()
