// Training rows from JSONL: parsing with errors that name file:line and the field,
// rendering through the chat renderer, tokenization in parallel (oneTBB) with
// results kept in file order. Token ids and masks mirror TRL 1.16
// (sft_trainer.py / dpo_trainer.py tokenize_fn). Batching: train_data_batches.cpp.
#include "lora/train_data.h"

#include <nlohmann/json.hpp>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::lora {
namespace {

using Json = nlohmann::json;
using Ids = std::vector<int64_t>;

// ---------------------------------------------------------------- JSONL parsing

struct JsonlRow {
  std::string where;  // "file.jsonl:12", prefix of every error about the row
  Json value;
};

// A JSON value as an error message shows it: strings quoted and shortened.
std::string describe(const Json& value) {
  if (value.is_null()) return "null";
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  if (value.is_string()) return "the string " + text;
  if (value.is_object() || value.is_array()) return std::string("an ") + value.type_name() + " " + text;
  return std::string("the ") + value.type_name() + " " + text;
}

[[noreturn]] void bad_field(const std::string& where, const std::string& field, const std::string& found,
                            const std::string& expected) {
  throw FormatError(where + ": " + field + ": found " + found + ", expected " + expected);
}

// Every non-blank line of the file as a JSON object. A last line without '\n' is a
// row like any other (editors write files that way), unlike a metrics log's torn tail.
std::vector<JsonlRow> read_jsonl_objects(const std::filesystem::path& path, const std::string& expected_object) {
  const std::string content = read_file(path);
  const std::string file = path.string();
  std::vector<JsonlRow> rows;
  std::size_t begin = 0;
  for (int64_t line_number = 1; begin < content.size(); ++line_number) {
    std::size_t end = content.find('\n', begin);
    if (end == std::string::npos) end = content.size();
    std::string_view line(content.data() + begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    std::string where = file + ":" + std::to_string(line_number);
    std::string why;
    auto parsed = try_parse_json(line, &why);  // bounded depth (base/json_read.h)
    if (!parsed) throw FormatError(where + ": " + why + ", expected one JSON object per line: " + expected_object);
    Json value = std::move(*parsed);
    if (!value.is_object()) throw FormatError(where + ": found " + describe(value) + ", expected " + expected_object);
    rows.push_back({std::move(where), std::move(value)});
  }
  if (rows.empty()) throw FormatError(file + ": no rows, expected one JSON object per line: " + expected_object);
  return rows;
}

const Json& required(const JsonlRow& row, const std::string& field, const std::string& expected) {
  const auto it = row.value.find(field);
  if (it == row.value.end()) bad_field(row.where, field, "nothing (the field is missing)", expected);
  return *it;
}

constexpr const char* kRoles = "one of \"system\", \"user\", \"assistant\"";

model::ChatMessage parse_message(const Json& m, const std::string& where, const std::string& field) {
  if (!m.is_object()) bad_field(where, field, describe(m), "an object {\"role\": ..., \"content\": ...}");
  const auto role = m.find("role");
  if (role == m.end()) bad_field(where, field + ".role", "nothing (the field is missing)", kRoles);
  if (!role->is_string() || (*role != "system" && *role != "user" && *role != "assistant")) {
    bad_field(where, field + ".role", describe(*role), kRoles);
  }
  const auto content = m.find("content");
  if (content == m.end()) bad_field(where, field + ".content", "nothing (the field is missing)", "a string");
  if (!content->is_string()) bad_field(where, field + ".content", describe(*content), "a string");
  return {role->get<std::string>(), content->get<std::string>()};
}

std::vector<model::ChatMessage> parse_message_list(const Json& list, const std::string& where,
                                                   const std::string& field, const std::string& expected) {
  if (!list.is_array() || list.empty()) bad_field(where, field, describe(list), expected);
  std::vector<model::ChatMessage> messages;
  for (std::size_t i = 0; i < list.size(); ++i) {
    messages.push_back(parse_message(list[i], where, field + "[" + std::to_string(i) + "]"));
  }
  return messages;
}

// ---------------------------------------------------------------- tokenization

Ids encode(const model::Tokenizer& tokenizer, std::string_view text) {
  const auto ids = tokenizer.encode(text, /*add_special_tokens=*/false);  // as apply_chat_template(tokenize=True)
  return {ids.begin(), ids.end()};
}

std::size_t common_prefix_length(const Ids& a, const Ids& b) {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return static_cast<std::size_t>(ia - a.begin());
}

// Token ranges [begin, end) of byte spans of `text` (ids = its encoding), as
// transformers' return_assistant_tokens_mask computes them: from the token holding
// the span's first byte through the token holding its last byte
// (tokenization_utils_base.py, char_to_token(start) .. char_to_token(end - 1)).
// Our tokenizers return no offsets, so the cut positions are found by encoding:
//  - fast path: the text cut at every span boundary and encoded piece by piece gives
//    exactly `ids` (the usual case: boundaries sit at special tokens and pre-token
//    breaks); each boundary is then a token boundary at the pieces' running count.
//  - otherwise, per boundary c: encode text[:c]; if it is a prefix of `ids`, c is a
//    token boundary; if not, the first differing token straddles c (e.g. the
//    header's "\n" merged with content that opens with "\n") and belongs to the span,
//    as char_to_token includes it.
std::vector<std::pair<int64_t, int64_t>> span_token_ranges(
    const model::Tokenizer& tokenizer, std::string_view text, const Ids& ids,
    const std::vector<std::pair<std::size_t, std::size_t>>& spans) {
  std::vector<std::size_t> cuts;  // begin0, end0, begin1, end1, ...
  for (const auto& [begin, end] : spans) {
    cuts.push_back(begin);
    cuts.push_back(end);
  }
  std::vector<int64_t> token_at(cuts.size());
  Ids joined;
  std::size_t previous = 0;
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    if (cuts[i] > previous) {
      const Ids piece = encode(tokenizer, text.substr(previous, cuts[i] - previous));
      joined.insert(joined.end(), piece.begin(), piece.end());
      previous = cuts[i];
    }
    token_at[i] = static_cast<int64_t>(joined.size());
  }
  const Ids tail = encode(tokenizer, text.substr(previous));
  joined.insert(joined.end(), tail.begin(), tail.end());

  if (joined != ids) {
    for (std::size_t i = 0; i < cuts.size(); ++i) {
      const Ids prefix = encode(tokenizer, text.substr(0, cuts[i]));
      const std::size_t k = common_prefix_length(prefix, ids);
      const bool is_end = i % 2 == 1;
      const std::size_t index = k == prefix.size() ? k : (is_end ? k + 1 : k);
      token_at[i] = static_cast<int64_t>(std::min(index, ids.size()));
    }
  }
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (std::size_t i = 0; i < cuts.size(); i += 2) {
    ranges.emplace_back(token_at[i], std::max(token_at[i], token_at[i + 1]));
  }
  return ranges;
}

// Runs work(i) for i in [0, n) on oneTBB's pool. Each row writes only its own slot,
// so the output order is the file order; a failing row's error is rethrown after
// the loop for the first failing row, so which error surfaces never depends on timing.
template <class Work>
void for_each_row(std::size_t n, const Work& work) {
  std::vector<std::exception_ptr> errors(n);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n), [&](const tbb::blocked_range<std::size_t>& range) {
    for (std::size_t i = range.begin(); i != range.end(); ++i) {
      try {
        work(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  });
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

// Renders with errors prefixed by the row's file:line (the renderer knows neither).
model::RenderedChat render_row(const model::ChatRenderer& renderer, const std::vector<model::ChatMessage>& messages,
                               const model::ChatOptions& options, const std::string& where) {
  try {
    return renderer.render(messages, options);
  } catch (const FormatError& e) {
    throw FormatError(where + ": " + e.what());
  }
}

struct SftRow {
  std::string where;
  std::vector<model::ChatMessage> messages;
};

constexpr const char* kSftRow = "{\"messages\": [{\"role\": ..., \"content\": ...}, ...]}";

std::optional<TokenizedSequence> tokenize_sft_row(const SftRow& row, const model::Tokenizer& tokenizer,
                                                  const model::ChatRenderer& renderer, const SftOptions& options,
                                                  bool& truncated) {
  model::ChatOptions chat = options.chat;
  chat.add_generation_prompt = false;
  const model::RenderedChat rendered = render_row(renderer, row.messages, chat, row.where);
  TokenizedSequence seq;
  seq.ids = encode(tokenizer, rendered.text);
  seq.loss_mask.assign(seq.ids.size(), 0);
  auto spans = rendered.assistant_spans;
  if (options.last_assistant_only && !spans.empty()) spans.erase(spans.begin(), spans.end() - 1);
  for (const auto& [begin, end] : span_token_ranges(tokenizer, rendered.text, seq.ids, spans)) {
    std::fill(seq.loss_mask.begin() + begin, seq.loss_mask.begin() + end, uint8_t{1});
  }
  // Keep the start, as TRL's truncation_mode="keep_start".
  truncated = static_cast<int64_t>(seq.ids.size()) > options.max_length;
  if (truncated) {
    seq.ids.resize(options.max_length);
    seq.loss_mask.resize(options.max_length);
  }
  if (std::find(seq.loss_mask.begin(), seq.loss_mask.end(), 1) == seq.loss_mask.end()) return std::nullopt;
  return seq;
}

// ---------------------------------------------------------------- DPO

struct DpoRow {
  std::string where;
  std::vector<model::ChatMessage> prompt, chosen, rejected;
};

constexpr const char* kDpoRow =
    "{\"prompt\": string or message list, \"chosen\": string or message list, \"rejected\": string or message list}";

std::vector<model::ChatMessage> parse_dpo_field(const JsonlRow& row, const std::string& field) {
  const bool is_prompt = field == "prompt";
  const std::string expected =
      is_prompt ? "a string (one user message) or a non-empty list of {\"role\", \"content\"} messages"
                : "a string (the assistant's reply) or a non-empty list of assistant messages";
  const Json& value = required(row, field, expected);
  if (value.is_string()) return {{is_prompt ? "user" : "assistant", value.get<std::string>()}};
  auto messages = parse_message_list(value, row.where, field, expected);
  if (!is_prompt) {
    for (std::size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].role != "assistant") {
        bad_field(row.where, field + "[" + std::to_string(i) + "].role", "\"" + messages[i].role + "\"",
                  "\"assistant\" (" + field + " holds the assistant's reply to the prompt)");
      }
    }
  }
  return messages;
}

// TRL's DPO tokenize_fn: the prompt with its generation prompt, prompt+chosen and
// prompt+rejected as full conversations; the completion starts where the prompt's
// ids and both full conversations' ids stop agreeing (common_prefix_length), which
// is the prompt's end whenever the template renders the prompt as a prefix.
std::optional<DpoPair> tokenize_dpo_row(const DpoRow& row, const model::Tokenizer& tokenizer,
                                        const model::ChatRenderer& renderer, const DpoDataOptions& options,
                                        bool& truncated) {
  model::ChatOptions with_prompt = options.chat;
  with_prompt.add_generation_prompt = true;
  model::ChatOptions full = options.chat;
  full.add_generation_prompt = false;
  auto conversation = [&](const std::vector<model::ChatMessage>& completion) {
    std::vector<model::ChatMessage> messages = row.prompt;
    messages.insert(messages.end(), completion.begin(), completion.end());
    return encode(tokenizer, render_row(renderer, messages, full, row.where).text);
  };
  const Ids prompt = encode(tokenizer, render_row(renderer, row.prompt, with_prompt, row.where).text);
  const Ids prompt_chosen = conversation(row.chosen);
  const Ids prompt_rejected = conversation(row.rejected);
  const std::size_t prompt_length =
      std::min(common_prefix_length(prompt, prompt_chosen), common_prefix_length(prompt, prompt_rejected));

  DpoPair pair;
  pair.prompt.assign(prompt.begin(), prompt.begin() + prompt_length);
  pair.chosen.assign(prompt_chosen.begin() + prompt_length, prompt_chosen.end());
  pair.rejected.assign(prompt_rejected.begin() + prompt_length, prompt_rejected.end());

  // Prompts keep their end (the part next to the reply), completions their start.
  truncated = false;
  const auto max_prompt = static_cast<std::size_t>(options.max_prompt_length);
  if (pair.prompt.size() > max_prompt) {
    pair.prompt.erase(pair.prompt.begin(), pair.prompt.end() - max_prompt);
    truncated = true;
  }
  const std::size_t room = static_cast<std::size_t>(options.max_length) - pair.prompt.size();
  for (Ids* completion : {&pair.chosen, &pair.rejected}) {
    if (completion->size() > room) {
      completion->resize(room);
      truncated = true;
    }
  }
  if (pair.chosen.empty() || pair.rejected.empty()) return std::nullopt;
  return pair;
}

}  // namespace

// ---------------------------------------------------------------- public API

SftDataset load_sft_jsonl(const std::filesystem::path& path, const model::Tokenizer& tokenizer,
                          const model::ChatRenderer& renderer, const SftOptions& options) {
  if (options.max_length < 1) {
    throw ConfigError("SFT max_length=" + std::to_string(options.max_length) + ", expected >= 1");
  }
  std::vector<SftRow> rows;
  for (const JsonlRow& row : read_jsonl_objects(path, kSftRow)) {
    const Json& list = required(row, "messages", "a non-empty list of {\"role\", \"content\"} messages");
    auto messages = parse_message_list(list, row.where, "messages", "a non-empty list of {\"role\", \"content\"} messages");
    if (std::none_of(messages.begin(), messages.end(), [](const auto& m) { return m.role == "assistant"; })) {
      bad_field(row.where, "messages", "no assistant message", "at least one (SFT trains on assistant messages)");
    }
    rows.push_back({row.where, std::move(messages)});
  }

  std::vector<std::optional<TokenizedSequence>> sequences(rows.size());
  std::vector<uint8_t> truncated(rows.size(), 0);
  for_each_row(rows.size(), [&](std::size_t i) {
    bool cut = false;
    sequences[i] = tokenize_sft_row(rows[i], tokenizer, renderer, options, cut);
    truncated[i] = cut;
  });
  SftDataset data;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    data.truncated += truncated[i];
    if (sequences[i]) {
      data.rows.push_back(std::move(*sequences[i]));
    } else {
      ++data.skipped;
    }
  }
  return data;
}

DpoDataset load_dpo_jsonl(const std::filesystem::path& path, const model::Tokenizer& tokenizer,
                          const model::ChatRenderer& renderer, const DpoDataOptions& options) {
  if (options.max_prompt_length < 1 || options.max_length <= options.max_prompt_length) {
    throw ConfigError("DPO max_length=" + std::to_string(options.max_length) + ", max_prompt_length=" +
                      std::to_string(options.max_prompt_length) +
                      ", expected 1 <= max_prompt_length < max_length (the completion needs room)");
  }
  std::vector<DpoRow> rows;
  for (const JsonlRow& row : read_jsonl_objects(path, kDpoRow)) {
    rows.push_back({row.where, parse_dpo_field(row, "prompt"), parse_dpo_field(row, "chosen"),
                    parse_dpo_field(row, "rejected")});
  }

  std::vector<std::optional<DpoPair>> pairs(rows.size());
  std::vector<uint8_t> truncated(rows.size(), 0);
  for_each_row(rows.size(), [&](std::size_t i) {
    bool cut = false;
    pairs[i] = tokenize_dpo_row(rows[i], tokenizer, renderer, options, cut);
    truncated[i] = cut;
  });
  DpoDataset data;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    data.truncated += truncated[i];
    if (pairs[i]) {
      data.rows.push_back(std::move(*pairs[i]));
    } else {
      ++data.skipped;
    }
  }
  return data;
}

}  // namespace character::lora
