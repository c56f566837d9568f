// `character analyze MODEL_DIR [--adapter A] (--probe | --prompts F) [--layer N]
// [--token T] [--views all|domain|token|prompts] [--out DIR] [--json]`: routes
// prompts through an MoE model (prefill with router capture, no generation) and
// prints seed 002's exploration views (domain test, one token in many contexts)
// and, for the probe or a prompt file, utilization, cold experts, paraphrase
// routing divergence, adjacent-layer circuits and the MoE type (docs/cli.md).
#include <CLI/CLI.hpp>

#include <torch/torch.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "eval/explore.h"
#include "eval/moe_type.h"
#include "eval/probe_set.h"
#include "eval/routing_capture.h"
#include "eval/routing_metrics.h"
#include "lora/adapter_file.h"
#include "model/arch/causal_lm.h"
#include "model/text/tokenizer.h"
#include "pipeline/commands.h"

namespace character::pipeline {
namespace {

using nlohmann::json;

struct AnalyzeArgs {
  std::string model_dir;
  std::string adapter_dir;
  bool probe = false;
  std::string prompts_file;
  std::optional<int64_t> layer;
  std::string token = "127";
  std::string views = "all";
  std::string out_dir;
  bool json = false;
  std::string device = "cpu";
};

// The prompts view's items: the probe (41 prompts and their variants) or a JSON
// file of {"category", "prompt"} with the same variants.
std::vector<eval::ProbeItem> prompt_items(const AnalyzeArgs& args) {
  if (args.probe) return eval::build_probe_set({}).items;
  std::vector<eval::ProbeItem> items;
  const auto prompts = eval::load_extra_prompts(args.prompts_file);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string base = prompts[i].category + "/file" + std::to_string(i);
    items.push_back({base + "/" + eval::kOriginalVariant, base, prompts[i].category, eval::kOriginalVariant, prompts[i].prompt});
    for (const auto& variant : eval::variant_names()) {
      const std::string text = eval::apply_variant(variant, prompts[i].prompt);
      if (text != prompts[i].prompt) items.push_back({base + "/" + variant, base, prompts[i].category, variant, text});
    }
  }
  return items;
}

json prompts_view(const AnalyzeArgs& args, const model::Tokenizer& tokenizer, const eval::SequenceRouter& route,
                  std::ostringstream& text) {
  const auto items = prompt_items(args);
  std::vector<std::string> texts;
  for (const auto& item : items) texts.push_back(item.prompt);
  const auto traces = route(model::encode_batch(tokenizer, texts, /*add_special_tokens=*/true));

  std::map<std::string, size_t> original;
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].variant == eval::kOriginalVariant) original[items[i].base_id] = i;
  std::vector<eval::TracePair> pairs;
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].variant != eval::kOriginalVariant && original.count(items[i].base_id)) pairs.push_back({original[items[i].base_id], i});

  const eval::Utilization u = eval::utilization(traces);
  eval::ParaphraseDivergence divergence = eval::paraphrase_divergence(traces, pairs);
  const std::string a = "Tell me more.", b = "Tell me more please.";
  const auto highlight = route(model::encode_batch(tokenizer, {a, b}, /*add_special_tokens=*/true));
  divergence.highlight = eval::ParaphraseHighlight{a, b, eval::prompt_expert_jaccard(highlight[0], highlight[1])};
  const eval::Circuits c = eval::circuits(traces);

  text << "PROMPTS: " << items.size() << " (" << (args.probe ? "the probe and its variants" : args.prompts_file)
       << "), raw text without chat template\n\n"
       << eval::format_utilization(u, args.layer) << "\n"
       << eval::format_paraphrase(divergence, u.layers) << "\n"
       << eval::format_circuits(c) << "\n";
  return {{"source", args.probe ? json("probe") : json(args.prompts_file)},
          {"prompts", items.size()},
          {"utilization", u.to_json()},
          {"paraphrase_divergence", divergence.to_json()},
          {"circuits", c.to_json()}};
}

int run_analyze(const AnalyzeArgs& args) {
  if (args.views != "all" && args.views != "domain" && args.views != "token" && args.views != "prompts")
    throw ConfigError("analyze: --views " + args.views + ", expected all, domain, token or prompts");
  const bool prompts = args.views == "all" || args.views == "prompts";
  if (prompts && !args.probe && args.prompts_file.empty())
    throw ConfigError("analyze: --views " + args.views + " needs --probe or --prompts FILE");
  if (args.device != "cpu" && args.device != "cuda") throw ConfigError("analyze: --device " + args.device + ", expected cpu or cuda");

  const std::filesystem::path dir = args.model_dir;
  model::LoadOptions load;
  load.device = args.device;
  const model::CausalLM model = model::load_model(dir, load);
  model->eval();
  if (!model->config().is_moe())
    throw ConfigError("analyze: " + dir.string() + " is a dense " + model->config().model_type +
                      " model; the routing analyses need an MoE model (qwen3_moe, mixtral, olmoe)");
  std::shared_ptr<lora::Adapters> adapters;
  if (!args.adapter_dir.empty()) adapters = lora::load_adapter(model, lora::read_adapter(args.adapter_dir));
  const auto tokenizer = model::load_tokenizer(dir);
  const eval::SequenceRouter route = [&](const std::vector<std::vector<model::TokenId>>& sequences) {
    return eval::route_sequences(*model, sequences);
  };

  const auto& config = model->config();
  std::vector<int64_t> moe_layers;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    if (config.is_moe_layer(l)) moe_layers.push_back(l);
  json report = {{"format", "character-analyze"},
                 {"version", 1},
                 {"model", {{"dir", dir.string()},
                            {"adapter", args.adapter_dir.empty() ? json(nullptr) : json(args.adapter_dir)},
                            {"architecture", config.model_type},
                            {"moe_layers", moe_layers},
                            {"num_experts", config.num_experts},
                            {"top_k", config.num_experts_per_tok}}},
                 {"views", args.views}};
  std::ostringstream text;
  text << "MODEL " << dir.string() << (args.adapter_dir.empty() ? "" : " + adapter " + args.adapter_dir) << ": "
       << config.model_type << ", " << moe_layers.size() << " MoE layers, " << config.num_experts << " experts, top-"
       << config.num_experts_per_tok << "\n\n";
  if (args.views == "all" || args.views == "domain") {
    const eval::DomainTest test = eval::run_domain_test(*tokenizer, route);
    report["domain"] = test.to_json();
    text << eval::format_domain_test(test, args.layer) << "\n";
  }
  if (args.views == "all" || args.views == "token") {
    const eval::TokenRouting routing = eval::run_token_routing(*tokenizer, route, args.token);
    report["token"] = routing.to_json();
    text << eval::format_token_routing(routing, args.layer) << "\n";
  }
  if (prompts) {
    report["prompts"] = prompts_view(args, *tokenizer, route, text);
    eval::MoeTypeOptions options;
    if (args.layer) options.layers = {*args.layer};
    const eval::MoeType type = eval::analyze_moe_type(*model, options);
    report["moe_type"] = type.to_json();
    text << eval::format_moe_type(type);
  }

  if (!args.out_dir.empty()) {
    std::filesystem::create_directories(args.out_dir);
    write_file_atomic(std::filesystem::path(args.out_dir) / "analyze.json", report.dump(2) + "\n");
    write_file_atomic(std::filesystem::path(args.out_dir) / "analyze.txt", text.str());
  }
  if (args.json) std::cout << report.dump(2) << "\n";
  else std::cout << text.str();
  return 0;
}

}  // namespace

void add_analyze_command(CLI::App& app) {
  auto args = std::make_shared<AnalyzeArgs>();
  CLI::App* sub = app.add_subcommand("analyze", "Explore the expert routing of an MoE model (seed 002 views, MoE type)");
  sub->add_option("model_dir", args->model_dir, "Model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--adapter", args->adapter_dir, "Adapter directory (or training checkpoint) to apply first")
      ->check(CLI::ExistingDirectory);
  auto* probe = sub->add_flag("--probe", args->probe, "Route the 41 probe prompts and their paraphrase variants");
  auto* prompts = sub->add_option("--prompts", args->prompts_file, "JSON file [{\"category\", \"prompt\"}] to route instead")
                      ->check(CLI::ExistingFile);
  probe->excludes(prompts);
  sub->add_option("--layer", args->layer, "Show this decoder layer in detail (default: a line per MoE layer)");
  sub->add_option("--token", args->token, "Token for the token-in-context view (default 127)");
  sub->add_option("--views", args->views, "all | domain | token | prompts (default all)");
  sub->add_option("--out", args->out_dir, "Also write DIR/analyze.json and DIR/analyze.txt");
  sub->add_flag("--json", args->json, "Print the JSON instead of the text tables");
  sub->add_option("--device", args->device, "cpu or cuda");
  set_command_action(*sub, [args] { return run_analyze(*args); });
}

}  // namespace character::pipeline
