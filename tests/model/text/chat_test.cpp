// Chat renderers against transformers' apply_chat_template (fixtures from
// tools/oracle/fixtures_chat.py): rendered text byte for byte, token ids through
// load_tokenizer, assistant spans against `{% generation %}` blocks; plus
// hand-checked spans, family detection and the error messages.
#include "model/text/chat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/text/tokenizer.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using character::testing::fixture;
using character::testing::TempDir;
using ::testing::HasSubstr;
using Spans = std::vector<std::pair<std::size_t, std::size_t>>;

const nlohmann::json& oracle() {
  static const nlohmann::json data = [] {
    const auto path = fixture("chat/oracle_chat.json");
    return std::filesystem::exists(path) ? nlohmann::json::parse(read_file(path)) : nlohmann::json::object();
  }();
  return data;
}

std::vector<ChatMessage> messages_of(const nlohmann::json& c) {
  std::vector<ChatMessage> out;
  for (const auto& m : c["messages"]) out.push_back({m["role"], m["content"]});
  return out;
}

ChatOptions options_of(const nlohmann::json& c) {
  ChatOptions options;
  options.add_generation_prompt = c["add_generation_prompt"];
  if (!c["enable_thinking"].is_null()) options.enable_thinking = c["enable_thinking"].get<bool>();
  return options;
}

std::string case_label(const nlohmann::json& c) {
  return c["name"].get<std::string>() + " add_generation_prompt=" + (c["add_generation_prompt"] ? "1" : "0") +
         " enable_thinking=" + c["enable_thinking"].dump();
}

// A section of the oracle file; an empty one when the file or section is missing
// (the missing fixture has already failed the test).
const nlohmann::json& section(const std::string& key) {
  static const nlohmann::json empty;
  return oracle().contains(key) ? oracle()[key] : empty;
}

const nlohmann::json& family_cases(const std::string& family) {
  static const nlohmann::json empty = nlohmann::json::array();
  const auto& families = section("families");
  if (!families.contains(family)) {
    ADD_FAILURE() << "oracle_chat.json has no family " << family;
    return empty;
  }
  return families[family]["cases"];
}

ChatOptions without_generation_prompt() {
  ChatOptions options;
  options.add_generation_prompt = false;
  return options;
}

ChatOptions with_thinking(bool on) {
  ChatOptions options;
  options.enable_thinking = on;
  return options;
}

class ChatOracle : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatOracle, TextAndSpansMatchApplyChatTemplate) {
  const auto renderer = make_chat_renderer(GetParam());
  const auto& cases = family_cases(GetParam());
  ASSERT_GE(cases.size(), 24u);
  for (const auto& c : cases) {
    const auto rendered = renderer->render(messages_of(c), options_of(c));
    EXPECT_EQ(rendered.text, c["text"].get<std::string>()) << case_label(c);
    EXPECT_EQ(rendered.assistant_spans, c["assistant_spans"].get<Spans>()) << case_label(c);
  }
}

TEST_P(ChatOracle, TokenIdsMatchApplyChatTemplate) {
  const auto& families = section("families");
  ASSERT_TRUE(families.contains(GetParam()));
  // Loaded once per tokenizer folder: chatml and role_colon reuse qwen3's.
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  const auto folder = families[GetParam()]["tokenizer"].get<std::string>();
  if (!loaded.contains(folder)) loaded[folder] = load_tokenizer(fixture(folder));
  const auto& tokenizer = loaded[folder];
  const auto renderer = make_chat_renderer(GetParam());
  int compared = 0;
  for (const auto& c : family_cases(GetParam())) {
    // apply_chat_template(tokenize=True) encodes with add_special_tokens=False.
    const auto text = renderer->render(messages_of(c), options_of(c)).text;
    EXPECT_EQ(tokenizer->encode(text, /*add_special_tokens=*/false), c["ids"].get<std::vector<TokenId>>())
        << case_label(c);
    ++compared;
  }
  EXPECT_GE(compared, 24);
}

INSTANTIATE_TEST_SUITE_P(Families, ChatOracle, ::testing::Values("qwen3", "llama3", "llama3_1", "chatml", "role_colon"),
                         [](const auto& info) { return info.param; });

// Hand-checked: the span is what the model writes after its header, through the
// end-of-turn marker, and the qwen3 history turn loses its reasoning.
TEST(ChatSpans, Qwen3HistoryAndFinalTurn) {
  const auto r = make_chat_renderer("qwen3")->render(
      {{"user", "q1"}, {"assistant", "<think>r1</think>A1"}, {"user", "q2"}, {"assistant", "<think>r2</think>A2"}},
      without_generation_prompt());
  EXPECT_EQ(r.text,
            "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\nA2<|im_end|>\n");
  ASSERT_EQ(r.assistant_spans.size(), 2u);
  auto span = [&](int i) {
    return r.text.substr(r.assistant_spans[i].first, r.assistant_spans[i].second - r.assistant_spans[i].first);
  };
  EXPECT_EQ(span(0), "A1<|im_end|>");
  EXPECT_EQ(span(1), "<think>\nr2\n</think>\n\nA2<|im_end|>");
}

TEST(ChatSpans, EveryFamilyOneSpanPerAssistantTurn) {
  const std::vector<ChatMessage> chat = {
      {"system", "Be kind."}, {"user", "Hi"}, {"assistant", "Hello ☀"}, {"user", "Bye"}, {"assistant", "Bye!"}};
  const std::map<std::string, std::vector<std::string>> want = {
      {"qwen3", {"Hello ☀<|im_end|>", "<think>\n\n</think>\n\nBye!<|im_end|>"}},
      {"chatml", {"Hello ☀<|im_end|>", "Bye!<|im_end|>"}},
      {"llama3", {"Hello ☀<|eot_id|>", "Bye!<|eot_id|>"}},
      {"llama3_1", {"Hello ☀<|eot_id|>", "Bye!<|eot_id|>"}},
      {"role_colon", {" Hello ☀\n\n", " Bye!\n\n"}},
  };
  for (const auto& [family, spans] : want) {
    const auto r = make_chat_renderer(family)->render(chat, without_generation_prompt());
    std::vector<std::string> got;
    for (const auto& [b, e] : r.assistant_spans) got.push_back(r.text.substr(b, e - b));
    EXPECT_EQ(got, spans) << family;
  }
}

TEST(ChatRender, Qwen3ThinkingSwitchOnlyAffectsGenerationPrompt) {
  const auto qwen3 = make_chat_renderer("qwen3");
  const std::vector<ChatMessage> chat = {{"user", "Hi"}};
  EXPECT_EQ(qwen3->render(chat, {}).text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(qwen3->render(chat, with_thinking(true)).text, qwen3->render(chat, {}).text);
  EXPECT_EQ(qwen3->render(chat, with_thinking(false)).text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatRender, Llama31DateString) {
  ChatOptions options;
  options.date_string = "01 Jan 2025";
  const auto r = make_chat_renderer("llama3_1")->render({{"user", "Hi"}}, options);
  EXPECT_EQ(r.text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 01 Jan 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatRender, StopTokensAndStrings) {
  EXPECT_EQ(make_chat_renderer("qwen3")->stop_tokens(), (std::vector<std::string>{"<|im_end|>", "<|endoftext|>"}));
  EXPECT_EQ(make_chat_renderer("llama3")->stop_tokens(),
            (std::vector<std::string>{"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}));
  EXPECT_EQ(make_chat_renderer("chatml")->stop_tokens(), (std::vector<std::string>{"<|im_end|>"}));
  EXPECT_TRUE(make_chat_renderer("role_colon")->stop_tokens().empty());
  EXPECT_EQ(make_chat_renderer("role_colon")->stop_strings(), (std::vector<std::string>{"\n\nUser:", "\nUser:"}));
  for (const auto& family : supported_chat_families()) {
    EXPECT_EQ(make_chat_renderer(family)->family(), family);
  }
}

TEST(ChatErrors, UnknownFamilyNamesItAndListsSupported) {
  try {
    make_chat_renderer("nope");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'nope'"));
    for (const auto& family : {"qwen3", "llama3", "llama3_1", "chatml", "role_colon"}) {
      EXPECT_THAT(e.what(), HasSubstr(family));
    }
  }
}

TEST(ChatErrors, UnsupportedRoleAndEmptyConversation) {
  const auto renderer = make_chat_renderer("chatml");
  try {
    renderer->render({{"user", "x"}, {"tool", "y"}}, {});
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr("message 1 has role 'tool', expected system, user or assistant"));
  }
  EXPECT_THROW(renderer->render({}, {}), FormatError);
}

// Each oracle template in a model directory, in the three places transformers reads it from.
TEST(ChatDetect, FamiliesOfRealTemplates) {
  const auto& cases = section("detect");
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) {
    const auto tmpl = c["template"].get<std::string>();
    TempDir as_string, as_list, as_jinja;
    write_file_atomic(as_string / "tokenizer_config.json", nlohmann::json{{"chat_template", tmpl}}.dump());
    write_file_atomic(as_list / "tokenizer_config.json",
                      nlohmann::json{{"chat_template", nlohmann::json::array({{{"name", "tool_use"}, {"template", "x"}},
                                                                              {{"name", "default"}, {"template", tmpl}}})}}
                          .dump());
    write_file_atomic(as_jinja / "tokenizer_config.json", R"({"eos_token": "x"})");
    write_file_atomic(as_jinja / "chat_template.jinja", tmpl);
    for (const auto* dir : {&as_string, &as_list, &as_jinja}) {
      if (c["family"].is_null()) {
        EXPECT_THROW(detect_chat_family(dir->path()), ConfigError) << c["name"];
      } else {
        EXPECT_EQ(detect_chat_family(dir->path()), c["family"].get<std::string>()) << c["name"];
      }
    }
  }
}

TEST(ChatDetect, NoTemplateIsRoleColon) {
  TempDir empty, no_field, null_field;
  write_file_atomic(no_field / "tokenizer_config.json", R"({"eos_token": "</s>"})");
  write_file_atomic(null_field / "tokenizer_config.json", R"({"chat_template": null})");
  EXPECT_EQ(detect_chat_family(empty.path()), "role_colon");
  EXPECT_EQ(detect_chat_family(no_field.path()), "role_colon");
  EXPECT_EQ(detect_chat_family(null_field.path()), "role_colon");
}

TEST(ChatDetect, JinjaFileTakesPriorityOverConfig) {
  TempDir dir;
  write_file_atomic(dir / "tokenizer_config.json", R"({"chat_template": "<|start_header_id|>"})");
  write_file_atomic(dir / "chat_template.jinja", "{{ '<|im_start|>' }}");
  EXPECT_EQ(detect_chat_family(dir.path()), "chatml");
}

TEST(ChatDetect, BadConfigNamesFileAndField) {
  TempDir bad_json, bad_type, no_default;
  write_file_atomic(bad_json / "tokenizer_config.json", "{not json");
  write_file_atomic(bad_type / "tokenizer_config.json", R"({"chat_template": 3})");
  write_file_atomic(no_default / "tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "x"}]})");
  EXPECT_THROW(detect_chat_family(bad_json.path()), FormatError);
  try {
    detect_chat_family(bad_type.path());
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tokenizer_config.json: chat_template is number"));
  }
  try {
    detect_chat_family(no_default.path());
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"default\""));
  }
}

}  // namespace
}  // namespace character::model
