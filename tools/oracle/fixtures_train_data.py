"""Oracle for lora/train_data: SFT and DPO rows tokenized as TRL 1.16 tokenizes them.

Writes train_data/{sft,dpo}.jsonl (the rows the C++ loader reads) and
train_data/oracle_train_data.json with, per family, the ids and masks TRL produces:

- SFT: TRL's sft_trainer tokenize_fn for conversational rows with assistant_only_loss:
  `_tokenize(messages, return_assistant_tokens_mask=True, chat_template=T)` where T is
  the family's template with `{% generation %}` blocks (for llama3 exactly what TRL swaps
  in, llama3_training.jinja; for qwen3 and llama3_1 the tagged copies of the model's own
  template from fixtures_chat.py, asserted there to render the same text). TRL would
  give Qwen3 qwen3_training.jinja, which adds an empty <think> block to every assistant
  turn; we keep the model's template, which renders history turns as inference sees them.
  Then keep_start truncation to max_length and the drop of fully masked rows.
  "Last assistant only" (no TRL equivalent) runs transformers' own mask loop
  (apply_chat_template: char_to_token(start) .. char_to_token(end - 1)) on the last
  generation span alone.
- DPO: TRL's dpo_trainer tokenize_fn verbatim (prompt with the generation prompt,
  prompt+chosen and prompt+rejected as full conversations, completion after
  common_prefix_length). Strings become one user / one assistant message. Truncation
  (which TRL 1.16 does only on the joined sequence) follows our documented rule: the
  prompt keeps its last max_prompt_length tokens, completions their first
  max_length - len(prompt); pairs with an empty completion are dropped.
"""
import json

from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import render_jinja_template
from trl.data_utils import _tokenize, common_prefix_length

from fixtures_chat import (CHATML, CHATML_TAGGED, LLAMA3_1_TAGGED, QWEN3_TAGGED, ROLE_COLON, ROLE_COLON_TAGGED,
                           TRL_TEMPLATES)
from oracle_common import parse_out_dir, unpacked_tokenizer, write_json_atomic

SFT_MAX_LENGTH = 96
DPO_MAX_LENGTH = 96
DPO_MAX_PROMPT_LENGTH = 48


def S(text):
    return {"role": "system", "content": text}


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


LONG = " ".join(f"Line {i}: the quick brown fox jumps over the lazy dog." for i in range(12))

SFT_ROWS = [
    [U("Hello!"), A("Hi there.")],
    [S("You are a pirate."), U("Who are you?"), A("Arr, I be Captain Flint."), U("And your ship?"),
     A("The Walrus, matey.")],
    [U("Ünïcödé — 日本語 🏴‍☠️ ok?"), A("Ça va! 你好 👋🏽")],
    # Content opening with "\n" merges with the header's "\n" in Qwen's tokenizer: the
    # merged token straddles the span start and counts as assistant-written.
    [U("  padded user \n"), A("\n\nleading newlines, trailing spaces   \n")],
    [U("q"), A(" leading space"), U("tab"), A("\t\ttabs first")],
    [U("q"), A("\n\nhistory turn opening with newlines"), U("q2"), A(" \nspace then newline")],
    [U("What does <|im_end|> or <|eot_id|> mean?"), A("They end a turn.")],
    [U("Write code:\n```py\nprint(1)\n```\n"), A("```python\nfor i in range(3):\n    print(i)\n```")],
    [U("q1"), A("<think>r1</think>A1"), U("q2"), A("<think>\nr2\n</think>\n\nA2")],
    [U("q"), A("first reply"), A("second reply")],
    [A("I speak first.")],
    [U("First."), U("Second."), A("Both received.")],
    [S("s"), U("q"), A("")],
    [U("Tell me a long story."), A(LONG)],                        # truncated, keeps trained tokens
    [S(LONG), U("Short?"), A("Yes.")],                            # truncated to no trained token: dropped
    [U("Now long, then short."), A(LONG), U("Again?"), A("No.")],  # last-only: the last span is cut away
]

DPO_ROWS = [
    {"prompt": "Hi", "chosen": "Hello! How can I help?", "rejected": "Go away."},
    {"prompt": [S("Be kind."), U("Rate my poem.")], "chosen": [A("It has lovely imagery.")],
     "rejected": [A("Bad.")]},
    {"prompt": [U("Hi"), A("Hello!"), U("Tell me a joke.")], "chosen": "Why did the chicken cross the road?",
     "rejected": "No."},
    # Ends with an assistant turn: Qwen3 renders it with a <think> block as the last
    # message, without one when a reply follows; the prompt is not a prefix.
    {"prompt": [U("q"), A("a1")], "chosen": [A("a2")], "rejected": [A("b2")]},
    {"prompt": [U("q1"), A("<think>r1</think>A1"), U("q2")], "chosen": "<think>\nsome thought\n</think>\n\nA2",
     "rejected": "A2 without thought"},
    {"prompt": "Two turns?", "chosen": [A("One."), A("Two.")], "rejected": [A("Only one.")]},
    {"prompt": "Spaces", "chosen": "\n\nleading newlines", "rejected": " leading space  "},
    {"prompt": "Ünïcödé 日本語?", "chosen": "Ça va! 你好 👋🏽", "rejected": "🏴‍☠️"},
    {"prompt": [S(LONG), U("Summarise.")], "chosen": "Short.", "rejected": "Also short."},  # prompt cut
    {"prompt": "Tell me a story.", "chosen": LONG, "rejected": "Once."},                     # chosen cut
]

# case name: (chat family, tokenizer folder, template for rendering (None = the tokenizer's),
# tagged template for SFT masks). role_colon on Llama 2's SentencePiece-style tokenizer
# puts span boundaries inside tokens ("▁" merges), the loader's slow path.
FAMILIES = {
    "qwen3": ("qwen3", "qwen3", None, QWEN3_TAGGED),
    "llama3": ("llama3", "llama3_1", None, (TRL_TEMPLATES / "llama3_training.jinja").read_text()),
    "llama3_1": ("llama3_1", "llama3_1", (TRL_TEMPLATES / "llama3_1.jinja").read_text(), LLAMA3_1_TAGGED),
    "chatml": ("chatml", "qwen3", CHATML, CHATML_TAGGED),
    "role_colon": ("role_colon", "qwen3", ROLE_COLON, ROLE_COLON_TAGGED),
    "role_colon_llama2": ("role_colon", "llama2", ROLE_COLON, ROLE_COLON_TAGGED),
}


def sft_case(tok, template, tagged, messages):
    """TRL's conversational language-modeling tokenize_fn, then its truncation and filter."""
    processed = _tokenize(tok, messages, chat_template=tagged, return_assistant_tokens_mask=True)
    ids, masks = processed["input_ids"], processed["assistant_masks"]
    assert ids == tok.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=False)

    # transformers' mask loop restricted to the last generation span
    (text,), (spans,) = render_jinja_template(conversations=[messages], chat_template=tagged,
                                              return_assistant_tokens_mask=True, **tok.special_tokens_map)
    encoding = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert encoding["input_ids"] == ids
    starts, ends = {b for b, _ in encoding["offset_mapping"]}, {e for _, e in encoding["offset_mapping"]}
    aligned = all(b in starts and e in ends for b, e in spans)
    last = [0] * len(ids)
    start, end = spans[-1]
    start_token, end_token = encoding.char_to_token(0, start), encoding.char_to_token(0, end - 1)
    for t in range(start_token, end_token + 1):
        last[t] = 1

    def truncated(mask):
        if len(ids) <= SFT_MAX_LENGTH:
            return {"ids": ids, "mask": mask}
        kept = mask[:SFT_MAX_LENGTH]
        return {"ids": ids[:SFT_MAX_LENGTH], "mask": kept} if 1 in kept else None

    return {"ids": ids, "mask": masks, "last_mask": last, "spans_token_aligned": aligned,
            "truncated": len(ids) > SFT_MAX_LENGTH,
            "at_max_length": truncated(masks), "at_max_length_last": truncated(last)}


def as_messages(value, role):
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def dpo_case(tok, template, row, extra):
    """TRL's DPO tokenize_fn (dpo_trainer.py) on the conversational form of the row."""
    prompt, chosen, rejected = as_messages(row["prompt"], "user"), as_messages(row["chosen"], "assistant"), \
        as_messages(row["rejected"], "assistant")
    kwargs = {"chat_template": template, **extra}
    prompt_ids = _tokenize(tok, prompt, add_generation_prompt=True, **kwargs)["input_ids"]
    prompt_chosen_ids = _tokenize(tok, prompt + chosen, **kwargs)["input_ids"]
    prompt_rejected_ids = _tokenize(tok, prompt + rejected, **kwargs)["input_ids"]
    prompt_len = min(common_prefix_length(prompt_ids, prompt_chosen_ids),
                     common_prefix_length(prompt_ids, prompt_rejected_ids))
    pair = {"prompt": prompt_ids[:prompt_len], "chosen": prompt_chosen_ids[prompt_len:],
            "rejected": prompt_rejected_ids[prompt_len:], "prefix_stable": prompt_len == len(prompt_ids)}

    p = pair["prompt"][-DPO_MAX_PROMPT_LENGTH:]
    room = DPO_MAX_LENGTH - len(p)
    c, r = pair["chosen"][:room], pair["rejected"][:room]
    cut = len(p) < len(pair["prompt"]) or len(c) < len(pair["chosen"]) or len(r) < len(pair["rejected"])
    pair["truncated"] = cut
    pair["at_max_length"] = {"prompt": p, "chosen": c, "rejected": r} if c and r else None
    return pair


def main():
    out = parse_out_dir() / "train_data"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sft.jsonl", "w") as f:
        for messages in SFT_ROWS:
            f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    with open(out / "dpo.jsonl", "w") as f:
        for row in DPO_ROWS:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    result = {"sft_max_length": SFT_MAX_LENGTH, "dpo_max_length": DPO_MAX_LENGTH,
              "dpo_max_prompt_length": DPO_MAX_PROMPT_LENGTH, "families": {}}
    for name, (family, tok_name, template, tagged) in FAMILIES.items():
        tok = AutoTokenizer.from_pretrained(str(unpacked_tokenizer(tok_name, out.parent)))
        if template is None:
            template = tok.chat_template
        sft = [sft_case(tok, template, tagged, messages) for messages in SFT_ROWS]
        thinking = [None, False] if family == "qwen3" else [None]
        dpo = {}
        for enable_thinking in thinking:
            extra = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
            dpo["default" if enable_thinking is None else "no_thinking"] = [
                dpo_case(tok, template, row, extra) for row in DPO_ROWS]
        result["families"][name] = {"family": family, "tokenizer": f"tokenizers/{tok_name}", "sft": sft, "dpo": dpo}
        unstable = sum(not c["prefix_stable"] for cases in dpo.values() for c in cases)
        unaligned = sum(not c["spans_token_aligned"] for c in sft)
        print(f"train_data oracle: {name}: {len(sft)} SFT rows ({unaligned} with a span off token boundaries), "
              f"{sum(len(v) for v in dpo.values())} DPO rows ({unstable} not prefix-stable)")
    write_json_atomic(out / "oracle_train_data.json", result)


if __name__ == "__main__":
    main()
