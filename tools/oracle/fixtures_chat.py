"""Reference chat renderings for model/text/chat*.cpp, from transformers' apply_chat_template.

Writes <out>/chat/oracle_chat.json: for every family and conversation, with and without the
generation prompt (and, for qwen3, enable_thinking unset/True/False), the rendered text, its
token ids (tokenize=True, i.e. add_special_tokens=False) and the assistant spans.

Templates: qwen3 and llama3 are the real ones in tests/fixtures/tokenizers/{qwen3,llama3_1};
llama3_1 is the Llama 3.1 Instruct template as TRL stores it (trl/chat_templates/llama3_1.jinja);
chatml and role_colon are defined below. Spans come from `{% generation %}` blocks
(transformers' return_assistant_tokens_mask machinery) in tagged copies of each template whose
text is asserted identical to the original's for every case.
"""
from pathlib import Path

import trl
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import render_jinja_template

from oracle_common import parse_out_dir, unpacked_tokenizer, write_json_atomic

# The ChatML template as transformers documents it (chat_templating.md) and many models ship it.
CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TAGGED = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Role-colon format for models without a template, as tinker-cookbook's RoleColonRenderer:
# "{Role}: {content}\n\n" per message, generation prompt "Assistant:" (the model writes the
# leading space), generation stops at "\n\nUser:".
ROLE_COLON = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize + ': ' + message['content'] + '\n\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
ROLE_COLON_TAGGED = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ 'Assistant:' }}{% generation %}{{ ' ' + message['content'] + '\n\n' }}{% endgeneration %}"
    "{% else %}"
    "{{ message['role'] | capitalize + ': ' + message['content'] + '\n\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# The Qwen3 template without tools, with the assistant's text and <|im_end|> in a generation
# block (the "\n" after <|im_end|> is a separator the model never writes, so it stays out).
QWEN3_TAGGED = """
{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if '</think>' in message.content %}
            {%- set content = message.content.split('</think>')[-1].lstrip('\n') %}
            {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
        {%- endif %}
        {{- '<|im_start|>' + message.role + '\n' }}
        {%- generation %}
        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}
            {{- '<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
        {%- else %}
            {{- content }}
        {%- endif %}
        {{- '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

# The Llama 3.1 template without tools, generation-tagged like TRL's llama3_training.jinja.
LLAMA3_1_TAGGED = """{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if message['role'] == 'assistant' %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
        {%- generation %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endgeneration %}
    {%- else %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""

TRL_TEMPLATES = Path(trl.__file__).parent / "chat_templates"


def S(text):
    return {"role": "system", "content": text}


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


LONG = " ".join(f"Sentence {i}: the quick brown fox jumps over the lazy dog." for i in range(40))

CONVERSATIONS = {
    "single_user": [U("Hello!")],
    "system_user": [S("You are a pirate."), U("Who are you?")],
    "system_user_assistant": [S("You are a pirate."), U("Who are you?"), A("Arr, I be Captain Flint.")],
    "multi_turn_no_system": [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke."),
                             A("Why did the chicken cross the road?"), U("Why?")],
    "multi_turn_system_ends_assistant": [S("Be brief."), U("2+2?"), A("4"), U("3+3?"), A("6")],
    "unicode": [S("Tu es un assistant. 你是助手。"), U("Ünïcödé — 日本語 🏴‍☠️ ok?"), A("Ça va! 你好 👋🏽")],
    "empty_content": [S(""), U(""), A("")],
    "whitespace_edges": [S("  sys  "), U("  padded user \n"), A("\n\nleading newlines, trailing spaces   \n"),
                         U("\u3000ideographic\u00a0"), A("\x85\t tabbed \x1c\u2028")],
    "long_content": [U(LONG), A(LONG[::-1])],
    "special_token_text": [U("What does <|im_end|> or <|eot_id|> mean?"), A("They end a turn.")],
    "system_mid_conversation": [U("Start."), S("New rule: answer in French."), U("Hello?"), A("Bonjour.")],
    "consecutive_users": [U("First."), U("Second."), A("Both received.")],
    "assistant_only": [A("I speak first.")],
    "multiline_code": [U("Write code:\n```py\nprint(1)\n```\n"), A("```python\nfor i in range(3):\n    print(i)\n```")],
    # Reasoning blocks: the qwen3 template keeps them only after the last user query.
    "think_final_turn": [U("What is 7*6?"), A("<think>\n7*6 = 42.\n</think>\n\n42")],
    "think_history_stripped": [U("q1"), A("<think>r1</think>A1"), U("q2"), A("<think>\nr2\n</think>\n\nA2")],
    "think_two_after_query": [U("q"), A("<think>x</think>y"), A("plain last")],
    "no_think_two_after_query": [U("q"), A("first reply"), A("second reply")],
    "think_nested_close": [U("q"), A("<think>a</think>b</think>c")],
    "think_close_only": [U("q"), A("abc</think>\n\ndef"), U("again")],
    "think_tool_response_user": [U("q"), A("<think>r</think>a1"), U("<tool_response>ok</tool_response>")],
    "think_empty_block": [S("s"), U("q"), A("<think>\n\n</think>\n\nanswer"), U("q2"), A("<think></think>x")],
}

FAMILIES = {
    # family: (tokenizer folder, template or None for the tokenizer's own, tagged template)
    "qwen3": ("qwen3", None, QWEN3_TAGGED),
    "llama3": ("llama3_1", None, (TRL_TEMPLATES / "llama3_training.jinja").read_text()),
    "llama3_1": ("llama3_1", (TRL_TEMPLATES / "llama3_1.jinja").read_text(), LLAMA3_1_TAGGED),
    "chatml": ("qwen3", CHATML, CHATML_TAGGED),
    "role_colon": ("qwen3", ROLE_COLON, ROLE_COLON_TAGGED),
}


def byte_spans(text, char_spans):
    """Python character offsets → UTF-8 byte offsets, as the C++ side counts."""
    return [[len(text[:b].encode()), len(text[:e].encode())] for b, e in char_spans]


def render_case(tok, template, tagged, messages, add_generation_prompt, extra):
    kwargs = dict(add_generation_prompt=add_generation_prompt, **extra)
    text = tok.apply_chat_template(messages, chat_template=template, tokenize=False, **kwargs)
    ids = tok.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=False, **kwargs)
    # The tagged copy must render the same text, or its spans would describe another string.
    (tagged_text,), (char_spans,) = render_jinja_template(
        conversations=[messages], chat_template=tagged, return_assistant_tokens_mask=True,
        **{**tok.special_tokens_map, **kwargs})
    assert tagged_text == text, f"tagged template diverges:\n{tagged_text!r}\n!=\n{text!r}"
    masks = tok.apply_chat_template(messages, chat_template=tagged, tokenize=True, return_dict=True,
                                    return_assistant_tokens_mask=True, **kwargs)
    assert masks["input_ids"] == ids
    # Whether every span starts and ends on a token boundary. Not always: content that opens
    # with "\n" merges with the header's "\n" into one token, which transformers' mask
    # then counts as assistant-written (char_to_token of the span's first character).
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    starts, ends = {b for b, _ in offsets}, {e for _, e in offsets}
    aligned = all(b in starts and e in ends for b, e in char_spans)
    return {
        "text": text,
        "ids": ids,
        "assistant_spans": byte_spans(text, char_spans),
        "assistant_masks": masks["assistant_masks"],
        "spans_token_aligned": aligned,
    }


def detect_cases(out):
    """Templates as model directories ship them, with the family that renders them exactly.

    Qwen3-Instruct-2507 has no reasoning handling; for system/user/assistant turns it renders
    byte for byte as CHATML, which is asserted here. Qwen2.5 adds a default system prompt that
    no family renders, so it must be refused.
    """
    qwen3_tok = AutoTokenizer.from_pretrained(str(unpacked_tokenizer("qwen3", out)))
    llama_tok = AutoTokenizer.from_pretrained(str(unpacked_tokenizer("llama3_1", out)))
    instruct_2507 = (TRL_TEMPLATES / "qwen3_instruct_2507.jinja").read_text()
    for messages in CONVERSATIONS.values():
        for add_generation_prompt in (True, False):
            kwargs = dict(tokenize=False, add_generation_prompt=add_generation_prompt)
            assert (qwen3_tok.apply_chat_template(messages, chat_template=instruct_2507, **kwargs)
                    == qwen3_tok.apply_chat_template(messages, chat_template=CHATML, **kwargs))
    return [
        {"name": "qwen3", "template": qwen3_tok.chat_template, "family": "qwen3"},
        {"name": "llama3", "template": llama_tok.chat_template, "family": "llama3"},
        {"name": "llama3_1", "template": (TRL_TEMPLATES / "llama3_1.jinja").read_text(), "family": "llama3_1"},
        {"name": "llama3_2", "template": (TRL_TEMPLATES / "llama3_2.jinja").read_text(), "family": "llama3_1"},
        {"name": "qwen3_instruct_2507", "template": instruct_2507, "family": "chatml"},
        {"name": "chatml", "template": CHATML, "family": "chatml"},
        {"name": "qwen2_5", "template": (TRL_TEMPLATES / "qwen2_5.jinja").read_text(), "family": None},
        {"name": "gemma", "template": (TRL_TEMPLATES / "gemma.jinja").read_text(), "family": None},
    ]


def main():
    out = parse_out_dir()
    result = {"families": {}, "detect": detect_cases(out)}
    for family, (tok_name, template, tagged) in FAMILIES.items():
        tok_dir = unpacked_tokenizer(tok_name, out)
        tok = AutoTokenizer.from_pretrained(str(tok_dir))
        if template is None:
            template = tok.chat_template
        thinking = [None, True, False] if family == "qwen3" else [None]
        cases = []
        for name, messages in CONVERSATIONS.items():
            for add_generation_prompt in (True, False):
                for enable_thinking in thinking:
                    extra = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
                    case = {"name": name, "messages": messages, "add_generation_prompt": add_generation_prompt,
                            "enable_thinking": enable_thinking}
                    case.update(render_case(tok, template, tagged, messages, add_generation_prompt, extra))
                    cases.append(case)
        result["families"][family] = {"tokenizer": f"tokenizers/{tok_name}", "cases": cases}
        unaligned = sum(not c["spans_token_aligned"] for c in cases)
        print(f"chat oracle: {family}: {len(cases)} cases, {unaligned} with a span not on token boundaries")
    write_json_atomic(out / "chat" / "oracle_chat.json", result)


if __name__ == "__main__":
    main()
