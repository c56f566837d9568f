// `character generate MODEL_DIR (--prompt P | --messages F)`: renders the prompt
// with the model's chat template (unless --raw), generates with the engine and
// streams the text to stdout; --json prints {"ids", "text", "finish_reason"}.
// --adapter DIR applies a trained adapter (lora/adapter_file.h) first.
// Hidden: --dump-logits --prompt-ids 1,2,3 prints one forward pass's logits
// ({"ids", "logits": [T][V]}) for the transformers conformance check.
#include <CLI/CLI.hpp>

#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/adapter_file.h"
#include "model/arch/causal_lm.h"
#include "model/arch/generate.h"
#include "model/text/tokenizer.h"
#include "pipeline/chat_input.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace {

struct GenerateArgs {
  std::string model_dir;
  std::string adapter_dir;  // lora/adapter_file.h directory applied to the model
  std::string prompt;
  std::string messages_file;
  std::optional<int64_t> max_new_tokens;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool raw = false;
  bool json = false;
  std::string device = "cpu";
  ChatFlags chat_flags;
  bool dump_logits = false;
  std::vector<int64_t> prompt_ids;
};

// Sampling: generation_config.json, then the flags. A temperature flag decides
// greedy (0) or sampling (> 0); without it, generation_config's do_sample does.
model::SamplingOptions sampling_options(const GenerateArgs& args, const model::GenerationConfig& defaults) {
  model::SamplingOptions options = defaults.sampling();
  if (args.temperature) {
    if (*args.temperature < 0) throw ConfigError("generate: --temperature " + std::to_string(*args.temperature) + ", expected ≥ 0");
    options.do_sample = *args.temperature > 0;
    if (options.do_sample) options.temperature = *args.temperature;
  }
  if (args.top_k) options.top_k = *args.top_k;
  if (args.top_p) options.top_p = *args.top_p;
  if (args.min_p) options.min_p = *args.min_p;
  if (args.repetition_penalty) options.repetition_penalty = *args.repetition_penalty;
  if (options.top_p <= 0 || options.top_p > 1) throw ConfigError("generate: top_p=" + std::to_string(options.top_p) + ", expected in (0, 1]");
  if (options.top_k < 0) throw ConfigError("generate: top_k=" + std::to_string(options.top_k) + ", expected ≥ 0");
  if (options.repetition_penalty <= 0) {
    throw ConfigError("generate: repetition_penalty=" + std::to_string(options.repetition_penalty) + ", expected > 0");
  }
  return options;
}

int dump_logits(model::CausalLMImpl& model, const std::vector<int64_t>& ids) {
  if (ids.empty()) throw ConfigError("generate --dump-logits: give --prompt-ids");
  torch::NoGradGuard no_grad;
  const torch::Device device = model.parameters().front().device();
  model::ForwardInput input;
  input.input_ids = torch::tensor(ids, torch::kLong).unsqueeze(0).to(device);  // [1, T]
  at::Tensor logits = model.forward(input).logits.squeeze(0).to(torch::kCPU, torch::kFloat).contiguous();  // [T, V]
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t t = 0; t < logits.size(0); ++t) {
    const float* row = logits[t].data_ptr<float>();
    rows.push_back(std::vector<float>(row, row + logits.size(1)));
  }
  std::cout << nlohmann::json{{"ids", ids}, {"logits", rows}}.dump() << "\n";
  return 0;
}

int run_generate(const GenerateArgs& args) {
  const std::filesystem::path dir = args.model_dir;
  model::LoadOptions load;
  load.device = args.device;
  if (args.device != "cpu" && args.device != "cuda") {
    throw ConfigError("generate: --device " + args.device + ", expected cpu or cuda");
  }
  const model::CausalLM model = model::load_model(dir, load);
  model->eval();
  std::shared_ptr<lora::Adapters> adapters;
  if (!args.adapter_dir.empty()) adapters = lora::load_adapter(model, lora::read_adapter(args.adapter_dir));
  if (args.dump_logits) return dump_logits(*model, args.prompt_ids);

  const auto tokenizer = model::load_tokenizer(dir);
  const auto defaults = model::load_generation_config(dir);
  std::unique_ptr<model::ChatRenderer> renderer;
  std::vector<model::TokenId> prompt;
  if (args.raw) {
    if (!args.messages_file.empty()) throw ConfigError("generate: --raw takes --prompt, not --messages");
    prompt = tokenizer->encode(args.prompt, /*add_special_tokens=*/true);
  } else {
    const auto messages = args.messages_file.empty()
                              ? std::vector<model::ChatMessage>{{"user", args.prompt}}
                              : parse_conversation(read_file(args.messages_file), args.messages_file);
    auto rendered = render_prompt(dir, *tokenizer, messages, args.chat_flags);
    renderer = std::move(rendered.renderer);
    prompt = std::move(rendered.ids);
  }

  model::GenerationOptions options;
  options.max_new_tokens = args.max_new_tokens.value_or(defaults.max_new_tokens.value_or(256));
  options.sampling = sampling_options(args, defaults);
  options.seed = args.seed;
  options.stop_token_ids = model::default_stop_token_ids(dir, *tokenizer, renderer.get());
  if (renderer) options.stop_strings = renderer->stop_strings();
  options.stop_strings.insert(options.stop_strings.end(), args.stop.begin(), args.stop.end());
  if (!args.json) {
    options.on_text = [](int64_t, std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    };
  }
  const auto results = model::generate(*model, tokenizer.get(), {prompt}, options);
  const auto& result = results.front();
  if (args.json) {
    nlohmann::json out{{"ids", result.ids}, {"text", result.text}, {"finish_reason", result.finish_reason}};
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* sub = app.add_subcommand("generate", "Generate a reply with the engine, streaming it to stdout");
  sub->add_option("model_dir", args->model_dir, "Model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--adapter", args->adapter_dir, "Adapter directory (or training checkpoint) to apply to the model")
      ->check(CLI::ExistingDirectory);
  auto* prompt = sub->add_option("--prompt", args->prompt, "User message (or raw text with --raw)");
  auto* messages = sub->add_option("--messages", args->messages_file,
                                   "JSON conversation file: [{\"role\",\"content\"}] or {\"messages\": [...]}")
                       ->check(CLI::ExistingFile);
  prompt->excludes(messages);
  sub->add_option("--max-new-tokens", args->max_new_tokens, "Tokens to generate at most (default: generation_config or 256)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--temperature", args->temperature, "0 = greedy; > 0 samples (default: generation_config.json)");
  sub->add_option("--top-p", args->top_p, "Nucleus sampling mass");
  sub->add_option("--top-k", args->top_k, "Keep the k most likely tokens (0 = off)");
  sub->add_option("--min-p", args->min_p, "Drop tokens below min_p × the top probability");
  sub->add_option("--repetition-penalty", args->repetition_penalty, "transformers' repetition penalty (1 = off)");
  sub->add_option("--seed", args->seed, "Sampling seed");
  sub->add_option("--stop", args->stop, "Stop string (repeatable); excluded from the output");
  sub->add_flag("--raw", args->raw, "Encode the prompt as is, without the chat template");
  sub->add_flag("--json", args->json, "Print {\"ids\", \"text\", \"finish_reason\"} instead of streaming");
  sub->add_option("--device", args->device, "cpu or cuda");
  add_chat_flags(*sub, args->chat_flags);
  sub->add_flag("--dump-logits", args->dump_logits, "Print the logits of one forward pass over --prompt-ids")
      ->group("");
  sub->add_option("--prompt-ids", args->prompt_ids, "Token ids for --dump-logits")->delimiter(',')->group("");
  set_command_action(*sub, [args, prompt, messages] {
    if (!args->dump_logits && prompt->count() == 0 && messages->count() == 0) {
      throw ConfigError("generate: give --prompt or --messages");
    }
    return run_generate(*args);
  });
}

}  // namespace character::pipeline
