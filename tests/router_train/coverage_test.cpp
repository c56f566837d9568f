// Training coverage against counts computed in Python from transformers'
// routing of the same batch (tools/oracle/fixtures_router_train.py), and the
// counter's bookkeeping: merge, checkpoint state (bit-exact), coverage.json.
#include "router_train/coverage.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/router_train/router_fixtures.h"

namespace character::testing {
namespace {

using router_train::CoverageCounter;
using router_train::loss_bearing_positions;

// The counts as a [L_moe, E] tensor.
torch::Tensor counts(const CoverageCounter& counter, bool loss) {
  auto out = torch::zeros({static_cast<int64_t>(counter.layers().size()), counter.num_experts()}, torch::kLong);
  for (size_t j = 0; j < counter.layers().size(); ++j) {
    for (int64_t e = 0; e < counter.num_experts(); ++e) {
      out[static_cast<int64_t>(j)][e] = loss ? counter.loss_tokens(j, e) : counter.all_tokens(j, e);
    }
  }
  return out;
}

CoverageCounter counted(RouterCase& c) {
  auto counter = CoverageCounter::for_model(c.model->config());
  auto out = run_batch(c);
  counter.add(out.routing, c.at("attention_mask"), loss_bearing_positions(c.at("labels")));
  return counter;
}

TEST(LossBearingPositions, APositionBearsLossWhenItPredictsATrainedToken) {
  auto labels = torch::tensor({-100, -100, 7, 8, -100, -100}, torch::kLong).view({1, 6});
  auto expected = torch::tensor({0, 1, 1, 0, 0, 0}, torch::kBool).view({1, 6});
  EXPECT_TRUE(torch::equal(loss_bearing_positions(labels), expected));
}

TEST(Coverage, CountsMatchTransformersRouting) {
  for (const auto& name : router_case_names()) {
    SCOPED_TRACE(name);
    auto c = router_case(name);
    auto counter = counted(c);
    EXPECT_EQ(counter.layers(), c.moe_layers());
    EXPECT_TRUE(torch::equal(counts(counter, /*loss=*/true), c.at("coverage_loss_tokens")))
        << counts(counter, true) << "\n" << c.at("coverage_loss_tokens");
    EXPECT_TRUE(torch::equal(counts(counter, /*loss=*/false), c.at("coverage_all_tokens")))
        << counts(counter, false) << "\n" << c.at("coverage_all_tokens");
    const auto mask = c.at("attention_mask");
    const int64_t real = mask.sum().item<int64_t>();
    const int64_t bearing = c.at("labels").narrow(1, 1, mask.size(1) - 1).ne(-100).sum().item<int64_t>();
    EXPECT_EQ(counter.real_positions(), real);
    EXPECT_EQ(counter.loss_positions(), bearing);
    // Every top-k slot counts: each layer's counts sum to K × positions.
    EXPECT_EQ(c.at("coverage_all_tokens").sum().item<int64_t>(),
              static_cast<int64_t>(c.moe_layers().size()) * counter.top_k() * real);
    std::cout << "  " << name << ": " << real << " real positions, " << bearing << " loss-bearing, "
              << c.moe_layers().size() << " MoE layers × " << counter.num_experts() << " experts\n";
  }
}

TEST(Coverage, MergeAddsCountsAndRejectsOtherModels) {
  auto c = router_case("olmoe");
  auto once = counted(c);
  auto twice = counted(c);
  twice.merge(once);
  EXPECT_TRUE(torch::equal(counts(twice, true), 2 * c.at("coverage_loss_tokens")));
  EXPECT_TRUE(torch::equal(counts(twice, false), 2 * c.at("coverage_all_tokens")));
  EXPECT_EQ(twice.real_positions(), 2 * once.real_positions());
  CoverageCounter other({0, 1}, 4, 2);
  try {
    twice.merge(other);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("4 experts"), std::string::npos) << e.what();
  }
}

TEST(Coverage, CheckpointStateRestoresBitExact) {
  auto c = router_case("qwen3_moe");
  auto counter = counted(c);
  const std::string saved = counter.state().dump();
  auto restored = CoverageCounter::for_model(c.model->config());
  restored.load_state(nlohmann::json::parse(saved), "hook_state.json");
  EXPECT_EQ(restored.state().dump(), saved);
  EXPECT_TRUE(torch::equal(counts(restored, true), c.at("coverage_loss_tokens")));
  // Counting after a restore continues from the saved counts.
  auto out = run_batch(c);
  restored.add(out.routing, c.at("attention_mask"), loss_bearing_positions(c.at("labels")));
  EXPECT_TRUE(torch::equal(counts(restored, false), 2 * c.at("coverage_all_tokens")));
}

TEST(Coverage, LoadStateNamesTheMismatch) {
  auto c = router_case("qwen3_moe");
  auto state = counted(c).state();
  CoverageCounter other({0, 1, 2}, 8, 2);
  try {
    other.load_state(state, "ckpt/hook_state.json");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt/hook_state.json: coverage for MoE layers [0, 2], expected [0, 1, 2]"),
              std::string::npos)
        << e.what();
  }
  state["layers"][1]["loss_tokens"] = {1, 2, 3};
  auto same = CoverageCounter::for_model(c.model->config());
  try {
    same.load_state(state, "ckpt/hook_state.json");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("layers[1].loss_tokens has 3 entries, expected 8 counts"), std::string::npos)
        << e.what();
  }
}

TEST(Coverage, JsonReportsExpertsBelowTheThreshold) {
  auto c = router_case("mixtral");
  auto counter = counted(c);
  TempDir dir;
  const auto loss = c.at("coverage_loss_tokens");  // [L, E] from transformers' routing
  const int64_t threshold = loss.median().item<int64_t>();
  counter.write_json(dir / "coverage.json", threshold);
  auto j = nlohmann::json::parse(read_file(dir / "coverage.json"));
  EXPECT_EQ(j.at("format"), "character-coverage");
  EXPECT_EQ(j.at("threshold"), threshold);
  EXPECT_EQ(j.at("threshold_counts"), "loss_tokens");
  const int64_t below = loss.lt(threshold).sum().item<int64_t>();
  EXPECT_EQ(j.at("experts_below_threshold"), below);
  EXPECT_EQ(j.at("experts_total"), loss.numel());
  EXPECT_DOUBLE_EQ(j.at("share_below_threshold").get<double>(), static_cast<double>(below) / loss.numel());
  ASSERT_EQ(j.at("layers").size(), c.moe_layers().size());
  for (size_t l = 0; l < c.moe_layers().size(); ++l) {
    const auto& layer = j.at("layers")[l];
    EXPECT_EQ(layer.at("layer"), c.moe_layers()[l]);
    auto row = loss[static_cast<int64_t>(l)];
    std::vector<int64_t> expected_below;
    for (int64_t e = 0; e < row.size(0); ++e) {
      if (row[e].item<int64_t>() < threshold) expected_below.push_back(e);
    }
    EXPECT_EQ(layer.at("below_threshold").get<std::vector<int64_t>>(), expected_below);
    EXPECT_EQ(layer.at("loss_tokens").get<std::vector<int64_t>>(),
              std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.size(0)));
  }
  auto back = CoverageCounter::read_json(dir / "coverage.json");
  EXPECT_EQ(back.state().dump(), counter.state().dump());
  EXPECT_FALSE(std::filesystem::exists(dir / "coverage.json.tmp"));
}

TEST(Coverage, ReadJsonNamesTheFileAndField) {
  TempDir dir;
  write_file_atomic(dir / "coverage.json", R"({"format": "character-coverage", "version": 1, "layers": []})");
  try {
    CoverageCounter::read_json(dir / "coverage.json");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("coverage.json: missing field num_experts"), std::string::npos) << e.what();
  }
}

TEST(Coverage, DenseModelIsAConfigError) {
  model::ModelConfig dense;
  dense.model_type = "qwen3";
  EXPECT_THROW(CoverageCounter::for_model(dense), ConfigError);
}

}  // namespace
}  // namespace character::testing
