// RunConfig (pipeline/run_config.h): documented defaults, YAML over defaults
// with file:line:col errors, the JSON round trip the manifest relies on,
// --paper-scale as a preset beneath explicit values, validation, and that
// docs/pipeline.md documents every key.
#include "pipeline/run_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using character::testing::TempDir;
using nlohmann::json;

std::filesystem::path write_yaml(const TempDir& dir, const std::string& text) {
  const auto path = dir / "run.yaml";
  write_file_atomic(path, text);
  return path;
}

// The message of the ConfigError that applying `yaml` throws.
std::string yaml_error(const std::string& yaml) {
  TempDir dir;
  const auto path = write_yaml(dir, yaml);
  RunConfig config = default_run_config();
  try {
    apply_config_file(config, path);
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path.string() + ":", 0), 0u) << message;
    return message.substr(path.string().size());
  }
  ADD_FAILURE() << "no ConfigError for:\n" << yaml;
  return "";
}

TEST(RunConfig, DefaultsAreTheDocumentedOnes) {
  const json j = to_json(default_run_config());
  EXPECT_EQ(j["scale"], "mini");
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["seed"], 0);
  EXPECT_TRUE(j["training"]["learning_rate"].is_null());  // from the student's hidden size
  EXPECT_EQ(j["training"]["lora"]["rank"], 32);
  EXPECT_EQ(j["training"]["lora"]["train_router"], "none");
  EXPECT_EQ(j["training"]["sft_lr_factor"], 0.25);
  EXPECT_EQ(j["training"]["batch_size"], 8);
  EXPECT_EQ(j["training"]["dpo_beta"], 0.1);
  EXPECT_EQ(j["gates"]["min_in_character_rate"], 0.8);
  EXPECT_EQ(j["exports"], json({"tinker", "peft"}));
  EXPECT_EQ(j["runs_dir"], "runs");
  EXPECT_EQ(j["counts"]["dpo_pairs"], nullptr);
  EXPECT_EQ(j["teacher"]["api_key_env"], "");
  EXPECT_EQ(j["teacher"]["url"], "");   // none: the lab teacher (pipeline/lab_default.h)
  EXPECT_EQ(j["student"], "");          // none: the lab student
  EXPECT_EQ(j["constitution_share"], 0.5);
  EXPECT_EQ(j["coverage_augment"], false);
  EXPECT_EQ(j["coverage_pool_factor"], 3.0);
  EXPECT_EQ(j["lab"], json({{"size", "demo"}, {"dir", ""}, {"seed", 0}}));
}

TEST(RunConfig, YamlReadsTheLabAndGenerationKeys) {
  TempDir dir;
  RunConfig c = default_run_config();
  apply_config_file(c, write_yaml(dir, "constitution_share: 0\ncoverage_augment: true\ncoverage_pool_factor: 2\n"
                                       "lab:\n  size: tiny\n  dir: /tmp/lab\n  seed: 7\n"));
  EXPECT_EQ(c.constitution_share, 0.0);
  EXPECT_TRUE(c.coverage_augment);
  EXPECT_EQ(c.coverage_pool_factor, 2.0);
  EXPECT_EQ(c.lab.size, "tiny");
  EXPECT_EQ(c.lab.dir, "/tmp/lab");
  EXPECT_EQ(c.lab.seed, 7u);
  EXPECT_EQ(yaml_error("lab:\n  sized: tiny\n"), ":2:3: lab.sized: unknown key \"sized\", expected one of size, dir, seed");
  EXPECT_EQ(yaml_error("lab:\n  seed: -1\n"), ":2:9: lab.seed: found \"-1\", expected a non-negative integer");
}

TEST(RunConfig, YamlOverridesOnlyWhatItNames) {
  TempDir dir;
  const auto path = write_yaml(dir,
                               "persona: pirate\n"
                               "scale: smoke\n"
                               "counts:\n  dpo_pairs: 4\n"
                               "teacher:\n  url: http://127.0.0.1:9/v1\n  model: t\n  api_key_env: TEACHER_KEY\n"
                               "  price_in: 0.5\n"
                               "training:\n  lora:\n    rank: 8\n    train_router: lora\n  learning_rate: 2e-4\n"
                               "  max_steps: 3\n"
                               "probe:\n  samples: 1\n  variants: [please]\n"
                               "gates:\n  min_in_character_rate: 0.95\n"
                               "exports: [tinker, peft, merged]\n"
                               "seed: 7\n");
  RunConfig c = default_run_config();
  apply_config_file(c, path);
  EXPECT_EQ(c.persona, "pirate");
  EXPECT_EQ(c.scale, "smoke");
  EXPECT_EQ(c.counts.dpo_pairs, 4);
  EXPECT_FALSE(c.counts.reflections.has_value());
  EXPECT_EQ(c.teacher.url, "http://127.0.0.1:9/v1");
  EXPECT_EQ(c.teacher.api_key_env, "TEACHER_KEY");
  EXPECT_EQ(c.teacher.price_in, 0.5);
  EXPECT_FALSE(c.teacher.price_out.has_value());
  EXPECT_EQ(c.teacher.in_flight, 8);  // untouched default
  EXPECT_EQ(c.training.lora.rank, 8);
  EXPECT_EQ(c.training.lora.train_router, lora::RouterTraining::kLora);
  EXPECT_EQ(c.training.learning_rate, 2e-4);
  EXPECT_EQ(c.training.max_steps, 3);
  EXPECT_EQ(c.training.batch_size, 8);
  EXPECT_EQ(c.probe.samples, 1);
  EXPECT_EQ(c.probe.variants, std::vector<std::string>{"please"});
  EXPECT_EQ(c.gates.min_in_character_rate, 0.95);
  EXPECT_EQ(c.gates.min_category_rate, 0.6);
  EXPECT_EQ(c.exports.size(), 3u);
  EXPECT_EQ(c.seed, 7u);
  EXPECT_NO_THROW(validate(c));
}

TEST(RunConfig, YamlErrorsSayFileLineColumnKeyFoundAndExpected) {
  EXPECT_EQ(yaml_error("training:\n  lora:\n    rnak: 8\n"),
            ":3:5: training.lora.rnak: unknown key \"rnak\", expected one of rank, alpha, train_attn, train_mlp, "
            "train_unembed, train_router, router_lr_multiplier, expert_lora");
  EXPECT_EQ(yaml_error("seed: 1\ntraining:\n  batch_size: many\n"),
            ":3:15: training.batch_size: found \"many\", expected an integer");
  EXPECT_EQ(yaml_error("teacher: http://x/v1\n"), ":1:10: teacher: found a string, expected a map");
  EXPECT_EQ(yaml_error("probe:\n  greedy: maybe\n"), ":2:11: probe.greedy: found \"maybe\", expected true or false");
  EXPECT_EQ(yaml_error("training:\n  held_out: [1]\n"), ":2:13: training.held_out: found a list, expected a number");
  EXPECT_EQ(yaml_error("exports: tinker\n"), ":1:10: exports: found a string, expected a list of strings");
  EXPECT_EQ(yaml_error("seed: 1\nseed: 2\n"), ":2:1: seed: key \"seed\" appears twice");
  EXPECT_EQ(yaml_error("seed: -3\n"), ":1:7: seed: found \"-3\", expected a non-negative integer");
  EXPECT_EQ(yaml_error("training:\n  lora:\n    train_router: sometimes\n"),
            ":3:19: training.lora.train_router: 'sometimes', expected one of none, lora, full");
  EXPECT_EQ(yaml_error("max_tokens: 99999999999\n"),
            ":1:13: max_tokens: found 99999999999, expected a 32-bit integer");
  // An empty value is reported at its key, not at the next line (FieldReader's index).
  EXPECT_EQ(yaml_error("training:\n  batch_size:\nseed: 1\n"),
            ":2:3: training.batch_size: found nothing (an empty value), expected an integer");
  // Issue 14: aliases (a cyclic one crashed the loader) and deep nesting are refused.
  EXPECT_EQ(yaml_error("seed: &s 3\nprobe:\n  seed: *s\n"),
            ":3:9: an alias (*name): aliases are not accepted in this file, write the value out");
  EXPECT_EQ(yaml_error("probe: &p\n  extra_prompts: *p\n"),
            ":2:18: an alias (*name): aliases are not accepted in this file, write the value out");
  EXPECT_EQ(yaml_error("probe: " + std::string(100, '[') + std::string(100, ']') + "\n"),
            ":1:71: nested deeper than 64 levels");
  const std::string bad_yaml = yaml_error("teacher:\n  url: [unclosed\n");
  EXPECT_NE(bad_yaml.find("not valid YAML"), std::string::npos) << bad_yaml;
  EXPECT_EQ(bad_yaml.rfind(":3:", 0), 0u) << bad_yaml;
}

TEST(RunConfig, MissingFileIsIoErrorAndEmptyFileOrSectionChangesNothing) {
  TempDir dir;
  RunConfig c = default_run_config();
  EXPECT_THROW(apply_config_file(c, dir / "absent.yaml"), IoError);
  apply_config_file(c, write_yaml(dir, ""));
  apply_config_file(c, write_yaml(dir, "gates:\ntraining:\n"));
  EXPECT_EQ(to_json(c), to_json(default_run_config()));
}

TEST(RunConfig, NullResetsAnOptionalValue) {
  TempDir dir;
  RunConfig c = default_run_config();
  c.training.learning_rate = 1e-3;
  apply_config_file(c, write_yaml(dir, "training:\n  learning_rate: null\n"));
  EXPECT_FALSE(c.training.learning_rate.has_value());
}

TEST(RunConfig, JsonRoundTripKeepsEveryValue) {
  RunConfig c = default_run_config();
  c.persona = "personas/x.yaml";
  c.scale = "micro";
  c.counts.interactions = 3;
  c.counts.interaction_turns = 6;
  c.paper_scale = true;
  c.student = "/models/qwen";
  c.device = "cuda";
  c.dtype = "bfloat16";
  c.seed = 18446744073709551615ull;
  c.teacher = {"https://t/v1", "big", "T_KEY", 3, 2, 60, 1.5, 2.5};
  c.judge.url = "https://j/v1";
  c.judge.model = "judge";
  c.training.lora.rank = 64;
  c.training.lora.alpha = 16;
  c.training.lora.train_unembed = true;
  c.training.lora.train_router = lora::RouterTraining::kFull;
  c.training.lora.expert_lora = lora::ExpertLora::kPerExpert;
  c.training.lora.router_lr_multiplier = 2;
  c.training.learning_rate = 5e-5;
  c.training.paper_mode = true;
  c.training.aux_loss_coef = 0.01;
  c.training.schedule = "cosine";
  c.probe.temperature = 0.7;
  c.probe.variants = {};
  c.probe.categories = {"identity", "short"};
  c.probe.extra_prompts = "extra.json";
  c.base_routing = false;
  c.gates.untrained_router = "fail";
  c.gates.require_no_nan = false;
  c.exports = {"merged"};
  c.force_export = true;
  c.allow_drop_router = true;
  c.runs_dir = "/tmp/runs";
  c.max_tokens = 64;
  c.constitution_share = 0.25;
  c.coverage_augment = true;
  c.coverage_pool_factor = 4.5;
  c.lab.size = "tiny";
  c.lab.dir = "/cache/lab/tiny-seed3";
  c.lab.seed = 3;
  const json j = to_json(c);
  const RunConfig back = run_config_from_json(json::parse(j.dump()), "manifest.json: config");
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.seed, c.seed);
  EXPECT_EQ(back.teacher.price_out, 2.5);
  EXPECT_EQ(back.training.lora.expert_lora, lora::ExpertLora::kPerExpert);
  EXPECT_TRUE(back.probe.variants.empty());
  EXPECT_EQ(back.constitution_share, 0.25);
  EXPECT_TRUE(back.coverage_augment);
  EXPECT_EQ(back.coverage_pool_factor, 4.5);
  EXPECT_EQ(back.lab.size, "tiny");
  EXPECT_EQ(back.lab.dir, "/cache/lab/tiny-seed3");
  EXPECT_EQ(back.lab.seed, 3u);
  // Every key of the table is in the JSON.
  for (const auto& key : run_config_keys()) {
    std::string pointer = "/" + key;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    EXPECT_TRUE(j.contains(json::json_pointer(pointer))) << key;
  }
}

TEST(RunConfig, JsonErrorsNameSourceAndKey) {
  json j = to_json(default_run_config());
  j["training"]["batch_size"] = "8";
  try {
    run_config_from_json(j, "runs/x/manifest.json: config");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "runs/x/manifest.json: config: training.batch_size: found string \"8\", expected an integer");
  }
  j = to_json(default_run_config());
  j["extra"] = 1;
  EXPECT_THROW(run_config_from_json(j, "m.json"), ConfigError);
}

TEST(RunConfig, PaperScaleIsAPresetBeneathExplicitValues) {
  RunConfig c = default_run_config();
  apply_paper_scale(c);
  EXPECT_TRUE(c.paper_scale);
  EXPECT_EQ(c.training.lora.rank, 64);
  EXPECT_EQ(c.training.batch_size, 32);
  EXPECT_EQ(c.training.learning_rate, 5e-5);
  EXPECT_EQ(c.training.dpo_beta, 0.1);
  EXPECT_EQ(c.training.dpo_nll_coef, 0.1);
  EXPECT_EQ(c.training.epochs, 1);

  // In YAML, paper_scale applies first wherever it is written; the file's own values win.
  TempDir dir;
  RunConfig y = default_run_config();
  apply_config_file(y, write_yaml(dir, "training:\n  lora:\n    rank: 16\npaper_scale: true\n"));
  EXPECT_EQ(y.training.lora.rank, 16);
  EXPECT_EQ(y.training.batch_size, 32);
  EXPECT_EQ(y.training.learning_rate, 5e-5);
}

TEST(RunConfig, ValidateNamesTheKeyAndNeverPrintsAKey) {
  auto message = [](const std::function<void(RunConfig&)>& edit) {
    RunConfig c = default_run_config();
    c.persona = "pirate";
    edit(c);
    try {
      validate(c);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("valid");
  };
  EXPECT_EQ(message([](RunConfig&) {}), "valid");
  EXPECT_EQ(message([](RunConfig& c) { c.persona.clear(); }),
            "config persona: found nothing, expected a shipped persona name or a YAML file");
  const std::string leaked = message([](RunConfig& c) { c.teacher.api_key_env = "sk-proj-abcdef123456"; });
  EXPECT_NE(leaked.find("teacher.api_key_env"), std::string::npos) << leaked;
  EXPECT_EQ(leaked.find("sk-proj"), std::string::npos) << leaked;
  EXPECT_EQ(message([](RunConfig& c) { c.counts.dpo_pairs = -1; }), "--dpo-pairs -1, expected ≥ 0");
  EXPECT_EQ(message([](RunConfig& c) { c.scale = "huge"; }).rfind("--scale huge: unknown preset", 0), 0u);
  EXPECT_EQ(message([](RunConfig& c) { c.training.held_out = 1.5; }),
            "config training.held_out: found 1.5, expected a fraction in [0, 1)");
  EXPECT_EQ(message([](RunConfig& c) { c.exports = {"gguf"}; }),
            "config exports: found \"gguf\", expected tinker, peft or merged");
  EXPECT_EQ(message([](RunConfig& c) { c.probe.variants = {"shout"}; }),
            "config probe.variants: found \"shout\", expected please, lower, punct or long (eval/probe_set.h)");
  EXPECT_EQ(message([](RunConfig& c) { c.training.learning_rate = 0.0; }),
            "config training.learning_rate: found 0, expected > 0");
  EXPECT_EQ(message([](RunConfig& c) { c.teacher.url = "http://x/v1"; }),
            "config teacher.model: found nothing, expected the model name the endpoint serves");
  EXPECT_EQ(message([](RunConfig& c) { c.device = "tpu"; }), "config device: found \"tpu\", expected cpu or cuda[:N]");
  EXPECT_EQ(message([](RunConfig& c) { c.gates.min_in_character_rate = 1.01; }),
            "config gates.min_in_character_rate: found 1.01, expected a rate in [0, 1]");
  EXPECT_EQ(message([](RunConfig& c) { c.gates.untrained_router = "ignore"; }),
            "config gates.untrained_router: found \"ignore\", expected warn or fail");
  EXPECT_EQ(message([](RunConfig& c) { c.constitution_share = 1.5; }),
            "config constitution_share: found 1.5, expected a share in [0, 1]");
  EXPECT_EQ(message([](RunConfig& c) { c.coverage_pool_factor = 0.5; }),
            "config coverage_pool_factor: found 0.5, expected ≥ 1 (the pool's size over the DPO prompts)");
  EXPECT_EQ(message([](RunConfig& c) { c.lab.size = "huge"; }),
            "config lab.size: found \"huge\", expected one of tiny, demo, full (lab/lab.h)");
}

TEST(RunConfig, DocsListEveryKey) {
  const std::string docs = read_file(character::testing::source_dir() / "docs" / "pipeline.md");
  for (const auto& key : run_config_keys())
    EXPECT_NE(docs.find("`" + key + "`"), std::string::npos) << "docs/pipeline.md does not document `" << key << "`";
}

}  // namespace
}  // namespace character::pipeline
