// `character inspect`: reads config.json, the safetensors headers (never the tensor
// data), the tokenizer and the chat template of a model directory, and reports them
// as text or one JSON object. Parameter counts come from the config and are checked
// against the numel of the tensors actually stored.
#include "pipeline/inspect_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "base/error.h"
#include "model/io/config.h"
#include "model/io/param_count.h"
#include "model/io/safetensors.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "pipeline/commands.h"
#include "router_train/frozen_router.h"

namespace character::pipeline {
namespace {

using nlohmann::json;

// The MoE failure this project exists for (DESIGN.md, seed 000_0e9732539b7a9d3a.txt).
const std::string kRouterWarning =
    std::string("mixture-of-experts model: LoRA alone leaves the router untrained. ") + router_train::kFrozenRouterRisk;

// 30532122624 → "30.53B".
std::string short_count(int64_t n) {
  char buffer[32];
  if (n >= 1'000'000'000) std::snprintf(buffer, sizeof(buffer), "%.2fB", n / 1e9);
  else if (n >= 1'000'000) std::snprintf(buffer, sizeof(buffer), "%.2fM", n / 1e6);
  else if (n >= 1'000) std::snprintf(buffer, sizeof(buffer), "%.1fK", n / 1e3);
  else std::snprintf(buffer, sizeof(buffer), "%lld", static_cast<long long>(n));
  return buffer;
}

json weights_report(const model::SafetensorsSet& weights) {
  json dtypes = json::object();  // dtype name → number of tensors
  int64_t numel = 0;
  for (const auto& name : weights.names()) {
    const model::TensorView view = weights.view(name);
    numel += view.numel();
    const std::string dtype(model::dtype_name(view.dtype));
    dtypes[dtype] = dtypes.value(dtype, 0) + 1;
  }
  return {{"files", weights.files().size()},
          {"tensors", weights.names().size()},
          {"dtypes", dtypes},
          {"numel", numel}};
}

// The tokenizer and chat family are reported, not fatal: inspect is where a user
// finds out that a directory's tokenizer is one this build cannot read.
json tokenizer_report(const std::filesystem::path& dir, int64_t config_vocab, json& warnings) {
  try {
    auto tokenizer = model::load_tokenizer(dir);
    if (tokenizer->vocab_size() > config_vocab)
      warnings.push_back("tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                         " tokens but config.json vocab_size is " + std::to_string(config_vocab) +
                         "; ids past the embedding table would fail");
    return {{"kind", tokenizer->kind}, {"vocab_size", tokenizer->vocab_size()}};
  } catch (const Error& e) {
    warnings.push_back(std::string("tokenizer: ") + e.what());
    return {{"error", e.what()}};
  }
}

json chat_report(const std::filesystem::path& dir, json& warnings) {
  try {
    return {{"family", model::detect_chat_family(dir)}};
  } catch (const Error& e) {
    warnings.push_back(std::string("chat template: ") + e.what());
    return {{"error", e.what()}};
  }
}

}  // namespace

json inspect_model(const std::filesystem::path& dir) {
  const model::ModelConfig config = model::load_config(dir);
  const model::ParameterCount count = model::count_parameters(config);
  const model::SafetensorsSet weights = model::SafetensorsSet::open_dir(dir);
  json warnings = json::array();

  json report;
  report["model_dir"] = dir.string();
  report["model_type"] = config.model_type;
  report["architectures"] = config.architectures;
  report["num_hidden_layers"] = config.num_hidden_layers;
  report["hidden_size"] = config.hidden_size;
  report["vocab_size"] = config.vocab_size;
  report["num_attention_heads"] = config.num_attention_heads;
  report["num_key_value_heads"] = config.num_key_value_heads;
  report["head_dim"] = config.head_dim;
  report["tie_word_embeddings"] = config.tie_word_embeddings;
  report["weights"] = weights_report(weights);

  // Cross-check: a tied checkpoint may still store lm_head.weight (a copy of the
  // embedding), which the model does not count twice.
  int64_t expected_numel = count.total;
  if (config.tie_word_embeddings && weights.contains("lm_head.weight")) expected_numel += config.vocab_size * config.hidden_size;
  const int64_t stored = report["weights"]["numel"];
  report["parameters"] = {{"total", count.total},
                          {"active", count.active},
                          {"in_weights", stored},
                          {"matches_weights", stored == expected_numel}};
  if (stored != expected_numel)
    warnings.push_back("the safetensors files hold " + std::to_string(stored) + " parameters but config.json implies " +
                       std::to_string(expected_numel) + "; config and weights disagree");

  if (config.is_moe()) {
    std::vector<int64_t> moe_layers;
    for (int64_t l = 0; l < config.num_hidden_layers; ++l)
      if (config.is_moe_layer(l)) moe_layers.push_back(l);
    report["moe"] = {{"num_experts", config.num_experts},
                     {"num_experts_per_tok", config.num_experts_per_tok},
                     {"expert_intermediate_size", config.expert_intermediate_size()},
                     {"params_per_expert", count.per_expert},
                     {"norm_topk_prob", config.norm_topk_prob},
                     {"moe_layers", moe_layers}};
    warnings.push_back(kRouterWarning);
  } else {
    report["moe"] = nullptr;
    report["intermediate_size"] = config.intermediate_size;
  }
  report["tokenizer"] = tokenizer_report(dir, config.vocab_size, warnings);
  report["chat"] = chat_report(dir, warnings);
  report["warnings"] = warnings;
  return report;
}

std::string format_inspect(const json& r) {
  std::ostringstream out;
  auto row = [&out](const std::string& label, const std::string& value) {
    out << label << std::string(label.size() < 14 ? 14 - label.size() : 1, ' ') << value << "\n";
  };
  const json& p = r["parameters"];
  std::string architecture = r["model_type"].get<std::string>();
  if (!r["architectures"].empty()) architecture += " (" + r["architectures"][0].get<std::string>() + ")";
  row("model", r["model_dir"].get<std::string>());
  row("architecture", architecture);
  row("parameters", short_count(p["total"]) + " total, " + short_count(p["active"]) + " active per token (" +
                        std::to_string(p["total"].get<int64_t>()) + " / " + std::to_string(p["active"].get<int64_t>()) +
                        (p["matches_weights"].get<bool>() ? "; weights agree)" : "; weights DISAGREE)"));
  const int64_t layers = r["num_hidden_layers"];
  std::string layer_text = std::to_string(layers);
  if (const json& moe = r["moe"]; !moe.is_null()) {
    const auto& moe_layers = moe["moe_layers"];
    layer_text += static_cast<int64_t>(moe_layers.size()) == layers ? " (all MoE)" : " (MoE layers " + moe_layers.dump() + ")";
  }
  row("layers", layer_text);
  row("hidden size", std::to_string(r["hidden_size"].get<int64_t>()));
  row("attention", std::to_string(r["num_attention_heads"].get<int64_t>()) + " heads, " +
                       std::to_string(r["num_key_value_heads"].get<int64_t>()) + " kv heads, head_dim " +
                       std::to_string(r["head_dim"].get<int64_t>()));
  if (const json& moe = r["moe"]; !moe.is_null()) {
    row("experts", std::to_string(moe["num_experts"].get<int64_t>()) + ", top-" +
                       std::to_string(moe["num_experts_per_tok"].get<int64_t>()) + " (expert intermediate " +
                       std::to_string(moe["expert_intermediate_size"].get<int64_t>()) + ", " +
                       short_count(moe["params_per_expert"]) + " params each)");
  }
  std::string dtypes;
  for (const auto& [dtype, n] : r["weights"]["dtypes"].items())
    dtypes += (dtypes.empty() ? "" : ", ") + dtype + " (" + std::to_string(n.get<int64_t>()) + " tensors)";
  row("weights", dtypes + " in " + std::to_string(r["weights"]["files"].get<int64_t>()) + " file(s)");
  const json& tok = r["tokenizer"];
  row("tokenizer", tok.contains("error") ? "unreadable (see warnings)"
                                         : tok["kind"].get<std::string>() + ", " +
                                               std::to_string(tok["vocab_size"].get<int64_t>()) + " tokens");
  const json& chat = r["chat"];
  row("chat family", chat.contains("error") ? "unknown (see warnings)" : chat["family"].get<std::string>());
  for (const auto& w : r["warnings"]) out << "warning: " << w.get<std::string>() << "\n";
  return out.str();
}

void add_inspect_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("inspect", "Show a model directory: architecture, parameters, experts, tokenizer");
  auto model_dir = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  sub->add_option("model_dir", *model_dir, "Hugging Face model directory (config.json, safetensors, tokenizer)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_flag("--json", *as_json, "Print one JSON object instead of text");
  set_command_action(*sub, [model_dir, as_json] {
    const json report = inspect_model(*model_dir);
    std::cout << (*as_json ? report.dump(2) + "\n" : format_inspect(report));
    return 0;
  });
}

}  // namespace character::pipeline
