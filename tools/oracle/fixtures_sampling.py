"""Reference outputs of transformers' logits processors on fixed logits.

Writes <out>/sampling/processors.json: the input scores, the seen ids per row, and
for each case the processor transformers builds (TopK, TopP, Temperature, MinP,
RepetitionPenalty, and the full list GenerationMixin._get_logits_processor builds
for a sampling GenerationConfig) with its output. -inf is written as null. Also
unpacks the qwen3 tokenizer (<out>/tokenizers/qwen3) for the streaming tests.
"""
import math

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from oracle_common import deterministic, parse_out_dir, unpacked_tokenizer, write_json_atomic


def encode(t: torch.Tensor):
    return [[None if math.isinf(v) else v for v in row] for row in t.tolist()]


def main() -> None:
    out = parse_out_dir()
    deterministic(0)
    batch, vocab = 3, 40
    scores = torch.randn(batch, vocab, dtype=torch.float32) * 3.0
    scores[1, 7] = scores[1, 3]  # a tie, to pin down top-k's "ties kept"
    # Rows of previously seen ids (prompt + generated), with a repeat.
    input_ids = torch.tensor([[1, 5, 5, 9, 20], [0, 7, 3, 3, 39], [11, 12, 13, 14, 15]])

    cases = []

    def add(name, processor, params):
        result = processor(input_ids, scores.clone())
        cases.append({"name": name, "params": params, "out": encode(result)})

    for k in (1, 5, 12):
        add(f"top_k_{k}", TopKLogitsWarper(top_k=k), {"top_k": k})
    for p in (0.3, 0.8, 0.95):
        add(f"top_p_{p}", TopPLogitsWarper(top_p=p), {"top_p": p})
    for t in (0.5, 1.7):
        add(f"temperature_{t}", TemperatureLogitsWarper(t), {"temperature": t})
    for m in (0.05, 0.3):
        add(f"min_p_{m}", MinPLogitsWarper(min_p=m), {"min_p": m})
    for r in (1.3, 0.8):
        add(f"repetition_penalty_{r}", RepetitionPenaltyLogitsProcessor(penalty=r), {"repetition_penalty": r})

    # The whole chain as generate() builds it for these settings.
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=8, intermediate_size=16,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    chains = [
        {"do_sample": True, "temperature": 0.7, "top_k": 10, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.2},
        {"do_sample": True, "temperature": 1.3, "top_k": 0, "top_p": 0.6, "repetition_penalty": 1.0},
        {"do_sample": False, "repetition_penalty": 1.5},
    ]
    for i, params in enumerate(chains):
        config = GenerationConfig(**params)
        config.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
        processors = model._get_logits_processor(generation_config=config, input_ids_seq_length=input_ids.shape[1],
                                                 logits_processor=LogitsProcessorList(), device="cpu")
        params = dict(params)
        params.setdefault("top_k", config.top_k)
        params.setdefault("top_p", config.top_p)
        params.setdefault("temperature", config.temperature)
        params["processors"] = [type(p).__name__ for p in processors]
        add(f"chain_{i}", processors, params)

    unpacked_tokenizer("qwen3", out)  # the real tokenizer the streaming tests decode with
    write_json_atomic(out / "sampling" / "processors.json",
                      {"scores": encode(scores), "input_ids": input_ids.tolist(), "cases": cases})


if __name__ == "__main__":
    main()
