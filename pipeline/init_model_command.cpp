// `character init-model --arch ARCH --preset tiny|small --tokenizer DIR OUT_DIR`:
// a randomly initialised model directory that transformers loads as is:
// config.json, model.safetensors (Hub per-expert layout, which is what
// transformers 5 save_pretrained writes), generation_config.json and the
// tokenizer files. vocab_size comes from the tokenizer so embeddings match it.
#include <CLI/CLI.hpp>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/log.h"
#include "model/arch/architectures.h"
#include "model/arch/init_weights.h"
#include "model/arch/model_dir.h"
#include "model/io/config.h"
#include "model/text/tokenizer.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

struct InitModelArgs {
  std::string arch;
  std::string preset = "tiny";
  std::string out_dir;
  std::string tokenizer_dir;
  uint64_t seed = 0;
  std::optional<int64_t> experts, top_k;
  bool force = false;
};

constexpr double kInitializerRange = 0.02;  // transformers' default initializer_range

// config.json as transformers' config classes spell it, from a preset.
nlohmann::json preset_config(const InitModelArgs& args, const model::Tokenizer& tokenizer) {
  const bool tiny = args.preset == "tiny";
  if (!tiny && args.preset != "small") throw ConfigError("init-model: --preset " + args.preset + ", expected tiny or small");
  const auto& types = model::supported_model_types();
  if (std::find(types.begin(), types.end(), args.arch) == types.end()) {
    std::string list;
    for (const auto& t : types) list += (list.empty() ? "" : ", ") + t;
    throw ConfigError("init-model: --arch " + args.arch + " is not supported, expected one of: " + list);
  }
  const int64_t hidden = tiny ? 64 : 256;
  const int64_t heads = tiny ? 4 : 8;
  // The transformers class each model_type loads as.
  static const std::map<std::string, std::string> kArchitectures = {
      {"llama", "LlamaForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"}, {"qwen3_moe", "Qwen3MoeForCausalLM"},
      {"mixtral", "MixtralForCausalLM"}, {"olmoe", "OlmoeForCausalLM"}};
  nlohmann::json j;
  j["model_type"] = args.arch;
  if (auto it = kArchitectures.find(args.arch); it != kArchitectures.end()) j["architectures"] = {it->second};
  j["vocab_size"] = tokenizer.vocab_size();
  j["hidden_size"] = hidden;
  j["intermediate_size"] = hidden * 2;
  j["num_hidden_layers"] = tiny ? 2 : 4;
  j["num_attention_heads"] = heads;
  j["num_key_value_heads"] = heads / 2;
  j["head_dim"] = hidden / heads;
  j["max_position_embeddings"] = 4096;
  j["tie_word_embeddings"] = false;
  j["hidden_act"] = "silu";
  j["initializer_range"] = kInitializerRange;
  // The families' published values (Llama 3, Qwen3, Mixtral, OLMoE configs).
  const bool qwen = args.arch == "qwen3" || args.arch == "qwen3_moe";
  j["rms_norm_eps"] = qwen ? 1e-6 : 1e-5;
  j["rope_theta"] = args.arch == "llama" ? 500000.0 : args.arch == "olmoe" ? 10000.0 : 1000000.0;
  if (tokenizer.bos_id) j["bos_token_id"] = *tokenizer.bos_id;
  if (tokenizer.eos_id) j["eos_token_id"] = *tokenizer.eos_id;
  if (tokenizer.pad_id) j["pad_token_id"] = *tokenizer.pad_id;
  const bool moe = args.arch == "qwen3_moe" || args.arch == "mixtral" || args.arch == "olmoe";
  if (moe) {
    const int64_t experts = args.experts.value_or(tiny ? 8 : 16);
    j[args.arch == "mixtral" ? "num_local_experts" : "num_experts"] = experts;
    j["num_experts_per_tok"] = args.top_k.value_or(2);
    j["router_aux_loss_coef"] = args.arch == "olmoe" ? 0.01 : 0.001;
    if (args.arch == "qwen3_moe") {
      j["moe_intermediate_size"] = hidden / 2;
      j["norm_topk_prob"] = true;  // as Qwen3-30B-A3B
      j["decoder_sparse_step"] = 1;
      j["mlp_only_layers"] = nlohmann::json::array();
    }
    if (args.arch == "olmoe") j["norm_topk_prob"] = false;
  } else if (args.experts || args.top_k) {
    throw ConfigError("init-model: --experts/--top-k given for " + args.arch + ", which has no experts");
  }
  return j;
}

int run_init_model(const InitModelArgs& args) {
  const fs::path out = args.out_dir;
  if (fs::exists(out) && !fs::is_empty(out) && !args.force) {
    throw ConfigError("init-model: " + out.string() + " exists and is not empty; pass --force to replace it");
  }
  const auto tokenizer = model::load_tokenizer(args.tokenizer_dir);
  const nlohmann::json preset = preset_config(args, *tokenizer);
  const model::ModelConfig config = model::parse_config(preset, "init-model preset " + args.preset);

  const model::CausalLM net = model::create_model(config);
  model::init_weights(*net, {.seed = args.seed, .initializer_range = kInitializerRange});

  model::ModelDirOptions dir;
  dir.tokenizer_dir = args.tokenizer_dir;
  dir.tokenizer_source = "init-model: --tokenizer";
  dir.extra_config = {{"initializer_range", kInitializerRange}};
  model::write_model_dir(*net, config, out, dir);
  log::info("init-model: wrote " + args.arch + " (" + args.preset + ", seed " + std::to_string(args.seed) + ") to " +
            out.string());
  return 0;
}

}  // namespace

void add_init_model_command(CLI::App& app) {
  auto args = std::make_shared<InitModelArgs>();
  CLI::App* sub = app.add_subcommand("init-model", "Write a randomly initialised model directory (for tests and demos)");
  sub->add_option("out_dir", args->out_dir, "Directory to create")->required();
  sub->add_option("--arch", args->arch, "llama | qwen3 | qwen3_moe | mixtral | olmoe")->required();
  sub->add_option("--preset", args->preset, "tiny (hidden 64, 2 layers) or small (hidden 256, 4 layers)");
  sub->add_option("--tokenizer", args->tokenizer_dir, "Directory with the tokenizer files to copy (sets vocab_size)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--seed", args->seed, "Initialisation seed");
  sub->add_option("--experts", args->experts, "Routed experts (MoE architectures)")->check(CLI::PositiveNumber);
  sub->add_option("--top-k", args->top_k, "Experts per token (MoE architectures)")->check(CLI::PositiveNumber);
  sub->add_flag("--force", args->force, "Replace a non-empty OUT_DIR");
  set_command_action(*sub, [args] { return run_init_model(*args); });
}

}  // namespace character::pipeline
