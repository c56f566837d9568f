// Bad tokenizer files: each must fail with a FormatError whose message names the
// file, the field or type that is wrong and what is supported.
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/text/tokenizer.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A tiny but complete byte-level BPE tokenizer.json; tests break one part of it.
json tiny_tokenizer() {
  return json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false,
              "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": ["a b"]}})");
}

std::string load_error(const std::filesystem::path& dir) {
  try {
    load_tokenizer(dir);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "<no FormatError>";
}

std::string error_for(const json& tokenizer_json) {
  character::testing::TempDir dir;
  write_file_atomic(dir / "tokenizer.json", tokenizer_json.dump());
  const std::string message = load_error(dir.path());
  return message;
}

TEST(TokenizerErrors, TinyTokenizerLoadsAndMerges) {
  character::testing::TempDir dir;
  write_file_atomic(dir / "tokenizer.json", tiny_tokenizer().dump());
  const auto tokenizer = load_tokenizer(dir.path());
  EXPECT_EQ(tokenizer->encode("ab a"), (std::vector<TokenId>{2, 3, 0}));
  EXPECT_EQ(tokenizer->decode(std::vector<TokenId>{2, 3, 0}), "ab a");
}

// tokenizer_config.json's added_tokens_decoder adds tokens tokenizer.json lacks, and
// special-token names may be strings or {"content": ...} objects.
TEST(TokenizerConfig, AddedTokensDecoderAndSpecialTokenObjects) {
  character::testing::TempDir dir;
  write_file_atomic(dir / "tokenizer.json", tiny_tokenizer().dump());
  write_file_atomic(dir / "tokenizer_config.json", R"({
    "added_tokens_decoder": {"4": {"content": "<x>", "special": true, "normalized": false},
                             "5": {"content": "yy", "special": false, "normalized": false}},
    "bos_token": {"content": "<x>", "__type": "AddedToken"}, "eos_token": "yy", "pad_token": null})");
  const auto tokenizer = load_tokenizer(dir.path());
  EXPECT_EQ(tokenizer->encode("ab<x>yyb"), (std::vector<TokenId>{2, 4, 5, 1}));
  EXPECT_EQ(tokenizer->bos_id, 4);
  EXPECT_EQ(tokenizer->eos_id, 5);
  EXPECT_FALSE(tokenizer->pad_id.has_value());
  EXPECT_TRUE(tokenizer->is_special(4));
  EXPECT_FALSE(tokenizer->is_special(5));
  EXPECT_EQ(tokenizer->vocab_size(), 6);
  EXPECT_EQ(tokenizer->decode(std::vector<TokenId>{2, 4, 5}, /*skip_special_tokens=*/false), "ab<x>yy");
  EXPECT_EQ(tokenizer->decode(std::vector<TokenId>{2, 4, 5}, /*skip_special_tokens=*/true), "abyy");
}

TEST(TokenizerErrors, UnsupportedModelTypeIsNamed) {
  json j = tiny_tokenizer();
  j["model"]["type"] = "WordPiece";
  EXPECT_THAT(error_for(j), AllOf(HasSubstr("tokenizer.json"), HasSubstr("model type \"WordPiece\" is not supported"),
                                  HasSubstr("supported: BPE")));
}

TEST(TokenizerErrors, UnsupportedPreTokenizerIsNamed) {
  json j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({{{"type", "Whitespace"}}})}};
  EXPECT_THAT(error_for(j), AllOf(HasSubstr("tokenizer.json"),
                                  HasSubstr("pre_tokenizer type \"Whitespace\" is not supported (supported: "),
                                  HasSubstr("Split")));
}

TEST(TokenizerErrors, UnsupportedNormalizerDecoderAndPostProcessorAreNamed) {
  json j = tiny_tokenizer();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  EXPECT_THAT(error_for(j), HasSubstr("normalizer type \"BertNormalizer\" is not supported (supported: "));
  j = tiny_tokenizer();
  j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  EXPECT_THAT(error_for(j), HasSubstr("decoder type \"WordPiece\" is not supported (supported: "));
  j = tiny_tokenizer();
  j["post_processor"] = {{"type", "BertProcessing"}};
  EXPECT_THAT(error_for(j), HasSubstr("post_processor type \"BertProcessing\" is not supported (supported: "));
}

TEST(TokenizerErrors, MergeWithUnknownTokenIsNamed) {
  json j = tiny_tokenizer();
  j["model"]["merges"] = json::array({"a c"});
  EXPECT_THAT(error_for(j), AllOf(HasSubstr("model.merges[0]"), HasSubstr("\"c\""), HasSubstr("not in model.vocab")));
}

TEST(TokenizerErrors, BadRegexIsNamed) {
  json j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"},
                        {"invert", false}};
  EXPECT_THAT(error_for(j), AllOf(HasSubstr("regex \"(unclosed\" does not compile")));
}

TEST(TokenizerErrors, MalformedJsonIsFormatError) {
  character::testing::TempDir dir;
  write_file_atomic(dir / "tokenizer.json", "{\"model\": {\"type\": \"BPE\",");
  EXPECT_THAT(load_error(dir.path()), AllOf(HasSubstr("tokenizer.json"), HasSubstr("not valid JSON")));
  write_file_atomic(dir / "tokenizer.json", "[1, 2, 3]");
  EXPECT_THAT(load_error(dir.path()), HasSubstr("expected a JSON object with a \"model\" section"));
  write_file_atomic(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})");
  EXPECT_THAT(load_error(dir.path()), AllOf(HasSubstr("tokenizer.json"), HasSubstr("model.vocab contains a string"),
                                            HasSubstr("expected token → integer id entries")));
  write_file_atomic(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}})");
  EXPECT_THAT(load_error(dir.path()), AllOf(HasSubstr("model.merges[0] is \"ab\""), HasSubstr("expected \"left right\"")));
  write_file_atomic(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}}})");
  EXPECT_THAT(load_error(dir.path()), HasSubstr("model.merges is missing or not an array"));
  json j = tiny_tokenizer();
  j["added_tokens"] = json::array({{{"id", "seven"}, {"content", "<x>"}}});
  EXPECT_THAT(error_for(j), AllOf(HasSubstr("tokenizer.json"), HasSubstr("unexpected structure")));
}

TEST(TokenizerErrors, MissingFilesNameTheDirectoryAndBothFiles) {
  character::testing::TempDir dir;
  EXPECT_THAT(load_error(dir.path()), AllOf(HasSubstr(dir.path().string()), HasSubstr("tokenizer.json"),
                                            HasSubstr("tokenizer.model")));
}

TEST(TokenizerErrors, BadTokenizerConfigIsNamed) {
  character::testing::TempDir dir;
  write_file_atomic(dir / "tokenizer.json", tiny_tokenizer().dump());
  write_file_atomic(dir / "tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_THAT(load_error(dir.path()),
              AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("bos_token \"<s>\" is not in the tokenizer's vocabulary")));
  write_file_atomic(dir / "tokenizer_config.json", R"({"eos_token": 7})");
  EXPECT_THAT(load_error(dir.path()), AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("eos_token is 7"),
                                            HasSubstr("expected a string, null or an object")));
  write_file_atomic(dir / "tokenizer_config.json", "{oops");
  EXPECT_THAT(load_error(dir.path()), AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("not valid JSON")));
}

TEST(TokenizerErrors, CorruptSentencePieceModelIsNamed) {
  character::testing::TempDir dir;
  write_file_atomic(dir / "tokenizer.model", "definitely not a protobuf");
  EXPECT_THAT(load_error(dir.path()), AllOf(HasSubstr("tokenizer.model"), HasSubstr("not a SentencePiece model")));
}

}  // namespace
}  // namespace character::model
