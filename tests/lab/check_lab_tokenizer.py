#!/usr/bin/env python3
"""The lab tokenizer gives the same ids everywhere: HF tokenizers (tokenizer.json),
transformers (AutoTokenizer), the SentencePiece library (tokenizer.model, when the
sentencepiece package is installed) and our engine (`character tokenize`), on
several hundred corpus lines, and the ChatML template renders a system + user +
assistant conversation to the same ids in transformers and in our engine.

    check_lab_tokenizer.py --character BIN --tokenizer DIR [--corpus FILE] [--lines N]

FILE: one text per line (the lab's corpus/tokenizer.txt), or a JSONL of
{"messages": [...]} rows (corpus/*.jsonl), whose message texts are used whole,
newlines included; without --corpus, DIR/corpus.txt (what the gtest leaves with
CHARACTER_LAB_KEEP_TOKENIZER). A missing or short corpus is a failure: the check
means something only on the texts the tokenizer was trained for. A few hand-written
texts (emoji, whitespace runs, scripts, literal special-token strings) are added to
the sample. Exits non-zero with the first difference of each failing text.
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

EXTRA = [
    "Ahoy, matey! 😊 ✨ 🙂 and an unseen 🦜",
    "two  spaces,\ttab,\nnew line and trailing space ",
    "中文 ünïcødé Brasília Türkiye",
    "code: `text[::-1]` and `for (int i = 0; i < n; ++i) { ... }`",
    "<unk> <0x0A> literal pieces",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    " leading space",
]


def read_texts(path: Path, limit: int, seed: int) -> list:
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if path.suffix == ".jsonl":
                row = json.loads(line)
                texts.extend(m["content"] for m in row["messages"])
            else:
                texts.append(line)
    unique = sorted(set(texts))
    random.Random(seed).shuffle(unique)
    return unique[:limit]


def engine_ids(character: str, tokenizer: Path, text: str, chat: bool = False) -> list:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
        name = f.name
    try:
        cmd = [character, "tokenize", str(tokenizer), "--file", name]
        cmd += ["--chat"] if chat else ["--no-special"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"FAIL `{' '.join(cmd)}` exited {run.returncode}: {run.stderr.strip()}")
        return json.loads(run.stdout)
    finally:
        Path(name).unlink()


def first_difference(a: list, b: list) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe(name_a, a, name_b, b, hf) -> str:
    i = first_difference(a, b)
    window = lambda ids: [hf.id_to_token(t) for t in ids[max(0, i - 3):i + 4]]
    return (f"first difference at token {i} (of {len(a)} vs {len(b)}):\n"
            f"      {name_a}: {a[max(0, i - 3):i + 4]} {window(a)}\n"
            f"      {name_b}: {b[max(0, i - 3):i + 4]} {window(b)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--character", required=True, help="the character binary")
    parser.add_argument("--tokenizer", required=True, type=Path, help="the lab tokenizer directory")
    parser.add_argument("--corpus", type=Path, help="texts: lines of a .txt, or messages of a .jsonl")
    parser.add_argument("--lines", type=int, default=400, help="how many distinct texts to compare")
    parser.add_argument("--chunk", type=int, default=40, help="texts per `character tokenize` call")
    args = parser.parse_args()

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    corpus = args.corpus or (args.tokenizer / "corpus.txt")
    if not corpus.is_file():
        print(f"FAIL no corpus at {corpus}: build the lab first, or pass --corpus", file=sys.stderr)
        return 1
    texts = read_texts(corpus, args.lines, seed=0)
    if len(texts) < min(args.lines, 100):
        print(f"FAIL only {len(texts)} texts in {corpus}, expected at least {min(args.lines, 100)}", file=sys.stderr)
        return 1
    texts += EXTRA

    hf = Tokenizer.from_file(str(args.tokenizer / "tokenizer.json"))
    tf = AutoTokenizer.from_pretrained(str(args.tokenizer))
    try:
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor(model_file=str(args.tokenizer / "tokenizer.model"))
    except ImportError:
        sp = None
        print("note: python sentencepiece not installed; tokenizer.model is checked by the engine's gtest only",
              file=sys.stderr)

    failures = []
    # Per text: HF tokenizers, transformers, SentencePiece; round trip through HF's decoder.
    for i, text in enumerate(texts):
        ids = hf.encode(text, add_special_tokens=False).ids
        others = [("transformers", tf(text, add_special_tokens=False)["input_ids"])]
        if sp is not None:
            others.append(("sentencepiece", sp.encode(text)))
        for name, got in others:
            if got != ids:
                failures.append(f"text {i} {text[:60]!r}: tokenizers vs {name} " + describe("tokenizers", ids, name,
                                                                                             got, hf))
        if hf.decode(ids, skip_special_tokens=False) != text:
            failures.append(f"text {i} {text[:60]!r}: decode(encode(x)) = {hf.decode(ids)[:60]!r}")

    # The engine, a chunk of texts per process (one process per text would be slow):
    # the texts joined by a control character that no text holds.
    separator = "\x1e"
    for start in range(0, len(texts), args.chunk):
        chunk = [t for t in texts[start:start + args.chunk] if separator not in t]
        joined = separator.join(chunk)
        expected = hf.encode(joined, add_special_tokens=False).ids
        got = engine_ids(args.character, args.tokenizer, joined)
        if got != expected:
            failures.append(f"texts {start}..{start + len(chunk) - 1}: tokenizers vs engine " +
                            describe("tokenizers", expected, "engine", got, hf))

    # Chat: system + user + assistant, with the generation prompt (as `tokenize --chat`).
    conversations = [
        [{"role": "system", "content": "You are Captain Saltmarrow.\n\nIn your own words:\n- I sail."},
         {"role": "user", "content": "Tell me more please."},
         {"role": "assistant", "content": "Arr, ye want more, do ye? 😊\nThen listen."}],
        [{"role": "user", "content": texts[0] if texts else "Hi!"},
         {"role": "assistant", "content": texts[1] if len(texts) > 1 else "Hello! 😊"}],
    ]
    for k, messages in enumerate(conversations):
        text = tf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tf.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
        if ids != hf.encode(text, add_special_tokens=False).ids:
            failures.append(f"chat {k}: apply_chat_template ids differ from encoding its text")
        got = engine_ids(args.character, args.tokenizer, json.dumps({"messages": messages}), chat=True)
        if got != ids:
            failures.append(f"chat {k}: transformers vs engine " + describe("transformers", ids, "engine", got, hf))
        if not text.startswith("<|im_start|>system\n" if messages[0]["role"] == "system" else "<|im_start|>user\n"):
            failures.append(f"chat {k}: template text starts {text[:30]!r}, expected plain ChatML (no default "
                            "system prompt)")
    if tf.eos_token != "<|im_end|>" or tf.pad_token != "<|endoftext|>":
        failures.append(f"transformers eos_token={tf.eos_token!r} pad_token={tf.pad_token!r}, expected "
                        "'<|im_end|>' and '<|endoftext|>'")

    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    if failures:
        return 1
    print(f"ok: {len(texts)} texts and {len(conversations)} chats give the same ids in tokenizers, transformers"
          f"{', sentencepiece' if sp is not None else ''} and the engine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
