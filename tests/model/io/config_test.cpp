// config.json parsing against transformers 5.5.4: Hub-style and v5-saved configs of
// the five architectures resolve to the same head_dim, rope, token ids, experts, MoE
// layers and parameter counts as the reference config classes and models; bad
// configs fail with a ConfigError naming the file, the field and what was expected.
#include "model/io/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/io/param_count.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using nlohmann::json;
using testing::fixture;
using testing::TempDir;

json cases() { return json::parse(read_file(fixture("config/cases.json"))); }

json case_config(const std::string& name) { return cases().at(name).at("config_json"); }

std::string config_error(const json& config, const std::string& source = "config.json") {
  try {
    parse_config(config, source);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no ConfigError>";
}

std::optional<int64_t> optional_id(const json& v) {
  return v.is_null() ? std::nullopt : std::optional<int64_t>(v.get<int64_t>());
}

TEST(Config, ResolvesLikeTransformersConfigClasses) {
  const json all = cases();
  ASSERT_EQ(all.size(), 16u);  // 5 Hub configs, the same saved by transformers 5, 6 minimal ones
  for (const auto& [name, c] : all.items()) {
    SCOPED_TRACE(name);
    const json& want = c["expected"];
    const ModelConfig got = parse_config(c["config_json"], name + "/config.json");
    EXPECT_EQ(got.model_type, want["model_type"]);
    EXPECT_EQ(got.head_dim, want["head_dim"]);
    EXPECT_EQ(got.num_key_value_heads, want["num_key_value_heads"]);
    EXPECT_EQ(got.rope_theta, want["rope_theta"].get<double>());
    if (want["rope_type"] == "llama3") {
      ASSERT_TRUE(got.rope_scaling.has_value());
      EXPECT_EQ(got.rope_scaling->rope_type, "llama3");
      EXPECT_EQ(got.rope_scaling->factor, want["rope_factor"].get<double>());
      EXPECT_EQ(got.rope_scaling->low_freq_factor, want["rope_low_freq_factor"].get<double>());
      EXPECT_EQ(got.rope_scaling->high_freq_factor, want["rope_high_freq_factor"].get<double>());
      EXPECT_EQ(got.rope_scaling->original_max_position_embeddings, want["rope_original_max_position_embeddings"]);
    } else {
      EXPECT_EQ(want["rope_type"], "default");
      EXPECT_FALSE(got.rope_scaling.has_value());
    }
    EXPECT_EQ(got.rms_norm_eps, want["rms_norm_eps"].get<double>());
    EXPECT_EQ(got.max_position_embeddings, want["max_position_embeddings"]);
    EXPECT_EQ(got.tie_word_embeddings, want["tie_word_embeddings"]);
    EXPECT_EQ(got.bos_token_id, optional_id(want["bos_token_id"]));
    EXPECT_EQ(got.eos_token_id, want["eos_token_id"].get<std::vector<int64_t>>());
    EXPECT_EQ(got.pad_token_id, optional_id(want["pad_token_id"]));
    EXPECT_EQ(got.num_experts, want["num_experts"]);
    EXPECT_EQ(got.num_experts_per_tok, want["num_experts_per_tok"]);
    if (got.is_moe()) {
      EXPECT_EQ(got.norm_topk_prob, want["norm_topk_prob"]);
      EXPECT_EQ(got.router_aux_loss_coef, want["router_aux_loss_coef"].get<double>());
    }
    std::vector<int64_t> moe_layers;
    for (int64_t l = 0; l < got.num_hidden_layers; ++l)
      if (got.is_moe_layer(l)) moe_layers.push_back(l);
    EXPECT_EQ(moe_layers, want["moe_layers"].get<std::vector<int64_t>>());

    // Counted from the model transformers builds (meta device): 8.03B for Llama 3.1 8B,
    // 30.5B total / 3.35B active for Qwen3-30B-A3B, 46.7B / 12.9B for Mixtral 8x7B.
    const ParameterCount count = count_parameters(got);
    EXPECT_EQ(count.total, want["params_total"]);
    EXPECT_EQ(count.active, want["params_active"]);
    EXPECT_EQ(count.per_expert, want["params_per_expert"]);
  }
}

TEST(Config, WrittenConfigParsesBackToTheSameModel) {
  const json all = cases();
  for (const auto& [name, c] : all.items()) {
    SCOPED_TRACE(name);
    const ModelConfig first = parse_config(c["config_json"], name);
    const ModelConfig second = parse_config(config_to_json(first), name + " (written)");
    EXPECT_EQ(config_to_json(second), config_to_json(first));
    EXPECT_EQ(count_parameters(second).total, count_parameters(first).total);
  }
}

TEST(Config, MissingRequiredFieldIsNamed) {
  json config = case_config("qwen3_moe_hub");
  config.erase("num_experts_per_tok");
  EXPECT_EQ(config_error(config), "config.json: missing field num_experts_per_tok (required for qwen3_moe)");
  config = case_config("mixtral_hub");
  config.erase("num_local_experts");
  EXPECT_EQ(config_error(config), "config.json: missing field num_experts (required for mixtral)");
  config = case_config("llama31_hub");
  config.erase("hidden_size");
  EXPECT_EQ(config_error(config), "config.json: missing field hidden_size (required for llama)");
}

TEST(Config, UnknownModelTypeIsNamedWithTheSupportedOnes) {
  json config = case_config("llama31_hub");
  config["model_type"] = "gpt2";
  EXPECT_EQ(config_error(config),
            "config.json: model_type \"gpt2\" is not supported (supported: llama, qwen3, qwen3_moe, mixtral, olmoe)");
  config.erase("model_type");
  EXPECT_EQ(config_error(config), "config.json: missing field model_type");
}

TEST(Config, ExpertCountsOutOfRangeAreNamed) {
  json config = case_config("qwen3_moe_hub");
  config["num_experts_per_tok"] = 0;
  EXPECT_EQ(config_error(config), "config.json: num_experts_per_tok=0, expected >= 1 for qwen3_moe");
  config["num_experts_per_tok"] = 129;
  EXPECT_EQ(config_error(config), "config.json: num_experts_per_tok=129 exceeds num_experts=128");
  config = case_config("olmoe_hub");
  config["num_experts"] = "64";
  EXPECT_EQ(config_error(config), "config.json: field num_experts=\"64\", expected an integer");
}

// Issue 14: sizes far beyond any model are refused while parsing (a huge layer count made
// the parser loop over its layers; huge sizes aborted later in the allocator).
TEST(Config, SizesBeyondAnyModelAreRefusedWhileParsing) {
  json config = case_config("qwen3_moe_hub");
  config["num_hidden_layers"] = int64_t{1} << 50;
  EXPECT_EQ(config_error(config),
            "config.json: num_hidden_layers=1125899906842624 is beyond what this engine loads, expected at most 1024");
  config = case_config("qwen3_moe_hub");
  config["vocab_size"] = int64_t{1} << 30;
  EXPECT_EQ(config_error(config),
            "config.json: vocab_size=1073741824 is beyond what this engine loads, expected at most 4194304");
  config = case_config("mixtral_hub");
  config["intermediate_size"] = int64_t{1} << 40;
  EXPECT_EQ(config_error(config),
            "config.json: intermediate_size=1099511627776 is beyond what this engine loads, expected at most 1048576");
  config = case_config("olmoe_hub");
  config["num_experts"] = 100000;
  EXPECT_EQ(config_error(config),
            "config.json: num_experts=100000 is beyond what this engine loads, expected at most 4096");
}

TEST(Config, UnsupportedFeaturesAreNamed) {
  json config = case_config("llama31_hub");
  config["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_NE(config_error(config).find("rope_scaling type \"yarn\" is not supported"), std::string::npos);
  config = case_config("qwen3_hub");
  config["use_sliding_window"] = true;
  EXPECT_NE(config_error(config).find("use_sliding_window=true"), std::string::npos);
  config = case_config("olmoe_hub");
  config["clip_qkv"] = 8.0;
  EXPECT_NE(config_error(config).find("clip_qkv is set"), std::string::npos);
  config = case_config("llama31_hub");
  config["num_key_value_heads"] = 5;
  EXPECT_NE(config_error(config).find("num_attention_heads=32 is not a multiple of num_key_value_heads=5"),
            std::string::npos);
}

// Every field of every case replaced by values of the wrong kind: the parser either
// accepts the config or throws ConfigError; no json::exception or crash escapes.
TEST(Config, WrongTypesNeverEscapeAsOtherExceptions) {
  const std::vector<json> replacements = {"x", nullptr, -1, 0, 1.5, json::array({1, "a"}), json::object({{"a", 1}}),
                                          true, 1e300};
  int rejected = 0, tried = 0;
  const json all = cases();
  for (const auto& [name, c] : all.items()) {
    const json& original = c["config_json"];
    std::vector<std::string> keys;
    for (const auto& [key, value] : original.items()) keys.push_back(key);
    for (const auto& key : keys) {
      for (const json& replacement : replacements) {
        json config = original;
        config[key] = replacement;
        if (key == "rope_scaling" && original[key].is_object())
          for (const char* sub : {"factor", "rope_type", "original_max_position_embeddings"}) {
            json nested = original;
            nested[key][sub] = replacement;
            ++tried;
            try {
              parse_config(nested, name);
            } catch (const ConfigError&) {
              ++rejected;
            }
          }
        ++tried;
        try {
          parse_config(config, name);
        } catch (const ConfigError& e) {
          ++rejected;
          EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        }
      }
    }
  }
  EXPECT_GT(tried, 2000);
  EXPECT_GT(rejected, 500);
}

TEST(Config, LoadConfigFileErrors) {
  TempDir tmp;
  EXPECT_THROW(load_config(tmp.path()), CheckpointError);
  write_file_atomic(tmp / "config.json", "{\"model_type\": ");
  try {
    load_config(tmp.path());
    ADD_FAILURE() << "accepted truncated JSON";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find((tmp / "config.json").string()), std::string::npos) << e.what();
  }
  write_file_atomic(tmp / "config.json", case_config("qwen3_hub").dump());
  EXPECT_EQ(load_config(tmp.path()).head_dim, 128);
  EXPECT_EQ(load_config(tmp / "config.json").num_hidden_layers, 28);
}

}  // namespace
}  // namespace character::model
