// run_eval end to end on tiny models: the MoE student's report has every section,
// its greedy answers and routed experts are transformers' (fixture
// tools/oracle/fixtures_eval_run.py), a rerun gives the same report, a dense model
// has no routing, and bad inputs are errors that name what is wrong.
#include <gtest/gtest.h>

#include <atomic>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>

#include "base/atomic_file.h"
#include "base/error.h"
#include "eval/eval_run.h"
#include "eval/probe_run.h"
#include "lora/adapter_file.h"
#include "lora/adapters.h"
#include "model/arch/causal_lm.h"
#include "tests/remote/client_support.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::TempDir;
using nlohmann::json;

json read_json(const fs::path& path) { return json::parse(read_file(path)); }

// Fast settings: the six continuation prompts and their "please" variants, one
// sampled and one greedy answer each, as many tokens as the fixture generated.
EvalOptions moe_options(const fs::path& out) {
  EvalOptions o;
  o.model_dir = fixture("eval_run/qwen3_moe");
  o.persona = "pirate";
  o.out_dir = out;
  o.probe.samples = 1;
  o.probe.max_new_tokens = 10;
  o.probe.variants = {"please"};
  o.probe.categories = {"continuation"};
  o.base_routing = true;
  o.progress = false;
  return o;
}

class EvalRun : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(1); }
  TempDir tmp_;
};

TEST_F(EvalRun, MoeReportHasEverySectionAndARerunIsIdentical) {
  const EvalSummary summary = run_eval(moe_options(tmp_ / "a"));
  for (const auto& file : {summary.report_json, summary.report_md, summary.report_html}) {
    EXPECT_TRUE(fs::exists(file)) << file;
  }
  json report = read_json(summary.report_json);
  for (const char* key : {"format", "version", "created", "code_version", "model", "persona", "settings", "probe",
                          "judge", "routing", "warnings", "nan", "gates"}) {
    EXPECT_TRUE(report.contains(key)) << key;
  }
  EXPECT_EQ(report["format"], "character-eval-report");
  EXPECT_EQ(report["model"]["architecture"], "qwen3_moe");
  EXPECT_EQ(report["model"]["is_moe"], true);
  EXPECT_EQ(report["model"]["moe_layers"], json({0, 1}));
  EXPECT_EQ(report["model"]["num_experts"], 8);
  EXPECT_EQ(report["model"]["top_k"], 2);
  EXPECT_TRUE(report["model"]["adapter"].is_null());
  EXPECT_TRUE(report["model"]["train_router"].is_null());
  EXPECT_EQ(report["persona"]["name"], "pirate");
  EXPECT_EQ(report["settings"]["samples"], 1);
  // Sampling settings come from the fixture's generation_config.json.
  EXPECT_DOUBLE_EQ(report["settings"]["temperature"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(report["settings"]["top_p"].get<double>(), 0.8);

  const json& probe = report["probe"];
  // The seed's six continuation prompts and the pirate's own continuation probe,
  // each as original + please.
  ASSERT_EQ(probe["items"].size(), 14u);
  int64_t responses = 0;
  for (const auto& item : probe["items"]) {
    ASSERT_EQ(item["responses"].size(), 2u) << item["id"];
    EXPECT_EQ(item["responses"][0]["greedy"], false);
    EXPECT_EQ(item["responses"][1]["greedy"], true);
    for (const auto& r : item["responses"]) {
      for (const char* key : {"text", "finish_reason", "tokens", "signal_hits", "anti_signal_hits", "verdict", "score"}) {
        EXPECT_TRUE(r.contains(key)) << item["id"] << " " << key;
      }
      EXPECT_GE(r["tokens"].get<int64_t>(), 1);
      EXPECT_LE(r["tokens"].get<int64_t>(), 10);
      ++responses;
    }
  }
  EXPECT_EQ(probe["overall"]["responses"], responses);
  EXPECT_EQ(probe["categories"].size(), 1u);
  EXPECT_EQ(probe["paraphrase"]["pairs"], 7);
  EXPECT_EQ(summary.responses, responses);

  // Routing: every analysis present; rates over [L][E]; the base routing of the
  // same sequences (no adapter: the same model) agrees with the generation capture.
  const json& routing = report["routing"];
  ASSERT_TRUE(routing.is_object());
  EXPECT_EQ(routing["layers"], json({0, 1}));
  ASSERT_EQ(routing["utilization"]["rates"].size(), 2u);
  EXPECT_EQ(routing["utilization"]["rates"][0].size(), 8u);
  EXPECT_GT(routing["positions"]["probe_generated"].get<int64_t>(), 0);
  EXPECT_EQ(routing["positions"]["probe"].get<int64_t>(),
            routing["positions"]["probe_prompt"].get<int64_t>() + routing["positions"]["probe_generated"].get<int64_t>());
  double rate_sum = 0;
  for (const auto& r : routing["utilization"]["rates"][0]) rate_sum += r.get<double>();
  EXPECT_NEAR(rate_sum, 2.0, 1e-9);  // each position counts for its K = 2 experts
  EXPECT_TRUE(routing["coverage"].is_null());  // no coverage.json for a bare model
  EXPECT_EQ(routing["paraphrase_divergence"]["pairs"], 7);
  EXPECT_EQ(routing["paraphrase_divergence"]["highlight"]["a"], "Tell me more.");
  ASSERT_TRUE(routing["drift"].is_object());
  for (const auto& d : routing["drift"]["per_layer"]) EXPECT_LE(d.get<double>(), 0.02) << routing["drift"].dump();
  for (const char* key : {"circuits", "generation_dynamics", "moe_type", "warnings"}) {
    EXPECT_TRUE(routing.contains(key)) << key;
  }
  EXPECT_EQ(report["nan"]["found"], false);
  EXPECT_TRUE(report["gates"].contains("gates"));
  EXPECT_EQ(report["gates"]["passed"], summary.gates_passed);

  // A rerun with the same seed writes the same report (but for its timestamp).
  const EvalSummary again = run_eval(moe_options(tmp_ / "b"));
  json second = read_json(again.report_json);
  report.erase("created");
  second.erase("created");
  EXPECT_EQ(report, second);
  EXPECT_EQ(read_file(summary.report_md).size() > 0, true);
}

// The greedy answers and the routed experts of "Tell me more." and "Tell me more
// please." are transformers' (greedy generate, router top-k on the full sequence).
TEST_F(EvalRun, GreedyAnswersAndRoutingMatchTransformers) {
  const json cases = read_json(fixture("eval_run/cases.json"));
  ProbeRunOptions o;
  o.model_dir = fixture("eval_run/qwen3_moe");
  o.samples = 1;
  o.max_new_tokens = cases["max_new_tokens"];
  o.base_routing = true;
  o.progress = false;
  std::vector<ProbeItem> items;
  for (const auto& c : cases["cases"]) {
    items.push_back({"continuation/" + std::to_string(items.size()) + "/original",
                     "continuation/" + std::to_string(items.size()), "continuation", "original", c["prompt"]});
  }
  const ProbeRunResult run = run_probe(o, items);
  ASSERT_EQ(run.responses.size(), 2u);
  EXPECT_EQ(run.model.chat_family, "qwen3");
  size_t compared = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const json& c = cases["cases"][i];
    const ProbeResponse& greedy = run.responses[i].back();
    ASSERT_TRUE(greedy.greedy);
    EXPECT_EQ(greedy.prompt_tokens, static_cast<int64_t>(c["prompt_ids"].size()));
    EXPECT_EQ(greedy.ids, c["ids"].get<std::vector<int64_t>>()) << c["prompt"];
    EXPECT_EQ(greedy.text, c["text"].get<std::string>());
    EXPECT_EQ(greedy.finish_reason, c["finish_reason"].get<std::string>());
    // Trace rows: prompt positions [0, P), then generated row g = position P-1+g.
    const auto topk = c["topk"];  // [T][L][K]
    const int64_t prompt = greedy.prompt_tokens;
    for (const auto* trace : {&*greedy.routing, &*greedy.base_routing}) {
      ASSERT_EQ(trace->positions, prompt + static_cast<int64_t>(greedy.ids.size()));
      ASSERT_EQ(trace->prompt_positions, prompt);
      for (int64_t t = 0; t < trace->positions; ++t) {
        const int64_t position = t < prompt ? t : prompt - 1 + (t - prompt);
        for (int64_t l = 0; l < 2; ++l) {
          for (int64_t k = 0; k < 2; ++k) {
            EXPECT_EQ(trace->id(t, l, k), topk[position][l][k].get<int32_t>()) << c["prompt"] << " t=" << t;
            ++compared;
          }
        }
      }
    }
    EXPECT_TRUE(greedy.nan.empty());
  }
  EXPECT_GT(compared, 100u);
}

TEST_F(EvalRun, DenseModelHasNoRouting) {
  EvalOptions o = moe_options(tmp_ / "dense");
  o.model_dir = fixture("serve/qwen3_tiny");
  o.probe.categories = {"short"};
  o.probe.max_new_tokens = 4;
  const EvalSummary summary = run_eval(o);
  const json report = read_json(summary.report_json);
  EXPECT_EQ(report["model"]["is_moe"], false);
  EXPECT_TRUE(report["routing"].is_null());
  EXPECT_EQ(report["probe"]["categories"][0]["name"], "short");
  bool warned = false;
  for (const auto& w : report["warnings"]) warned |= w.get<std::string>().find("--base-routing") != std::string::npos;
  EXPECT_TRUE(warned) << report["warnings"].dump();
  EXPECT_TRUE(fs::exists(summary.report_html));
}

// With the judge on, its verdicts drive the rates and the signal verdicts stay
// beside them; a rerun into the same directory answers from the judge's cache.
TEST_F(EvalRun, JudgeVerdictsDriveTheRatesAndARerunAsksNothing) {
  remote::testing::FaultServer server;
  std::vector<remote::testing::Step> steps;
  for (int i = 0; i < 200; ++i) {
    steps.push_back([](const httplib::Request&, httplib::Response& res) {
      const json content = {{"verdict", "in_character"}, {"reason", "talks like a pirate"}};
      const json body = {{"id", "j"},
                         {"object", "chat.completion"},
                         {"choices", {{{"index", 0}, {"finish_reason", "stop"},
                                       {"message", {{"role", "assistant"}, {"content", content.dump()}}}}}},
                         {"usage", {{"prompt_tokens", 50}, {"completion_tokens", 12}}}};
      res.set_content(body.dump(), "application/json");
    });
  }
  server.script(std::move(steps));
  EvalOptions o = moe_options(tmp_ / "judged");
  o.probe.categories = {"short"};
  o.probe.variants.clear();
  o.probe.max_new_tokens = 3;
  o.base_routing = false;
  o.judge_url = server.base_url();
  o.judge_model = "judge-test";
  const EvalSummary summary = run_eval(o);
  const json report = read_json(summary.report_json);
  EXPECT_EQ(report["settings"]["scorer"], "judge");
  ASSERT_TRUE(report["judge"].is_object());
  EXPECT_EQ(report["judge"]["model"], "judge-test");
  EXPECT_NE(report["judge"]["rubric"].get<std::string>().find("pirate"), std::string::npos);
  EXPECT_GT(report["judge"]["calls"].get<int64_t>(), 0);
  EXPECT_DOUBLE_EQ(summary.in_character_rate, 1.0);
  for (const auto& item : report["probe"]["items"]) {
    for (const auto& r : item["responses"]) {
      EXPECT_EQ(r["judge"]["verdict"], "in_character");
      EXPECT_TRUE(r.contains("signal_hits"));  // the signal verdict is kept
    }
  }
  const int requests = server.requests();
  const json again = read_json(run_eval(o).report_json);
  EXPECT_EQ(server.requests(), requests);
  EXPECT_EQ(again["judge"]["calls"], 0);
  EXPECT_EQ(again["probe"]["overall"], report["probe"]["overall"]);
}

// An adapter whose attention output is NaN: the eval still writes its report,
// records where the non-finite values showed up, and the no_nan gate fails.
TEST_F(EvalRun, NonFiniteLogitsAreRecordedAndFailTheNanGate) {
  const fs::path model_dir = fixture("eval_run/qwen3_moe");
  const auto moe = model::load_model(model_dir);
  lora::LoraConfig config;
  config.rank = 2;
  const auto adapters = lora::attach_adapters(moe, config);
  {
    torch::NoGradGuard no_grad;
    adapters->get("model.layers.1.self_attn.o_proj.lora_B").fill_(std::nan(""));
  }
  lora::save_adapter(*adapters, model_dir, tmp_ / "nan_adapter");
  EvalOptions o = moe_options(tmp_ / "nan");
  o.adapter_dir = tmp_ / "nan_adapter";
  // Evaluated on a copy of its base: the same architecture loads, with a warning.
  fs::copy(model_dir, tmp_ / "copy", fs::copy_options::recursive);
  o.model_dir = tmp_ / "copy";
  o.probe.categories = {"short"};
  o.probe.variants.clear();
  o.probe.max_new_tokens = 3;
  o.base_routing = false;
  const EvalSummary summary = run_eval(o);
  const json report = read_json(summary.report_json);
  EXPECT_EQ(report["nan"]["found"], true);
  bool logits = false, failed = false;
  for (const auto& w : report["nan"]["where"]) {
    logits |= w.get<std::string>().find("logits at prompt position") != std::string::npos;
    failed |= w.get<std::string>().find("generation failed") != std::string::npos;
  }
  EXPECT_TRUE(logits) << report["nan"].dump();  // the greedy answers: argmax went on, the check caught it
  EXPECT_TRUE(failed) << report["nan"].dump();  // the sampled ones: torch refused the NaN distribution
  bool gate_failed = false;
  for (const auto& g : report["gates"]["gates"]) gate_failed |= g["name"] == "no_nan" && g["verdict"] == "fail";
  EXPECT_TRUE(gate_failed) << report["gates"].dump();
  EXPECT_FALSE(summary.gates_passed);
  bool other_base = false;
  for (const auto& w : report["warnings"]) other_base |= w.get<std::string>().find("was trained on") != std::string::npos;
  EXPECT_TRUE(other_base) << report["warnings"].dump();
}

template <class E>
std::string error_of(const EvalOptions& o) {
  try {
    run_eval(o);
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

// Ctrl-C in the pipeline sets the stop flag: the eval stops before its next
// generation batch with Interrupted and leaves no report behind.
TEST_F(EvalRun, StopFlagInterruptsBeforeTheNextBatchWithoutAReport) {
  std::atomic<bool> stop{true};
  EvalOptions o = moe_options(tmp_ / "stopped");
  o.stop_requested = &stop;
  try {
    run_eval(o);
    FAIL() << "the eval ran with the stop flag set";
  } catch (const Interrupted& e) {
    EXPECT_NE(std::string(e.what()).find("stopped after 0 of"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp_ / "stopped" / "report.json"));
}

TEST_F(EvalRun, BadInputsAreErrorsNamingWhatIsWrong) {
  EvalOptions o = moe_options(tmp_ / "bad");
  o.persona.clear();
  EXPECT_NE(error_of<ConfigError>(o).find("--persona"), std::string::npos);
  o.persona = "no-such-persona";
  EXPECT_NE(error_of<ConfigError>(o).find("no-such-persona"), std::string::npos);
  o.persona = "pirate";
  o.probe.categories = {"gossip"};
  EXPECT_NE(error_of<ConfigError>(o).find("gossip"), std::string::npos);
  o.probe.categories = {"short"};
  o.probe.samples = -1;
  EXPECT_NE(error_of<ConfigError>(o).find("--samples"), std::string::npos);
  o.probe.samples = 1;

  // An adapter trained on the MoE model, applied to the dense qwen3: refused,
  // naming the adapter's config and both model types.
  const auto moe = model::load_model(fixture("eval_run/qwen3_moe"));
  lora::LoraConfig config;
  config.rank = 2;
  const auto adapters = lora::attach_adapters(moe, config);
  const fs::path adapter = tmp_ / "adapter";
  lora::save_adapter(*adapters, fixture("eval_run/qwen3_moe"), adapter);
  o.model_dir = fixture("serve/qwen3_tiny");
  o.adapter_dir = adapter;
  const std::string message = error_of<CheckpointError>(o);
  EXPECT_NE(message.find("adapter_config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("qwen3_moe"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(tmp_ / "bad" / "report.json"));

  // A coverage.json of another model (other experts) is refused before generating.
  o.model_dir = fixture("eval_run/qwen3_moe");
  o.adapter_dir.clear();
  const fs::path coverage = tmp_ / "coverage.json";
  write_file_atomic(coverage, read_file(fixture("eval_run/qwen3_moe/config.json")));
  o.coverage_files = {coverage};
  EXPECT_FALSE(error_of<Error>(o).empty());
  o.coverage_files = {tmp_ / "missing.json"};
  EXPECT_NE(error_of<IoError>(o).find("missing.json"), std::string::npos);
}

}  // namespace
}  // namespace character::eval
