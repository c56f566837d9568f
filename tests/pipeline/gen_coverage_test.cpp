// `generate-data --coverage-augment`'s prompts stage on a tiny MoE student (the
// eval fixtures' qwen3_moe, real tokenizer): the picked prompts are dpo_pairs
// distinct ones from a larger pool plus variants, they cover at least what a
// random pick covers, generation.json records it, a resume reads them back, and a
// missing or dense student is refused before any work.
#include "pipeline/gen_coverage.h"

#include <gtest/gtest.h>

#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "pipeline/generate_data.h"
#include "pipeline/gen_prompts.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using character::testing::fixture;
using character::testing::TempDir;
using nlohmann::json;

GenerateDataOptions prompts_only(const std::filesystem::path& out, const std::filesystem::path& student) {
  GenerateDataOptions o;
  o.persona = "pirate";
  // Pool prompts only (no constitution share): the teacher is never asked.
  o.teacher_url = "http://127.0.0.1:9";
  o.teacher_model = "unused";
  o.constitution_share = 0.0;
  o.student_dir = student.string();
  o.out = out.string();
  o.scale = "smoke";
  o.overrides.dpo_pairs = 12;
  o.stage = "prompts";
  o.seed = 4;
  o.coverage_augment = true;
  o.coverage_pool_factor = 3.0;
  o.progress = false;
  return o;
}

TEST(CoverageAugment, PromptStagePicksCoveringPromptsAndResumes) {
  TempDir dir;
  const auto student = fixture("eval/qwen3_moe") / "model";
  auto options = prompts_only(dir / "run", student);
  const auto first = generate_data(options);
  const auto lines = read_jsonl_lines(dir / "run" / "prompts.jsonl");
  ASSERT_EQ(lines.size(), 12u);
  std::set<std::string> normalised;
  for (const auto& line : lines) {
    const auto row = json::parse(line);
    EXPECT_TRUE(normalised.insert(normalize_prompt(row["prompt"].get<std::string>())).second) << line;
    EXPECT_TRUE(row["source"] == "pool" || row["source"] == "variant") << line;
  }
  const json c = first.summary.at("coverage_augment");
  EXPECT_EQ(c["pool"], 36);
  EXPECT_GT(c["variants"].get<int>(), 36);  // two per pool prompt, fewer only on collisions
  EXPECT_EQ(c["picked"], 12);
  EXPECT_GT(c["probe_prompts"].get<int>(), 41);
  EXPECT_GT(c["target_pairs"].get<int>(), 0);
  EXPECT_LE(c["covered_after"].get<int>(), c["target_pairs"].get<int>());
  EXPECT_GE(c["covered_after"].get<int>(), c["covered_before"].get<int>());
  EXPECT_EQ(json::parse(read_file(dir / "run" / "generation.json"))["coverage_augment"], c);

  // A resume reads the prompts back and keeps the record; without the option the
  // run's identity differs.
  const std::string before = read_file(dir / "run" / "prompts.jsonl");
  options.resume = true;
  generate_data(options);
  EXPECT_EQ(read_file(dir / "run" / "prompts.jsonl"), before);
  EXPECT_EQ(json::parse(read_file(dir / "run" / "generation.json"))["coverage_augment"], c);
  options.coverage_augment = false;
  EXPECT_THROW(generate_data(options), ConfigError);

  // The same seed picks the same prompts.
  generate_data(prompts_only(dir / "again", student));
  EXPECT_EQ(read_file(dir / "again" / "prompts.jsonl"), before);
}

TEST(CoverageAugment, NeedsALocalMoeStudent) {
  TempDir dir;
  auto options = prompts_only(dir / "run", "");
  try {
    generate_data(options);
    ADD_FAILURE() << "coverage augment without a student";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--coverage-augment needs a local MoE student"), std::string::npos) << e.what();
  }
  // A dense student: refused from its config.json alone.
  std::filesystem::create_directories(dir / "dense");
  auto config = json::parse(read_file(fixture("eval/qwen3_moe") / "model" / "config.json"));
  config["model_type"] = "qwen3";
  for (const char* key : {"num_experts", "num_local_experts", "num_experts_per_tok", "moe_intermediate_size",
                          "mlp_only_layers", "decoder_sparse_step", "norm_topk_prob"})
    config.erase(key);
  write_file_atomic(dir / "dense" / "config.json", config.dump());
  options.student_dir = (dir / "dense").string();
  try {
    generate_data(options);
    ADD_FAILURE() << "coverage augment with a dense student";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("is dense"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "run" / "prompts.jsonl"));
  EXPECT_THROW(coverage_pool_size(10, 0.5), ConfigError);
  EXPECT_EQ(coverage_pool_size(10, 2.5), 25u);
}

}  // namespace
}  // namespace character::pipeline
