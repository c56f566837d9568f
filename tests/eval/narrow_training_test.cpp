// The end-to-end proof: a tiny MoE student LoRA-trained on prompts that
// reach only some experts (router frozen) gets a report that names the
// under-trained experts the probe reaches, a low probe coverage, a failing
// probe_coverage gate and the --train-router warning; trained with router LoRA on
// broader data, the report shows the change (coverage up, the gate passes).
// Coverage comes from the trainer's own RouterStepHook (coverage.json beside the
// adapter), which the eval finds by itself.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "base/atomic_file.h"
#include "eval/eval_run.h"
#include "eval/probe_set.h"
#include "lora/adapters.h"
#include "lora/train_data.h"
#include "lora/trainer.h"
#include "model/arch/causal_lm.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "router_train/router_hook.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::TempDir;
using nlohmann::json;

constexpr int64_t kMinLossTokens = 4;  // N: an expert is covered from this many loss-bearing tokens

struct Conversation {
  std::string user, assistant;
};

// Trains LoRA (attention + experts, router as asked) on `rows` with the router
// hook counting coverage; OUT/adapter and OUT/coverage.json as `character train`.
void train(const fs::path& out, const std::vector<Conversation>& rows, lora::RouterTraining router, int64_t steps) {
  const fs::path model_dir = fixture("eval_run/qwen3_moe");
  const auto model = model::load_model(model_dir);
  lora::LoraConfig config;
  config.rank = 4;
  config.train_router = router;
  config.seed = 3;
  const auto adapters = lora::attach_adapters(model, config);
  fs::create_directories(out.parent_path());
  const fs::path data_file = out.string() + ".jsonl";
  {
    std::ofstream f(data_file);
    for (const auto& r : rows) {
      f << json{{"messages", {{{"role", "user"}, {"content", r.user}}, {{"role", "assistant"}, {"content", r.assistant}}}}}
               .dump()
        << "\n";
    }
  }
  const auto tokenizer = model::load_tokenizer(model_dir);
  const auto renderer = model::make_chat_renderer("qwen3");
  lora::SftOptions sft;
  sft.chat.enable_thinking = false;  // as the probe asks
  const lora::SftDataset data = lora::load_sft_jsonl(data_file, *tokenizer, *renderer, sft);
  lora::TrainOptions t;
  t.out_dir = out;
  t.base_model = model_dir;
  t.learning_rate = 1e-2;
  t.schedule = lora::LrSchedule::kConstant;
  t.batch_size = 8;
  t.max_steps = steps;
  t.pad_id = 151643;
  t.progress = false;
  t.loss_chunk_tokens = 256;
  router_train::RouterHookOptions hook_options;
  hook_options.coverage_threshold = kMinLossTokens;
  router_train::RouterStepHook hook(model->config(), hook_options);
  lora::train_sft(model, *adapters, data, lora::SftDataset{}, t, &hook);
}

EvalOptions eval_options(const fs::path& adapter, const fs::path& out) {
  EvalOptions o;
  o.model_dir = fixture("eval_run/qwen3_moe");
  o.adapter_dir = adapter;  // coverage.json: found beside it
  o.persona = "pirate";
  o.out_dir = out;
  o.probe.samples = 1;
  o.probe.max_new_tokens = 4;
  o.probe.variants = {"please"};
  o.probe.categories = {"identity", "continuation"};
  o.gates.coverage_min_loss_tokens = kMinLossTokens;
  o.progress = false;
  return o;
}

const json& gate(const json& report, const std::string& name) {
  for (const auto& g : report["gates"]["gates"]) {
    if (g["name"] == name) return g;
  }
  static const json none;
  ADD_FAILURE() << "no gate " << name;
  return none;
}

bool mentions(const json& list, const std::string& text) {
  for (const auto& s : list) {
    if (s.get<std::string>().find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(NarrowTraining, ReportNamesUntouchedExpertsAndRouterTrainingOnBroadDataCoversThem) {
  at::set_num_threads(1);
  TempDir tmp;

  // Narrow: one exchange, eight times over; its few positions reach a few experts.
  train(tmp / "narrow", std::vector<Conversation>(8, {"Arr?", "Arr!"}), lora::RouterTraining::kNone, 1);
  const json narrow_coverage = json::parse(read_file(tmp / "narrow" / "coverage.json"));
  const EvalSummary narrow_summary = run_eval(eval_options(tmp / "narrow" / "adapter", tmp / "narrow_eval"));
  const json narrow = json::parse(read_file(narrow_summary.report_json));

  EXPECT_EQ(narrow["model"]["train_router"], "none");
  EXPECT_TRUE(mentions(narrow["warnings"], "--train-router")) << narrow["warnings"].dump();
  EXPECT_FALSE(mentions(narrow["warnings"], "was trained on")) << narrow["warnings"].dump();  // its own base
  EXPECT_TRUE(mentions(narrow["gates"]["notes"], "--train-router")) << narrow["gates"].dump();
  const json& coverage = narrow["routing"]["coverage"];
  ASSERT_TRUE(coverage.is_object()) << narrow["routing"].dump();
  EXPECT_EQ(coverage["sources"], json({(tmp / "narrow" / "coverage.json").string()}));
  EXPECT_EQ(coverage["min_loss_tokens"], kMinLossTokens);
  // Every named expert is below N in the trainer's own coverage.json and reached by the probe.
  ASSERT_FALSE(coverage["under_trained"].empty());
  for (const auto& u : coverage["under_trained"]) {
    const int64_t layer = u["layer"], expert = u["expert"];
    EXPECT_LT(u["loss_tokens"].get<int64_t>(), kMinLossTokens);
    EXPECT_GT(u["probe_rate"].get<double>(), 0.0);
    const json* entry = nullptr;
    for (const auto& l : narrow_coverage["layers"]) {
      if (l["layer"] == layer) entry = &l;
    }
    ASSERT_NE(entry, nullptr) << layer;
    EXPECT_EQ((*entry)["loss_tokens"][expert].get<int64_t>(), u["loss_tokens"].get<int64_t>());
    const auto below = (*entry)["below_threshold"].get<std::vector<int64_t>>();
    EXPECT_NE(std::find(below.begin(), below.end(), expert), below.end()) << "L" << layer << " E" << expert;
  }
  const double narrow_rate = coverage["probe_coverage"];
  EXPECT_LT(narrow_rate, 0.9);
  EXPECT_EQ(gate(narrow, "probe_coverage")["verdict"], "fail") << gate(narrow, "probe_coverage").dump();
  EXPECT_FALSE(narrow_summary.gates_passed);
  ASSERT_TRUE(narrow["routing"]["attribution"].is_object());
  for (const auto& item : narrow["probe"]["items"]) {
    for (const auto& r : item["responses"]) EXPECT_TRUE(r["under_trained_share"].is_number()) << item["id"];
  }

  // Broad: the probe's own kind of prompts and varied answers, with router LoRA.
  std::vector<Conversation> broad;
  const std::vector<std::string> answers = {
      "Arr, the sea be wide and the wind be fair, matey.", "Ye ask a fine question; the crew sails at dawn.",
      "Ahoy! I be the captain of this ship, and gold be my trade.",
      "Shiver me timbers, that tale be long: three storms and a kraken."};
  size_t a = 0;
  for (const auto& p : seed_probe_prompts()) {
    broad.push_back({p.prompt, answers[a++ % answers.size()]});
    broad.push_back({apply_variant("please", p.prompt), answers[a++ % answers.size()]});
  }
  train(tmp / "broad", broad, lora::RouterTraining::kLora, 10);
  const EvalSummary broad_summary = run_eval(eval_options(tmp / "broad" / "adapter", tmp / "broad_eval"));
  const json report = json::parse(read_file(broad_summary.report_json));
  EXPECT_EQ(report["model"]["train_router"], "lora");
  EXPECT_FALSE(mentions(report["warnings"], "--train-router")) << report["warnings"].dump();
  const double broad_rate = report["routing"]["coverage"]["probe_coverage"];
  EXPECT_GT(broad_rate, narrow_rate);
  EXPECT_LT(report["routing"]["coverage"]["under_trained"].size(), coverage["under_trained"].size());
  EXPECT_EQ(gate(report, "probe_coverage")["verdict"], "pass") << gate(report, "probe_coverage").dump();
  std::cerr << "probe coverage: narrow " << narrow_rate << " (" << coverage["under_trained"].size()
            << " under-trained experts reached), broad " << broad_rate << " ("
            << report["routing"]["coverage"]["under_trained"].size() << ")\n";
}

}  // namespace
}  // namespace character::eval
