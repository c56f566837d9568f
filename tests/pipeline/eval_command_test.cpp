// `character eval` through the real command line (in process): the flags reach
// run_eval, the reports are written, the summary is printed as text or JSON, and
// a missing required flag is a parse error. run_eval itself is proven in
// tests/eval/eval_run_test.cpp and tests/eval/narrow_training_test.cpp.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "pipeline/commands.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::run_cli;
using character::testing::TempDir;
using nlohmann::json;

std::vector<std::string> fast_args(const fs::path& out, const std::string& variants) {
  return {"eval", fixture("eval_run/qwen3_moe").string(), "--persona", "pirate", "--out", out.string(),
          "--categories", "short", "--variants", variants, "--samples", "1", "--max-new-tokens", "3", "--quiet"};
}

TEST(EvalCommand, JsonSummaryPointsAtTheReports) {
  at::set_num_threads(1);
  TempDir tmp;
  auto args = fast_args(tmp / "eval", "please");
  args.push_back("--json");
  const json summary = json::parse(run_cli(args));
  EXPECT_EQ(summary["report_json"], (tmp / "eval" / "report.json").string());
  for (const char* key : {"report_json", "report_md", "report_html"}) {
    EXPECT_TRUE(fs::exists(summary[key].get<std::string>())) << key;
  }
  const json report = json::parse(read_file(tmp / "eval" / "report.json"));
  EXPECT_EQ(report["code_version"], version_string());
  EXPECT_EQ(report["settings"]["categories"], json({"short"}));
  EXPECT_EQ(report["settings"]["variants"], json({"please"}));
  EXPECT_EQ(report["settings"]["max_new_tokens"], 3);
  int64_t responses = 0;
  for (const auto& item : report["probe"]["items"]) responses += static_cast<int64_t>(item["responses"].size());
  EXPECT_EQ(summary["responses"], responses);
  EXPECT_EQ(summary["gates_passed"], report["gates"]["passed"]);
  EXPECT_EQ(summary["gates"].size(), report["gates"]["gates"].size());
}

TEST(EvalCommand, TextSummaryNamesRateGatesAndReports) {
  at::set_num_threads(1);
  TempDir tmp;
  const std::string out = run_cli(fast_args(tmp / "eval", "none"));
  for (const char* text : {"in character:", "gates: ", "report.json", "report.html", "in_character_rate", "skip"}) {
    EXPECT_NE(out.find(text), std::string::npos) << text << "\n" << out;
  }
  const json report = json::parse(read_file(tmp / "eval" / "report.json"));
  EXPECT_EQ(report["settings"]["variants"], json::array());
  EXPECT_EQ(report["probe"]["paraphrase"]["pairs"], 0);
}

TEST(EvalCommand, PersonaAndOutAreRequired) {
  TempDir tmp;
  EXPECT_THROW(run_cli({"eval", fixture("eval_run/qwen3_moe").string(), "--out", (tmp / "x").string()}),
               CLI::RequiredError);
  EXPECT_THROW(run_cli({"eval", fixture("eval_run/qwen3_moe").string(), "--persona", "pirate"}), CLI::RequiredError);
}

}  // namespace
}  // namespace character::pipeline
