// Prefill and decode throughput of the engine on one model directory, measured
// exactly as bench/bench_transformers.py measures transformers: the same batch,
// prompt length, greedy decode steps with a KV cache, the same thread count.
// Prints one JSON object; bench/run.sh puts the two side by side.
// --profile PREFIX writes torch profiler traces of the last repeat's prefill and
// decode (PREFIX.prefill.json, PREFIX.decode.json; bench/profile_summary.py sums them).
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "model/arch/causal_lm.h"
#include "model/arch/kv_cache.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Process CPU seconds (all threads). With --threads 1 on a busy machine this is a
// steadier measure than wall time, which also counts the time other processes
// held the core; bench_transformers.py reports the same.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

struct Args {
  std::string model_dir;
  int64_t batch = 1, prompt_len = 128, decode_steps = 32, repeats = 3, threads = 2;
  std::string profile;  // trace file prefix; empty = no profiling
};

// Records torch ops into PREFIX.PHASE.json while alive, when profiling was asked for.
std::optional<torch::autograd::profiler::RecordProfile> maybe_profile(const Args& args, bool last_repeat,
                                                                      const char* phase) {
  if (args.profile.empty() || !last_repeat) return std::nullopt;
  return std::make_optional<torch::autograd::profiler::RecordProfile>(args.profile + "." + phase + ".json");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace character::model;
  Args args;
  CLI::App app{"Engine prefill/decode throughput on one model directory (JSON on stdout)"};
  app.add_option("model_dir", args.model_dir, "Hugging Face model directory")->required();
  app.add_option("--batch", args.batch, "Prompts per batch");
  app.add_option("--prompt-len", args.prompt_len, "Prompt tokens");
  app.add_option("--decode-steps", args.decode_steps, "Greedy decode steps after the prefill");
  app.add_option("--repeats", args.repeats, "Repeats; the best is kept");
  app.add_option("--threads", args.threads, "torch intra-op threads");
  app.add_option("--profile", args.profile, "Write torch profiler traces of the last repeat to PREFIX.{prefill,decode}.json");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(static_cast<int>(args.threads));
  torch::InferenceMode guard;
  CausalLM model = load_model(args.model_dir);
  const auto& config = model->config();
  torch::manual_seed(0);
  // [B, T] random prompt ids; the same for every repeat.
  const auto prompt = torch::randint(config.vocab_size, {args.batch, args.prompt_len}, torch::kLong);

  double best_prefill = 1e30, best_decode = 1e30, best_prefill_cpu = 1e30, best_decode_cpu = 1e30;
  for (int64_t r = 0; r < args.repeats; ++r) {
    KVCache cache(config.num_hidden_layers);
    ForwardInput input;
    input.input_ids = prompt;
    input.cache = &cache;
    input.last_logits_only = true;
    const bool last = r + 1 == args.repeats;
    auto start = Clock::now();
    double cpu_start = cpu_seconds();
    ForwardOutput out;
    {
      auto profiling = maybe_profile(args, last, "prefill");
      out = model->forward(input);
      // Timed before the profiler writes its trace on leaving this scope.
      best_prefill = std::min(best_prefill, seconds_since(start));
      best_prefill_cpu = std::min(best_prefill_cpu, cpu_seconds() - cpu_start);
    }

    auto next = out.logits.select(1, -1).argmax(-1, /*keepdim=*/true);  // [B, 1]
    start = Clock::now();
    cpu_start = cpu_seconds();
    auto profiling = maybe_profile(args, last, "decode");
    for (int64_t s = 0; s < args.decode_steps; ++s) {
      ForwardInput step;
      step.input_ids = next;
      step.cache = &cache;
      step.last_logits_only = true;
      next = model->forward(step).logits.select(1, -1).argmax(-1, /*keepdim=*/true);
    }
    best_decode = std::min(best_decode, seconds_since(start));
    best_decode_cpu = std::min(best_decode_cpu, cpu_seconds() - cpu_start);
    profiling.reset();
  }
  nlohmann::json result{
      {"engine", "character"},
      {"model_type", config.model_type},
      {"batch", args.batch},
      {"prompt_len", args.prompt_len},
      {"decode_steps", args.decode_steps},
      {"threads", args.threads},
      {"prefill_tokens_per_s", static_cast<double>(args.batch * args.prompt_len) / best_prefill},
      {"decode_tokens_per_s", static_cast<double>(args.batch * args.decode_steps) / best_decode},
      {"prefill_tokens_per_cpu_s", static_cast<double>(args.batch * args.prompt_len) / best_prefill_cpu},
      {"decode_tokens_per_cpu_s", static_cast<double>(args.batch * args.decode_steps) / best_decode_cpu},
  };
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
