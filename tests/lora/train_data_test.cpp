// Training data against TRL 1.16 (fixtures from tools/oracle/fixtures_train_data.py):
// SFT ids and assistant masks, DPO prompt/chosen/rejected ids, truncation counts, for
// every chat family; then length batching, collation, the held-out split and the
// error messages for bad rows.
#include "lora/train_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/test_support.h"

namespace character::lora {
namespace {

using character::testing::fixture;
using character::testing::TempDir;
using ::testing::HasSubstr;
using Json = nlohmann::json;
using Ids = std::vector<int64_t>;

constexpr int64_t kNoLimit = 1 << 20;

const Json& oracle() {
  static const Json data = [] {
    const auto path = fixture("train_data/oracle_train_data.json");
    return std::filesystem::exists(path) ? Json::parse(read_file(path)) : Json::object();
  }();
  return data;
}

const Json& family_case(const std::string& name) {
  static const Json empty = Json::object();
  if (!oracle().contains("families") || !oracle()["families"].contains(name)) {
    ADD_FAILURE() << "oracle_train_data.json has no case " << name;
    return empty;
  }
  return oracle()["families"][name];
}

const model::Tokenizer& tokenizer_for(const Json& c) {
  static std::map<std::string, std::unique_ptr<model::Tokenizer>> loaded;
  const auto folder = c["tokenizer"].get<std::string>();
  if (!loaded.contains(folder)) loaded[folder] = model::load_tokenizer(fixture(folder));
  return *loaded[folder];
}

std::vector<uint8_t> mask_of(const Json& mask) {
  std::vector<uint8_t> out;
  for (const auto& m : mask) out.push_back(static_cast<uint8_t>(m.get<int>()));
  return out;
}

class TrainDataOracle : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    c_ = &family_case(GetParam());
    ASSERT_TRUE(c_->contains("sft"));
    tokenizer_ = &tokenizer_for(*c_);
    renderer_ = model::make_chat_renderer((*c_)["family"].get<std::string>());
  }
  const Json* c_ = nullptr;
  const model::Tokenizer* tokenizer_ = nullptr;
  std::unique_ptr<model::ChatRenderer> renderer_;
};

TEST_P(TrainDataOracle, SftIdsAndMasksMatchTrl) {
  const auto& expected = (*c_)["sft"];
  ASSERT_GE(expected.size(), 16u);
  for (const bool last_only : {false, true}) {
    SftOptions options;
    options.max_length = kNoLimit;
    options.last_assistant_only = last_only;
    const SftDataset data = load_sft_jsonl(fixture("train_data/sft.jsonl"), *tokenizer_, *renderer_, options);
    ASSERT_EQ(data.rows.size(), expected.size());
    EXPECT_EQ(data.truncated, 0);
    EXPECT_EQ(data.skipped, 0);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(data.rows[i].ids, expected[i]["ids"].get<Ids>()) << "row " << i;
      EXPECT_EQ(data.rows[i].loss_mask, mask_of(expected[i][last_only ? "last_mask" : "mask"]))
          << "row " << i << " last_assistant_only=" << last_only;
    }
  }
}

TEST_P(TrainDataOracle, SftTruncationKeepsTheStartAndDropsUntrainedRows) {
  const auto& expected = (*c_)["sft"];
  for (const bool last_only : {false, true}) {
    SftOptions options;
    options.max_length = oracle()["sft_max_length"].get<int64_t>();
    options.last_assistant_only = last_only;
    const SftDataset data = load_sft_jsonl(fixture("train_data/sft.jsonl"), *tokenizer_, *renderer_, options);
    std::vector<const Json*> kept;
    int64_t truncated = 0;
    for (const auto& row : expected) {
      truncated += row["truncated"].get<bool>();
      const auto& cut = row[last_only ? "at_max_length_last" : "at_max_length"];
      if (!cut.is_null()) kept.push_back(&cut);
    }
    EXPECT_EQ(data.truncated, truncated);
    EXPECT_GT(data.truncated, 0);
    EXPECT_EQ(data.skipped, static_cast<int64_t>(expected.size() - kept.size()));
    EXPECT_GT(data.skipped, 0);
    ASSERT_EQ(data.rows.size(), kept.size());
    for (std::size_t i = 0; i < kept.size(); ++i) {
      EXPECT_EQ(data.rows[i].ids, (*kept[i])["ids"].get<Ids>()) << "kept row " << i;
      EXPECT_EQ(data.rows[i].loss_mask, mask_of((*kept[i])["mask"])) << "kept row " << i;
    }
  }
}

TEST_P(TrainDataOracle, DpoIdsMatchTrl) {
  for (const auto& [mode, expected] : (*c_)["dpo"].items()) {
    DpoDataOptions options;
    options.max_length = kNoLimit;
    options.max_prompt_length = kNoLimit - 1;
    if (mode == "no_thinking") options.chat.enable_thinking = false;
    const DpoDataset data = load_dpo_jsonl(fixture("train_data/dpo.jsonl"), *tokenizer_, *renderer_, options);
    ASSERT_EQ(data.rows.size(), expected.size()) << mode;
    EXPECT_EQ(data.truncated, 0);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(data.rows[i].prompt, expected[i]["prompt"].get<Ids>()) << mode << " row " << i;
      EXPECT_EQ(data.rows[i].chosen, expected[i]["chosen"].get<Ids>()) << mode << " row " << i;
      EXPECT_EQ(data.rows[i].rejected, expected[i]["rejected"].get<Ids>()) << mode << " row " << i;
    }
  }
}

TEST_P(TrainDataOracle, DpoTruncationCutsPromptStartAndCompletionEnd) {
  for (const auto& [mode, expected] : (*c_)["dpo"].items()) {
    DpoDataOptions options;
    options.max_length = oracle()["dpo_max_length"].get<int64_t>();
    options.max_prompt_length = oracle()["dpo_max_prompt_length"].get<int64_t>();
    if (mode == "no_thinking") options.chat.enable_thinking = false;
    const DpoDataset data = load_dpo_jsonl(fixture("train_data/dpo.jsonl"), *tokenizer_, *renderer_, options);
    std::vector<const Json*> kept;
    int64_t truncated = 0;
    for (const auto& row : expected) {
      truncated += row["truncated"].get<bool>();
      if (!row["at_max_length"].is_null()) kept.push_back(&row["at_max_length"]);
    }
    EXPECT_EQ(data.truncated, truncated) << mode;
    EXPECT_GE(data.truncated, 2) << mode;
    EXPECT_EQ(data.skipped, static_cast<int64_t>(expected.size() - kept.size())) << mode;
    ASSERT_EQ(data.rows.size(), kept.size()) << mode;
    for (std::size_t i = 0; i < kept.size(); ++i) {
      EXPECT_EQ(data.rows[i].prompt, (*kept[i])["prompt"].get<Ids>()) << mode << " kept row " << i;
      EXPECT_EQ(data.rows[i].chosen, (*kept[i])["chosen"].get<Ids>()) << mode << " kept row " << i;
      EXPECT_EQ(data.rows[i].rejected, (*kept[i])["rejected"].get<Ids>()) << mode << " kept row " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, TrainDataOracle,
                         ::testing::Values("qwen3", "llama3", "llama3_1", "chatml", "role_colon", "role_colon_llama2"),
                         [](const auto& info) { return info.param; });

// Many rows through the parallel loader come back in file order, each equal to TRL's.
TEST(TrainData, ParallelLoadKeepsFileOrder) {
  const Json& c = family_case("qwen3");
  ASSERT_TRUE(c.contains("sft"));
  const std::string rows = read_file(fixture("train_data/sft.jsonl"));
  TempDir dir;
  std::string repeated;
  constexpr int kCopies = 40;
  for (int i = 0; i < kCopies; ++i) repeated += rows;
  write_file_atomic(dir / "many.jsonl", repeated);
  SftOptions options;
  options.max_length = kNoLimit;
  const auto renderer = model::make_chat_renderer("qwen3");
  const SftDataset data = load_sft_jsonl(dir / "many.jsonl", tokenizer_for(c), *renderer, options);
  const auto& expected = c["sft"];
  ASSERT_EQ(data.rows.size(), expected.size() * kCopies);
  for (std::size_t i = 0; i < data.rows.size(); ++i) {
    ASSERT_EQ(data.rows[i].ids, expected[i % expected.size()]["ids"].get<Ids>()) << "row " << i;
  }
}

// ---------------------------------------------------------------- batching

int64_t padded_tokens(const std::vector<std::vector<int64_t>>& batches, const std::vector<int64_t>& lengths) {
  int64_t total = 0;
  for (const auto& batch : batches) {
    int64_t longest = 0;
    for (const int64_t i : batch) longest = std::max(longest, lengths[i]);
    total += longest * static_cast<int64_t>(batch.size());
  }
  return total;
}

std::vector<int64_t> sample_lengths(int64_t n) {
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < n; ++i) lengths.push_back(8 + (i * 7919) % 500);
  return lengths;
}

TEST(LengthBatches, DeterministicAndCoverEveryIndexOnce) {
  const auto lengths = sample_lengths(1003);
  const auto a = length_batches(lengths, 8, /*seed=*/7, /*epoch=*/0);
  EXPECT_EQ(a, length_batches(lengths, 8, 7, 0));
  EXPECT_NE(a, length_batches(lengths, 8, 7, 1));
  EXPECT_NE(a, length_batches(lengths, 8, 8, 0));
  std::vector<int64_t> seen;
  for (std::size_t b = 0; b < a.size(); ++b) {
    EXPECT_GE(a[b].size(), 1u);
    EXPECT_LE(a[b].size(), 8u);
    seen.insert(seen.end(), a[b].begin(), a[b].end());
  }
  EXPECT_EQ(a.size(), 126u);  // ceil(1003 / 8)
  std::sort(seen.begin(), seen.end());
  std::vector<int64_t> all(lengths.size());
  std::iota(all.begin(), all.end(), int64_t{0});
  EXPECT_EQ(seen, all);
}

TEST(LengthBatches, GroupSimilarLengthsAndPutTheLongestFirst) {
  const auto lengths = sample_lengths(1000);
  const auto batches = length_batches(lengths, 8, 3, 0);
  const int64_t real = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
  // Batches of consecutive indices (lengths spread uniformly over 8..507) as the baseline.
  std::vector<std::vector<int64_t>> naive;
  for (int64_t i = 0; i < 1000; i += 8) {
    naive.emplace_back();
    for (int64_t j = i; j < i + 8; ++j) naive.back().push_back(j);
  }
  const int64_t bucketed = padded_tokens(batches, lengths), baseline = padded_tokens(naive, lengths);
  EXPECT_LT(bucketed, real * 11 / 10) << "padding above 10%";
  EXPECT_GT(baseline, real * 14 / 10);
  const int64_t max_length = *std::max_element(lengths.begin(), lengths.end());
  EXPECT_NE(std::find_if(batches[0].begin(), batches[0].end(), [&](int64_t i) { return lengths[i] == max_length; }),
            batches[0].end());
  // The order is shuffled: batch lengths do not come sorted.
  std::vector<int64_t> firsts;
  for (const auto& batch : batches) firsts.push_back(lengths[batch[0]]);
  EXPECT_FALSE(std::is_sorted(firsts.begin() + 1, firsts.end()));
  EXPECT_FALSE(std::is_sorted(firsts.begin() + 1, firsts.end(), std::greater<>()));
}

TEST(LengthBatches, EdgeCases) {
  EXPECT_TRUE(length_batches({}, 4, 0, 0).empty());
  const auto one = length_batches({5}, 4, 0, 0);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], (std::vector<int64_t>{0}));
  EXPECT_THROW(length_batches({1, 2}, 0, 0, 0), ConfigError);
}

// ---------------------------------------------------------------- collation

TEST(Collate, SftPadsRightAndLabelsOnlyTrainedTokens) {
  SftDataset data;
  data.rows.push_back({{11, 12, 13, 14}, {0, 0, 1, 1}});
  data.rows.push_back({{21, 22}, {0, 1}});
  data.rows.push_back({{31, 32, 33}, {1, 0, 1}});
  const TokenBatch batch = collate_sft(data, {2, 1}, /*pad_id=*/0);
  ASSERT_EQ(batch.input_ids.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(batch.input_ids.scalar_type(), torch::kInt64);
  EXPECT_EQ(batch.attention_mask.scalar_type(), torch::kInt64);
  EXPECT_EQ(batch.labels.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(batch.input_ids, torch::tensor({31, 32, 33, 21, 22, 0}).view({2, 3})));
  EXPECT_TRUE(torch::equal(batch.attention_mask, torch::tensor({1, 1, 1, 1, 1, 0}).view({2, 3})));
  EXPECT_TRUE(torch::equal(batch.labels, torch::tensor({31, -100, 33, -100, 22, -100}).view({2, 3})));
}

TEST(Collate, DpoChosenRowsFirstLabelsOnCompletion) {
  DpoDataset data;
  data.rows.push_back({{1, 2}, {3, 4, 5}, {6}});
  data.rows.push_back({{7}, {8}, {9, 10}});
  const TokenBatch batch = collate_dpo(data, {0, 1}, /*pad_id=*/99);
  ASSERT_EQ(batch.input_ids.sizes(), (std::vector<int64_t>{4, 5}));
  EXPECT_TRUE(torch::equal(batch.input_ids, torch::tensor({1, 2, 3, 4, 5,      //
                                                           7, 8, 99, 99, 99,   //
                                                           1, 2, 6, 99, 99,    //
                                                           7, 9, 10, 99, 99})
                                                .view({4, 5})));
  EXPECT_TRUE(torch::equal(batch.attention_mask, torch::tensor({1, 1, 1, 1, 1,  //
                                                                1, 1, 0, 0, 0,  //
                                                                1, 1, 1, 0, 0,  //
                                                                1, 1, 1, 0, 0})
                                                     .view({4, 5})));
  EXPECT_TRUE(torch::equal(batch.labels, torch::tensor({-100, -100, 3, 4, 5,        //
                                                        -100, 8, -100, -100, -100,  //
                                                        -100, -100, 6, -100, -100,  //
                                                        -100, 9, 10, -100, -100})
                                             .view({4, 5})));
}

// ---------------------------------------------------------------- held-out split

TEST(HeldOutSplit, DeterministicDisjointAndComplete) {
  const auto [train, held] = held_out_split(100, 0.1, 5);
  EXPECT_EQ(held.size(), 10u);
  EXPECT_EQ(train.size(), 90u);
  EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
  EXPECT_TRUE(std::is_sorted(held.begin(), held.end()));
  std::set<int64_t> all(train.begin(), train.end());
  all.insert(held.begin(), held.end());
  EXPECT_EQ(all.size(), 100u);
  EXPECT_EQ(held_out_split(100, 0.1, 5), (std::pair{train, held}));
  EXPECT_NE(held_out_split(100, 0.1, 6).second, held);
  EXPECT_EQ(held_out_split(5, 0.01, 1).second.size(), 1u);  // at least one
  EXPECT_EQ(held_out_split(2, 0.9, 1).second.size(), 1u);   // never all
  EXPECT_TRUE(held_out_split(10, 0.0, 1).second.empty());
  EXPECT_THROW(held_out_split(10, 1.0, 1), ConfigError);
}

// ---------------------------------------------------------------- errors

class TrainDataErrors : public ::testing::Test {
 protected:
  std::string sft_error(const std::string& content) {
    write_file_atomic(dir_ / "data.jsonl", content);
    try {
      load_sft_jsonl(dir_ / "data.jsonl", tokenizer(), *model::make_chat_renderer("qwen3"), SftOptions{});
    } catch (const FormatError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no FormatError for " << content;
    return "";
  }
  std::string dpo_error(const std::string& content) {
    write_file_atomic(dir_ / "data.jsonl", content);
    try {
      load_dpo_jsonl(dir_ / "data.jsonl", tokenizer(), *model::make_chat_renderer("qwen3"), DpoDataOptions{});
    } catch (const FormatError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no FormatError for " << content;
    return "";
  }
  const model::Tokenizer& tokenizer() { return tokenizer_for(family_case("qwen3")); }
  std::string file() const { return (dir_ / "data.jsonl").string(); }
  TempDir dir_;
};

constexpr const char* kGoodSft = R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";

TEST_F(TrainDataErrors, SftMessagesNameFileLineFieldFoundAndExpected) {
  const std::string good = std::string(kGoodSft) + "\n";
  std::string e = sft_error(good + "\n" + "{\"messages\": [oops\n");
  EXPECT_THAT(e, HasSubstr(file() + ":3: not valid JSON"));
  EXPECT_THAT(e, HasSubstr("expected one JSON object per line"));

  e = sft_error(good + "[1, 2]\n");
  EXPECT_THAT(e, HasSubstr(file() + ":2: found an array [1,2], expected {\"messages\""));

  e = sft_error(good + "{\"conversation\": []}\n");
  EXPECT_THAT(e, HasSubstr(file() + ":2: messages: found nothing (the field is missing), expected a non-empty list"));

  e = sft_error("{\"messages\": \"hi\"}\n");
  EXPECT_THAT(e, HasSubstr(file() + ":1: messages: found the string \"hi\", expected a non-empty list"));

  e = sft_error(R"({"messages": [{"role": "tool", "content": "x"}]})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: messages[0].role: found the string \"tool\", expected one of \"system\", "
                                    "\"user\", \"assistant\""));

  e = sft_error(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": 3}]})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: messages[1].content: found the number 3, expected a string"));

  e = sft_error(R"({"messages": [{"role": "user"}]})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: messages[0].content: found nothing (the field is missing), expected a string"));

  e = sft_error(R"({"messages": [{"role": "user", "content": "only a question"}]})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: messages: found no assistant message, expected at least one"));

  e = sft_error("\n  \n");
  EXPECT_THAT(e, HasSubstr(file() + ": no rows, expected one JSON object per line"));
}

TEST_F(TrainDataErrors, DpoMessagesNameFileLineFieldFoundAndExpected) {
  std::string e = dpo_error(R"({"prompt": "q", "chosen": "a"})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: rejected: found nothing (the field is missing), expected a string"));

  e = dpo_error(R"({"prompt": 5, "chosen": "a", "rejected": "b"})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: prompt: found the number 5, expected a string (one user message) or a "
                                    "non-empty list"));

  e = dpo_error(R"({"prompt": "q", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: chosen[0].role: found \"user\", expected \"assistant\""));

  e = dpo_error(R"({"prompt": [{"role": "narrator", "content": "q"}], "chosen": "a", "rejected": "b"})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: prompt[0].role: found the string \"narrator\", expected one of"));

  e = dpo_error(R"({"prompt": [], "chosen": "a", "rejected": "b"})");
  EXPECT_THAT(e, HasSubstr(file() + ":1: prompt: found an array [], expected"));
}

TEST(TrainDataOptions, RejectImpossibleLengths) {
  const auto& tokenizer = tokenizer_for(family_case("qwen3"));
  const auto renderer = model::make_chat_renderer("qwen3");
  DpoDataOptions dpo;
  dpo.max_length = 64;
  dpo.max_prompt_length = 64;
  EXPECT_THROW(load_dpo_jsonl(fixture("train_data/dpo.jsonl"), tokenizer, *renderer, dpo), ConfigError);
  SftOptions sft;
  sft.max_length = 0;
  EXPECT_THROW(load_sft_jsonl(fixture("train_data/sft.jsonl"), tokenizer, *renderer, sft), ConfigError);
}

}  // namespace
}  // namespace character::lora
