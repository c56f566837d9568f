// Logits processors against transformers' own (fixture sampling/processors.json),
// seeded sampling, and the text side of generation: stop strings, stop tokens and
// UTF-8-safe streaming, decoded with the real Qwen3 tokenizer. The text tests
// drive generate() with a scripted model that emits a fixed token sequence,
// because no trained model can be made to split a multi-byte character on cue.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/arch/generate.h"
#include "model/arch/kv_cache.h"
#include "model/arch/sampling.h"
#include "model/io/config.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using character::testing::fixture;

at::Tensor decode_scores(const nlohmann::json& rows) {
  std::vector<float> flat;
  for (const auto& row : rows) {
    for (const auto& v : row) flat.push_back(v.is_null() ? -INFINITY : v.get<float>());
  }
  return torch::tensor(flat).reshape({static_cast<int64_t>(rows.size()), -1});
}

// Same -inf pattern, finite values within `tolerance`; returns the max abs error.
double compare_scores(const at::Tensor& ours, const at::Tensor& expected, const std::string& name) {
  EXPECT_TRUE(torch::equal(torch::isinf(ours), torch::isinf(expected))) << name << ": removed tokens differ";
  at::Tensor finite = torch::isfinite(expected);
  const double err = (ours.masked_select(finite) - expected.masked_select(finite)).abs().max().item<double>();
  EXPECT_LE(err, 1e-5) << name;
  return err;
}

struct Fixture {
  at::Tensor scores;
  std::vector<std::vector<TokenId>> seen;
  nlohmann::json cases;
};

Fixture load_fixture() {
  std::ifstream in(fixture("sampling/processors.json"));
  if (!in) throw std::runtime_error("missing sampling/processors.json");
  const auto json = nlohmann::json::parse(in);
  Fixture f{decode_scores(json["scores"]), {}, json["cases"]};
  for (const auto& row : json["input_ids"]) f.seen.push_back(row.get<std::vector<TokenId>>());
  return f;
}

TEST(Sampling, EachProcessorMatchesTransformers) {
  const Fixture f = load_fixture();
  int checked = 0;
  double worst = 0;
  for (const auto& c : f.cases) {
    const std::string name = c["name"];
    const auto& p = c["params"];
    at::Tensor ours;
    if (name.rfind("top_k_", 0) == 0) ours = apply_top_k(f.scores, p["top_k"]);
    else if (name.rfind("top_p_", 0) == 0) ours = apply_top_p(f.scores, p["top_p"]);
    else if (name.rfind("temperature_", 0) == 0) ours = apply_temperature(f.scores, p["temperature"]);
    else if (name.rfind("min_p_", 0) == 0) ours = apply_min_p(f.scores, p["min_p"]);
    else if (name.rfind("repetition_penalty_", 0) == 0) ours = apply_repetition_penalty(f.scores, f.seen, p["repetition_penalty"]);
    else continue;
    worst = std::max(worst, compare_scores(ours, decode_scores(c["out"]), name));
    ++checked;
  }
  EXPECT_EQ(checked, 12);
  std::cout << "[sampling] " << checked << " processor cases, max abs error " << worst << "\n";
}

TEST(Sampling, ProcessorChainMatchesGenerateLogitsProcessor) {
  const Fixture f = load_fixture();
  int checked = 0;
  for (const auto& c : f.cases) {
    const std::string name = c["name"];
    if (name.rfind("chain_", 0) != 0) continue;
    const auto& p = c["params"];
    SamplingOptions options;
    options.do_sample = p["do_sample"];
    options.temperature = p["temperature"];
    options.top_k = p["top_k"];
    options.top_p = p["top_p"];
    options.min_p = p.value("min_p", 0.0);
    options.repetition_penalty = p["repetition_penalty"];
    compare_scores(process_logits(f.scores, f.seen, options), decode_scores(c["out"]), name);
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(Sampling, SameSeedSameTokensAndOnlyKeptTokensDrawn) {
  at::Tensor scores = torch::randn({4, 100}, at::make_generator<at::CPUGeneratorImpl>(3));
  SamplingOptions options;
  options.do_sample = true;
  options.top_k = 5;
  const at::Tensor processed = process_logits(scores, std::vector<std::vector<TokenId>>(4), options);
  auto draw = [&](uint64_t seed) {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    std::vector<at::Tensor> draws;
    for (int i = 0; i < 50; ++i) draws.push_back(choose_next_tokens(processed, options, generator));
    return torch::stack(draws);  // [50, 4]
  };
  const at::Tensor a = draw(7), b = draw(7), c = draw(8);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  const at::Tensor top5 = std::get<1>(scores.topk(5));  // [4, 5]
  for (int64_t row = 0; row < 4; ++row) {
    for (int64_t i = 0; i < 50; ++i) EXPECT_TRUE((top5[row] == a[i][row]).any().item<bool>());
  }
}

TEST(Sampling, GreedyTakesArgmax) {
  at::Tensor scores = torch::randn({3, 30}, at::make_generator<at::CPUGeneratorImpl>(1));
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(0);
  EXPECT_TRUE(torch::equal(choose_next_tokens(scores, SamplingOptions{}, generator), scores.argmax(-1)));
}

// Emits script[s] at decode step s for every row, whatever the input; appends
// dummy keys/values so the cache behaves as with a real model.
class ScriptedLM : public CausalLMImpl {
 public:
  ScriptedLM(int64_t vocab, std::vector<TokenId> script) : CausalLMImpl(make_config(vocab)), script_(std::move(script)) {
    register_parameter("dummy", torch::zeros({1}));
  }
  ForwardOutput forward(const ForwardInput& input) override {
    const int64_t batch = input.input_ids.size(0), steps = input.input_ids.size(1);
    if (input.cache->length() == 0) prompt_length_ = steps;
    const int64_t step = input.cache->length() + steps - prompt_length_;
    input.cache->append(0, torch::zeros({batch, 1, steps, 1}), torch::zeros({batch, 1, steps, 1}));
    EXPECT_EQ(input.attention_mask.size(1), input.cache->length());
    ForwardOutput out;
    out.logits = torch::zeros({batch, 1, config_.vocab_size});
    out.logits.select(2, script_.at(step)).fill_(10.0f);
    return out;
  }
  at::Tensor unembed(const at::Tensor&) override { throw std::logic_error("ScriptedLM has no hidden states"); }

 private:
  static ModelConfig make_config(int64_t vocab) {
    ModelConfig c;
    c.model_type = "scripted";
    c.vocab_size = vocab;
    c.num_hidden_layers = 1;
    return c;
  }
  std::vector<TokenId> script_;
  int64_t prompt_length_ = 0;
};

bool valid_utf8_without_replacement(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return s.find("\xEF\xBF\xBD") == std::string::npos;
}

class GenerateText : public ::testing::Test {
 protected:
  // Loaded once: the real Qwen3 tokenizer takes most of a second to build.
  static void SetUpTestSuite() { tokenizer_ = load_tokenizer(fixture("tokenizers/qwen3")).release(); }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  // Runs the scripted model over `text`'s ids (plus `extra` ids) for two prompts.
  std::vector<GenerationResult> run(std::vector<TokenId> script, GenerationOptions options) {
    ScriptedLM model(tokenizer_->vocab_size(), script);
    pieces_.assign(2, {});
    options.on_text = [this](int64_t row, std::string_view piece) {
      EXPECT_TRUE(valid_utf8_without_replacement(std::string(piece))) << "piece '" << piece << "'";
      pieces_[row].emplace_back(piece);
    };
    const std::vector<std::vector<TokenId>> prompts = {tokenizer_->encode("Hi"), tokenizer_->encode("Hello there, who?")};
    return generate(model, tokenizer_, prompts, options);
  }
  std::string streamed(int64_t row) const {
    std::string all;
    for (const auto& p : pieces_[row]) all += p;
    return all;
  }

  static inline const Tokenizer* tokenizer_ = nullptr;
  std::vector<std::vector<std::string>> pieces_;
};

TEST_F(GenerateText, StreamedPiecesAreCompleteUtf8AndConcatenateToTheText) {
  const std::string text = "Grüße 🙂 — 𝄞𝄞 naïve 你好世界 ok";
  auto ids = tokenizer_->encode(text);
  // At least one character must span tokens, or the test proves nothing.
  int partial = 0;
  for (std::size_t n = 1; n < ids.size(); ++n) {
    partial += tokenizer_->decode(std::span(ids.data(), n)).find("\xEF\xBF\xBD") != std::string::npos;
  }
  ASSERT_GT(partial, 0);
  GenerationOptions options;
  options.max_new_tokens = static_cast<int64_t>(ids.size());
  const auto results = run(ids, options);
  for (int64_t row = 0; row < 2; ++row) {
    EXPECT_EQ(results[row].text, text);
    EXPECT_EQ(results[row].ids, ids);
    EXPECT_EQ(results[row].finish_reason, "length");
    EXPECT_EQ(streamed(row), text);
  }
}

TEST_F(GenerateText, StopStringEndsGenerationAndIsExcluded) {
  const std::string text = "Sure: ```python\nprint('END')\n``` and then\nUser: more words here";
  auto ids = tokenizer_->encode(text);
  GenerationOptions options;
  options.max_new_tokens = static_cast<int64_t>(ids.size());
  options.stop_strings = {"\nUser:", "never appears"};
  const auto results = run(ids, options);
  for (int64_t row = 0; row < 2; ++row) {
    // Code and other text are left alone; only the stop string (and after) is cut.
    EXPECT_EQ(results[row].text, "Sure: ```python\nprint('END')\n``` and then");
    EXPECT_EQ(results[row].finish_reason, "stop");
    EXPECT_LT(results[row].ids.size(), ids.size());
    EXPECT_EQ(streamed(row), results[row].text);
  }
}

TEST_F(GenerateText, StopTokenIsReturnedButNotDecoded) {
  auto ids = tokenizer_->encode("One two");
  const TokenId im_end = *tokenizer_->token_to_id("<|im_end|>");
  std::vector<TokenId> script = ids;
  script.push_back(im_end);
  script.push_back(ids[0]);
  GenerationOptions options;
  options.max_new_tokens = 20;
  options.stop_token_ids = {im_end};
  const auto results = run(script, options);
  std::vector<TokenId> expected = ids;
  expected.push_back(im_end);
  for (int64_t row = 0; row < 2; ++row) {
    EXPECT_EQ(results[row].ids, expected);
    EXPECT_EQ(results[row].text, "One two");
    EXPECT_EQ(results[row].finish_reason, "stop");
    EXPECT_EQ(streamed(row), "One two");
  }
}

TEST_F(GenerateText, BadOptionsAreConfigErrors) {
  GenerationOptions options;
  options.max_new_tokens = 0;
  ScriptedLM model(tokenizer_->vocab_size(), {1});
  try {
    generate(model, tokenizer_, {{1}}, options);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_new_tokens=0"), std::string::npos) << e.what();
  }
  options.max_new_tokens = 1;
  EXPECT_THROW(generate(model, tokenizer_, {{}}, options), ConfigError);
}

TEST(GenerationConfigFile, ReadsFieldsAndNamesBadOnes) {
  character::testing::TempDir dir;
  std::ofstream(dir / "generation_config.json")
      << R"({"do_sample": true, "temperature": 0.6, "top_k": 20, "top_p": 0.95, "eos_token_id": [151645, 151643]})";
  const auto config = load_generation_config(dir.path());
  const SamplingOptions s = config.sampling();
  EXPECT_TRUE(s.do_sample);
  EXPECT_DOUBLE_EQ(s.temperature, 0.6);
  EXPECT_EQ(s.top_k, 20);
  EXPECT_DOUBLE_EQ(s.top_p, 0.95);
  EXPECT_EQ(config.eos_token_id, (std::vector<int64_t>{151645, 151643}));
  std::ofstream(dir / "generation_config.json") << R"({"top_k": "many"})";
  try {
    load_generation_config(dir.path());
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("top_k"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
  }
}

TEST(DefaultStopTokenIds, RendererThenConfigThenGenerationConfigDeduplicated) {
  character::testing::TempDir dir;
  const auto tokenizer_dir = fixture("tokenizers/qwen3");
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    std::filesystem::copy_file(tokenizer_dir / file, dir / file);
  }
  ModelConfig config;
  config.model_type = "llama";
  config.vocab_size = 151669;
  config.hidden_size = 8;
  config.intermediate_size = 16;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 1;
  config.head_dim = 4;
  config.max_position_embeddings = 64;
  config.eos_token_id = {151643};
  std::ofstream(dir / "config.json") << config_to_json(config).dump();
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [151645, 151643, 7]})";
  const auto tokenizer = load_tokenizer(dir.path());
  const auto qwen3 = make_chat_renderer("qwen3");
  std::vector<TokenId> expected;
  for (const auto& token : qwen3->stop_tokens()) expected.push_back(*tokenizer->token_to_id(token));
  for (TokenId id : {151643, 151645, 7}) {
    if (std::find(expected.begin(), expected.end(), id) == expected.end()) expected.push_back(id);
  }
  EXPECT_EQ(default_stop_token_ids(dir.path(), *tokenizer, qwen3.get()), expected);
  EXPECT_EQ(default_stop_token_ids(dir.path(), *tokenizer, nullptr), (std::vector<TokenId>{151643, 151645, 7}));
  // A renderer whose end-of-turn token the vocabulary lacks is a mismatch, not a skip.
  try {
    default_stop_token_ids(dir.path(), *tokenizer, make_chat_renderer("llama3").get());
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("<|eot_id|>"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace character::model
