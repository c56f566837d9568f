// Tokenizers against HF `tokenizers` 0.22.2: every oracle string must give the
// same ids (with and without special tokens) and the same decode() text, for the
// real Qwen3, Llama 3.1 and Llama 2 tokenizer.json files, transformers 5's
// Metaspace rebuild of Llama 2, and a SentencePiece tokenizer.model.
#include "model/text/tokenizer.h"

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using nlohmann::json;
using character::testing::fixture;

json load_oracle(const std::string& family) {
  const auto path = fixture("tokenizers/oracle_" + family + ".json");
  return json::parse(read_file(path));
}

std::string show(const std::vector<TokenId>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 24; ++i) {
    if (i) s += ' ';
    s += std::to_string(ids[i]);
  }
  return s + (ids.size() > 24 ? " ..." : "");
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Loaded once per directory: the suites share them (loading Qwen3 takes ~0.3 s).
const Tokenizer& cached_tokenizer(const std::string& relative_dir) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[relative_dir];
  if (!slot) slot = load_tokenizer(fixture(relative_dir));
  return *slot;
}

class OracleFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(OracleFamily, IdsAndDecodeMatchTokenizers) {
  const std::string family = GetParam();
  const json oracle = load_oracle(family);
  const auto start = std::chrono::steady_clock::now();
  const auto owned = load_tokenizer(fixture(oracle.at("tokenizer_dir").get<std::string>()));
  const Tokenizer* tokenizer = owned.get();
  const double load_s = seconds_since(start);

  EXPECT_EQ(tokenizer->vocab_size(), oracle.at("vocab_size").get<int64_t>());
  for (const TokenId id : oracle.at("special_ids").get<std::vector<TokenId>>()) {
    EXPECT_TRUE(tokenizer->is_special(id)) << "id " << id;
  }

  const json& cases = oracle.at("cases");
  ASSERT_GE(cases.size(), 2000u);
  std::vector<std::string> texts;
  int id_matches = 0, decode_matches = 0;
  for (const json& c : cases) {
    const auto text = c.at("text").get<std::string>();
    texts.push_back(text);
    const auto want = c.at("ids").get<std::vector<TokenId>>();
    const auto want_special = c.at("ids_special").get<std::vector<TokenId>>();
    const auto got = tokenizer->encode(text, /*add_special_tokens=*/false);
    const auto got_special = tokenizer->encode(text, /*add_special_tokens=*/true);
    EXPECT_EQ(got, want) << family << " text " << json(text).dump() << "\n got  " << show(got) << "\n want "
                         << show(want);
    EXPECT_EQ(got_special, want_special) << family << " (special) text " << json(text).dump();
    id_matches += (got == want && got_special == want_special);

    const auto decoded = tokenizer->decode(want_special, /*skip_special_tokens=*/false);
    const auto decoded_skip = tokenizer->decode(want_special, /*skip_special_tokens=*/true);
    EXPECT_EQ(decoded, c.at("decoded").get<std::string>()) << family << " ids " << show(want_special);
    EXPECT_EQ(decoded_skip, c.at("decoded_skip").get<std::string>()) << family << " ids " << show(want_special);
    decode_matches += (decoded == c.at("decoded").get<std::string>() &&
                       decoded_skip == c.at("decoded_skip").get<std::string>());
  }
  std::printf("[ info ] %s: %d/%zu strings with identical ids, %d/%zu identical decodes\n", family.c_str(),
              id_matches, cases.size(), decode_matches, cases.size());

  int random_matches = 0;
  for (const json& r : oracle.at("random_decodes")) {
    const auto ids = r.at("ids").get<std::vector<TokenId>>();
    const bool same = tokenizer->decode(ids, false) == r.at("decoded").get<std::string>() &&
                      tokenizer->decode(ids, true) == r.at("decoded_skip").get<std::string>();
    EXPECT_TRUE(same) << family << " random ids " << show(ids) << " decode " << json(tokenizer->decode(ids, false))
                      << " want " << r.at("decoded");
    random_matches += same;
  }
  std::printf("[ info ] %s: %d/%zu random id sequences decode identically\n", family.c_str(), random_matches,
              oracle.at("random_decodes").size());

  // encode_batch must equal one-by-one encoding; its time is printed, never asserted.
  const auto batch_start = std::chrono::steady_clock::now();
  const auto batch = encode_batch(*tokenizer, texts, /*add_special_tokens=*/true);
  const double batch_s = seconds_since(batch_start);
  ASSERT_EQ(batch.size(), cases.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(batch[i], cases[i].at("ids_special").get<std::vector<TokenId>>()) << "batch index " << i;
  }
  const auto serial_start = std::chrono::steady_clock::now();
  for (const auto& text : texts) (void)tokenizer->encode(text, true);
  std::printf("[ info ] %s: load %.3f s; encode %zu strings %.3f s serial, %.3f s encode_batch\n", family.c_str(),
              load_s, texts.size(), seconds_since(serial_start), batch_s);
}

TEST_P(OracleFamily, DecodeStreamMatchesTokenizersDecodeStream) {
  const std::string family = GetParam();
  const json oracle = load_oracle(family);
  const Tokenizer* tokenizer = &cached_tokenizer(oracle.at("tokenizer_dir").get<std::string>());
  ASSERT_FALSE(oracle.at("streams").empty());
  for (const json& s : oracle.at("streams")) {
    DecodeStream stream(*tokenizer, /*skip_special_tokens=*/false);
    const auto ids = s.at("ids").get<std::vector<TokenId>>();
    const json& chunks = s.at("chunks");
    ASSERT_EQ(chunks.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto got = stream.step(ids[i]);
      if (chunks[i].is_null()) {
        EXPECT_FALSE(got.has_value()) << family << " step " << i << " of " << show(ids) << " gave " << json(*got);
      } else {
        ASSERT_TRUE(got.has_value()) << family << " step " << i << " of " << show(ids);
        EXPECT_EQ(*got, chunks[i].get<std::string>()) << family << " step " << i << " of " << show(ids);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, OracleFamily, ::testing::Values("qwen3", "llama3_1", "llama2", "llama2_metaspace",
                                                                    "llama2_metaspace_first", "qwen3_gpt2", "qwen3_added"));

TEST(Tokenizer, SpecialTokensFromTokenizerConfig) {
  const Tokenizer* qwen = &cached_tokenizer("tokenizers/qwen3");
  EXPECT_EQ(qwen->kind, "byte_level_bpe");
  EXPECT_EQ(qwen->eos_id, qwen->token_to_id("<|im_end|>"));
  EXPECT_EQ(qwen->eos_id, 151645);
  EXPECT_EQ(qwen->pad_id, 151643);  // <|endoftext|>
  EXPECT_FALSE(qwen->bos_id.has_value());
  EXPECT_EQ(qwen->id_to_token(151644), "<|im_start|>");
  EXPECT_TRUE(qwen->is_special(151644));
  EXPECT_FALSE(qwen->is_special(151667));  // <think> is added but not special
  EXPECT_EQ(qwen->id_to_token(9707), "Hello");

  const Tokenizer* llama3 = &cached_tokenizer("tokenizers/llama3_1");
  EXPECT_EQ(llama3->bos_id, 128000);
  EXPECT_EQ(llama3->eos_id, llama3->token_to_id("<|eot_id|>"));

  const Tokenizer* llama2 = &cached_tokenizer("tokenizers/llama2");
  EXPECT_EQ(llama2->kind, "sentencepiece_bpe");
  EXPECT_EQ(llama2->bos_id, 1);
  EXPECT_EQ(llama2->eos_id, 2);
  EXPECT_EQ(llama2->encode("", /*add_special_tokens=*/true), std::vector<TokenId>{1});
  EXPECT_EQ(llama2->token_to_id("<0x0A>"), 13);
}

TEST(Tokenizer, SentencePieceModelMatchesSentencePieceLibrary) {
  const json oracle = load_oracle("sp_bpe");
  const auto dir = fixture(oracle.at("tokenizer_dir").get<std::string>());
  ASSERT_FALSE(std::filesystem::exists(dir / "tokenizer.json"));
  const auto tokenizer = load_tokenizer(dir);
  EXPECT_EQ(tokenizer->kind, "sentencepiece_model");
  EXPECT_EQ(tokenizer->vocab_size(), oracle.at("vocab_size").get<int64_t>());
  EXPECT_EQ(tokenizer->bos_id, oracle.at("bos_id").get<TokenId>());
  EXPECT_EQ(tokenizer->eos_id, oracle.at("eos_id").get<TokenId>());
  int matches = 0;
  for (const json& c : oracle.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    const auto want = c.at("ids").get<std::vector<TokenId>>();
    const auto got = tokenizer->encode(text, false);
    EXPECT_EQ(got, want) << json(text).dump();
    EXPECT_EQ(tokenizer->encode(text, true), c.at("ids_special").get<std::vector<TokenId>>());
    EXPECT_EQ(tokenizer->decode(want, false), c.at("decoded").get<std::string>());
    matches += got == want;
  }
  std::printf("[ info ] sp_bpe (tokenizer.model): %d/%zu strings with identical ids\n", matches,
              oracle.at("cases").size());
  for (const json& r : oracle.at("random_decodes")) {
    const auto ids = r.at("ids").get<std::vector<TokenId>>();
    EXPECT_EQ(tokenizer->decode(ids, false), r.at("decoded").get<std::string>()) << show(ids);
    EXPECT_EQ(tokenizer->decode(ids, true), r.at("decoded_skip").get<std::string>()) << show(ids);
  }
}

}  // namespace
}  // namespace character::model
