// The adapter directory (lora/adapter_file.h): the oracle's adapters saved and
// read back load onto a fresh model and give PEFT's / the formula's logits
// (tools/oracle/fixtures_lora.py); a training checkpoint directory is accepted;
// a broken directory fails with a message naming the file and the tensor or
// field; the exports refuse adapters that do not fit their base model.
#include "lora/adapter_file.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/export.h"
#include "model/arch/tensor_io.h"
#include "model/io/safetensors.h"
#include "tests/lora/lora_fixtures.h"

namespace character::testing {
namespace {

namespace fs = std::filesystem;

const char* const kCase = "qwen3_moe_shared_outer_router_lora";

// Saves the oracle adapters of kCase into `dir` and returns the case.
LoraCase saved_case(const fs::path& dir) {
  auto c = lora_case(kCase);
  auto adapters = attach_oracle_adapters(c);
  lora::save_adapter(*adapters, fixture(std::string("lora/") + kCase + "/model"), dir);
  return c;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void rewrite_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto json = nlohmann::json::parse(read_file(dir / lora::kAdapterConfigFile));
  edit(json);
  write_file_atomic(dir / lora::kAdapterConfigFile, json.dump(2));
}

void rewrite_tensors(const fs::path& dir, const std::function<void(std::map<std::string, torch::Tensor>&)>& edit) {
  auto tensors = read_tensors(dir / lora::kAdapterWeightsFile);
  edit(tensors);
  model::TensorsToWrite records;
  for (const auto& [name, t] : tensors) records.add(name, t);
  model::write_safetensors(dir / lora::kAdapterWeightsFile, records.records());
}

TEST(AdapterFile, SavedAdaptersLoadOntoAFreshModelWithTheOracleLogits) {
  TempDir tmp;
  const auto dir = tmp / "adapter";
  auto saved = saved_case(dir);
  for (const auto& entry : fs::directory_iterator(tmp.path())) EXPECT_EQ(entry.path().filename(), "adapter");

  const auto file = lora::read_adapter(dir);
  EXPECT_EQ(file.model_type, "qwen3_moe");
  EXPECT_TRUE(file.base_model.is_absolute());
  EXPECT_EQ(file.config.rank, saved.config().rank);
  EXPECT_EQ(file.config.alpha, saved.config().alpha);
  EXPECT_EQ(file.config.train_router, lora::RouterTraining::kLora);
  EXPECT_EQ(file.config.expert_lora, lora::ExpertLora::kSharedOuter);
  ASSERT_EQ(file.tensors.size(), saved.adapters.size());
  for (const auto& [name, value] : saved.adapters) {
    ASSERT_TRUE(file.tensors.count(name)) << name;
    EXPECT_TRUE(torch::equal(file.tensors.at(name), value)) << name;
  }

  auto fresh = lora_case(kCase);
  auto adapters = lora::load_adapter(fresh.model, file);
  const double err = max_abs_diff(run(fresh).logits, fresh.at("logits"));
  EXPECT_LT(err, 1e-4);
  std::cout << "  " << kCase << ": " << file.tensors.size() << " tensors round-tripped, logits max abs error " << err
            << "\n";
}

TEST(AdapterFile, SavingAgainReplacesTheDirectoryAndATrainingCheckpointIsAccepted) {
  TempDir tmp;
  const auto checkpoint = tmp / "step-000001";
  saved_case(checkpoint / "adapter");
  saved_case(checkpoint / "adapter");  // replaces
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(checkpoint)) ++entries;
  EXPECT_EQ(entries, 1u) << "temporary directories left behind";
  const auto file = lora::read_adapter(checkpoint);
  EXPECT_EQ(file.dir, checkpoint / "adapter");
}

TEST(AdapterFile, BrokenDirectoriesNameTheFileAndTheTensorOrField) {
  TempDir tmp;
  const auto dir = tmp / "adapter";
  saved_case(dir);
  const std::string tensor = "model.layers.0.self_attn.q_proj.lora_A";

  {  // a tensor missing: read_adapter accepts the file, loading onto the model names it
    TempDir t2;
    fs::copy(dir, t2 / "a");
    rewrite_tensors(t2 / "a", [&](auto& m) { m.erase(tensor); });
    auto c = lora_case(kCase);
    const auto msg = error_of([&] { lora::load_adapter(c.model, lora::read_adapter(t2 / "a")); });
    EXPECT_NE(msg.find((t2 / "a" / lora::kAdapterWeightsFile).string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(tensor + " missing"), std::string::npos) << msg;
  }
  {  // a wrong shape
    TempDir t2;
    fs::copy(dir, t2 / "a");
    rewrite_tensors(t2 / "a", [&](auto& m) { m[tensor] = torch::zeros({3, 3}); });
    auto c = lora_case(kCase);
    const auto msg = error_of([&] { lora::load_adapter(c.model, lora::read_adapter(t2 / "a")); });
    EXPECT_NE(msg.find(tensor + " has shape [3, 3], expected"), std::string::npos) << msg;
  }
  {  // not fp32
    TempDir t2;
    fs::copy(dir, t2 / "a");
    rewrite_tensors(t2 / "a", [&](auto& m) { m[tensor] = m[tensor].to(torch::kBFloat16); });
    const auto msg = error_of([&] { lora::read_adapter(t2 / "a"); });
    EXPECT_NE(msg.find(tensor + " has dtype BF16, expected F32"), std::string::npos) << msg;
  }
  {  // a missing field, a wrong value
    TempDir t2;
    fs::copy(dir, t2 / "a");
    rewrite_config(t2 / "a", [](auto& j) { j.erase("rank"); });
    auto msg = error_of([&] { lora::read_adapter(t2 / "a"); });
    EXPECT_NE(msg.find("adapter_config.json: missing field rank"), std::string::npos) << msg;
    rewrite_config(t2 / "a", [](auto& j) { j["rank"] = "four"; });
    msg = error_of([&] { lora::read_adapter(t2 / "a"); });
    EXPECT_NE(msg.find("field rank is \"four\", expected a number"), std::string::npos) << msg;
    rewrite_config(t2 / "a", [](auto& j) { j["rank"] = 4; j["train_router"] = "half"; });
    msg = error_of([&] { lora::read_adapter(t2 / "a"); });
    EXPECT_NE(msg.find("train_router: 'half', expected one of none, lora, full"), std::string::npos) << msg;
    rewrite_config(t2 / "a", [](auto& j) { j["train_router"] = "lora"; j["format"] = "peft"; });
    msg = error_of([&] { lora::read_adapter(t2 / "a"); });
    EXPECT_NE(msg.find("format 'peft', expected 'character-adapter'"), std::string::npos) << msg;
  }
  {  // another architecture
    TempDir t2;
    fs::copy(dir, t2 / "a");
    rewrite_config(t2 / "a", [](auto& j) { j["model_type"] = "mixtral"; });
    auto c = lora_case(kCase);
    const auto msg = error_of([&] { lora::load_adapter(c.model, lora::read_adapter(t2 / "a")); });
    EXPECT_NE(msg.find("model_type mixtral, but the model is qwen3_moe"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([&] { lora::read_adapter(tmp / "nowhere"); }).find("no adapter_config.json"), std::string::npos);
}

// The exports check the adapter against the base model's architecture (on the
// meta device, no weights read) before writing anything.
TEST(AdapterFile, ExportsRefuseAnAdapterThatDoesNotFitTheBaseModel) {
  TempDir tmp;
  saved_case(tmp / "adapter");
  auto file = lora::read_adapter(tmp / "adapter");
  const std::string tensor = "model.layers.0.mlp.experts.down_proj.lora_A";
  ASSERT_TRUE(file.tensors.count(tensor));
  const auto expected = file.tensors.at(tensor).sizes().vec();  // [E, r, F]
  ASSERT_EQ(expected.size(), 3u);
  file.tensors[tensor] = torch::zeros({2, 2, 2});
  for (auto format : {lora::ExportFormat::kTinker, lora::ExportFormat::kPeft, lora::ExportFormat::kMerged}) {
    lora::ExportOptions options;
    options.format = format;
    options.base_model = file.base_model;
    options.allow_drop_router = true;
    const auto out = tmp / ("out-" + lora::to_string(format));
    const auto msg = error_of([&] { lora::export_adapter(file, out, options); });
    const std::string want = tensor + " has shape [2, 2, 2], expected [" + std::to_string(expected[0]) + ", " +
                             std::to_string(expected[1]) + ", " + std::to_string(expected[2]) + "]";
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(out));
  }
}

}  // namespace
}  // namespace character::testing
