"""References for the `character tokenize` command: the ids transformers'
AutoTokenizer gives for a text (add_special_tokens default) and for a rendered
conversation (apply_chat_template, thinking on and off), with the real Qwen3 and
Llama 2 tokenizers. Writes <out>/generate/tokenize.json.
"""
from transformers import AutoTokenizer

from oracle_common import parse_out_dir, unpacked_tokenizer, write_json_atomic

TEXT = "Hello wörld — ok? 🙂 <|im_end|> tail"
MESSAGES = [
    {"role": "system", "content": "You are a pirate."},
    {"role": "user", "content": "Tell me more."},
]


def main() -> None:
    out = parse_out_dir()
    cases = []
    for family in ("qwen3", "llama2"):
        tok_dir = unpacked_tokenizer(family, out)
        tok = AutoTokenizer.from_pretrained(tok_dir)
        case = {"family": family, "dir": f"tokenizers/{family}", "text": TEXT,
                "text_ids": tok(TEXT)["input_ids"],
                "text_ids_no_special": tok(TEXT, add_special_tokens=False)["input_ids"]}
        if family == "qwen3":
            case["messages"] = MESSAGES
            case["chat_ids"] = tok.apply_chat_template(MESSAGES, add_generation_prompt=True)["input_ids"]
            case["chat_ids_no_thinking"] = tok.apply_chat_template(
                MESSAGES, add_generation_prompt=True, enable_thinking=False)["input_ids"]
        cases.append(case)
    write_json_atomic(out / "generate" / "tokenize.json", {"cases": cases})


if __name__ == "__main__":
    main()
