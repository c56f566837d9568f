// EngineBackend: requests → token ids (chat template or raw prompt) and
// GenerationOptions, then model::generate in batches of rows. A row is one choice
// of one request; rows with the same settings share a batch.
#include "pipeline/engine_backend.h"

#include <torch/torch.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include <tbb/parallel_for.h>

#include "base/error.h"
#include "base/json_read.h"
#include "lora/adapter_file.h"
#include "model/arch/causal_lm.h"
#include "model/arch/generate.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"

namespace character::pipeline {

using remote::Response;
using remote::Result;

struct EngineBackend::State {
  model::CausalLM model;
  std::unique_ptr<model::Tokenizer> tokenizer;
  std::unique_ptr<model::ChatRenderer> renderer;
  model::GenerationConfig defaults;
  std::vector<model::TokenId> chat_stop_ids;  // the family's end-of-turn tokens and eos
  std::vector<model::TokenId> text_stop_ids;  // eos only
  std::shared_ptr<lora::Adapters> adapters;
  int64_t context = 0;  // max_position_embeddings; 0 = unknown
};

// A request made ready for the engine. `key` is equal for requests that may share
// a batch.
struct EngineBackend::Prepared {
  std::vector<model::TokenId> ids;
  bool chat = false;
  int n = 1;
  int64_t max_new_tokens = 0;
  model::SamplingOptions sampling;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop_strings;
  std::string key;
  std::optional<std::string> error;  // batch only: why the request was refused
};

namespace {

std::string default_model_id(const std::filesystem::path& dir) {
  std::filesystem::path p = dir.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

double extra_number(const nlohmann::json& extra, const char* name) {
  const auto& v = extra.at(name);
  if (!v.is_number()) {
    throw ConfigError(std::string("'") + name + "' is " + describe_json(v) + ", expected a number");
  }
  return v.get<double>();
}

}  // namespace

EngineBackend::EngineBackend(const std::filesystem::path& model_dir, EngineBackendOptions options)
    : model_dir_(model_dir), options_(std::move(options)), state_(std::make_unique<State>()) {
  if (options_.device != "cpu" && options_.device != "cuda") {
    throw ConfigError("serve: --device " + options_.device + ", expected cpu or cuda");
  }
  if (options_.max_batch_rows < 1) {
    throw ConfigError("engine backend: max_batch_rows " + std::to_string(options_.max_batch_rows) + ", expected ≥ 1");
  }
  model_id_ = options_.model_id.empty() ? default_model_id(model_dir) : options_.model_id;
  model::LoadOptions load;
  load.device = options_.device;
  load.dtype = options_.dtype;
  State& s = *state_;
  s.model = model::load_model(model_dir, load);
  s.model->eval();
  if (!options_.adapter_dir.empty()) {
    s.adapters = lora::load_adapter(s.model, lora::read_adapter(options_.adapter_dir));
  }
  s.tokenizer = model::load_tokenizer(model_dir);
  s.renderer = model::make_chat_renderer(options_.chat.family.empty() ? model::detect_chat_family(model_dir)
                                                                      : options_.chat.family);
  s.defaults = model::load_generation_config(model_dir);
  s.chat_stop_ids = model::default_stop_token_ids(model_dir, *s.tokenizer, s.renderer.get());
  s.text_stop_ids = model::default_stop_token_ids(model_dir, *s.tokenizer, nullptr);
  s.context = s.model->config().max_position_embeddings;
  next_seed_ = options_.seed;
}

EngineBackend::~EngineBackend() = default;

EngineBackend::Prepared EngineBackend::prepare(const std::vector<remote::Message>* messages,
                                               const std::string* prompt, const remote::Sampling& sampling) const {
  const State& s = *state_;
  Prepared p;
  p.chat = messages != nullptr;
  if (sampling.n < 1) throw ConfigError("'n' is " + std::to_string(sampling.n) + ", expected ≥ 1");
  p.n = sampling.n;
  const nlohmann::json& extra = sampling.extra;
  if (p.chat) {
    std::vector<model::ChatMessage> chat;
    for (const auto& m : *messages) chat.push_back({m.role, m.content});
    model::ChatOptions chat_options;
    if (options_.chat.no_thinking) chat_options.enable_thinking = false;
    if (extra.contains("chat_template_kwargs") && extra["chat_template_kwargs"].contains("enable_thinking")) {
      const auto& v = extra["chat_template_kwargs"]["enable_thinking"];
      if (!v.is_boolean()) {
        throw ConfigError("'chat_template_kwargs.enable_thinking' is " + describe_json(v) + ", expected a boolean");
      }
      chat_options.enable_thinking = v.get<bool>();
    }
    std::string text;
    try {
      text = s.renderer->render(chat, chat_options).text;
    } catch (const FormatError& e) {
      throw ConfigError(std::string("'messages': ") + e.what());
    }
    p.ids = s.tokenizer->encode(text, /*add_special_tokens=*/false);  // the template holds its specials
    p.stop_strings = s.renderer->stop_strings();
  } else {
    p.ids = s.tokenizer->encode(*prompt, /*add_special_tokens=*/true);  // as `character generate --raw`
    if (p.ids.empty()) throw ConfigError("'prompt' encodes to no tokens, expected at least one");
  }
  p.stop_strings.insert(p.stop_strings.end(), sampling.stop.begin(), sampling.stop.end());

  const auto prompt_tokens = static_cast<int64_t>(p.ids.size());
  const std::string what = p.chat ? "'messages'" : "'prompt'";
  if (s.context > 0 && prompt_tokens >= s.context) {
    throw ConfigError(what + " is " + std::to_string(prompt_tokens) + " tokens, expected fewer than the model's context of " +
                      std::to_string(s.context) + " (max_position_embeddings)");
  }
  if (sampling.max_tokens) {
    if (*sampling.max_tokens < 1) {
      throw ConfigError("'max_tokens' is " + std::to_string(*sampling.max_tokens) + ", expected ≥ 1");
    }
    p.max_new_tokens = *sampling.max_tokens;
    if (s.context > 0 && prompt_tokens + p.max_new_tokens > s.context) {
      throw ConfigError("'max_tokens' is " + std::to_string(p.max_new_tokens) + " and the prompt " +
                        std::to_string(prompt_tokens) + " tokens, expected at most the model's context of " +
                        std::to_string(s.context) + " together");
    }
  } else {
    p.max_new_tokens = s.defaults.max_new_tokens.value_or(256);
    if (s.context > 0) p.max_new_tokens = std::min(p.max_new_tokens, s.context - prompt_tokens);
  }

  // Sampling: generation_config.json, then the request (as `character generate`).
  p.sampling = s.defaults.sampling();
  if (sampling.temperature) {
    if (*sampling.temperature < 0) {
      throw ConfigError("'temperature' is " + std::to_string(*sampling.temperature) + ", expected ≥ 0");
    }
    p.sampling.do_sample = *sampling.temperature > 0;
    if (p.sampling.do_sample) p.sampling.temperature = *sampling.temperature;
  }
  if (sampling.top_p) p.sampling.top_p = *sampling.top_p;
  if (extra.contains("top_k")) {
    const double k = extra_number(extra, "top_k");
    p.sampling.top_k = k < 0 ? 0 : static_cast<int64_t>(k);
  }
  if (extra.contains("min_p")) p.sampling.min_p = extra_number(extra, "min_p");
  if (extra.contains("repetition_penalty")) p.sampling.repetition_penalty = extra_number(extra, "repetition_penalty");
  if (p.sampling.top_p <= 0 || p.sampling.top_p > 1) {
    throw ConfigError("'top_p' is " + std::to_string(p.sampling.top_p) + ", expected in (0, 1]");
  }
  if (p.sampling.min_p < 0 || p.sampling.min_p > 1) {
    throw ConfigError("'min_p' is " + std::to_string(p.sampling.min_p) + ", expected 0 to 1");
  }
  if (p.sampling.repetition_penalty <= 0) {
    throw ConfigError("'repetition_penalty' is " + std::to_string(p.sampling.repetition_penalty) + ", expected > 0");
  }
  if (sampling.seed) p.seed = static_cast<uint64_t>(*sampling.seed);

  nlohmann::json key = {p.chat, p.max_new_tokens, p.sampling.do_sample, p.sampling.temperature,
                        p.sampling.top_k, p.sampling.top_p, p.sampling.min_p, p.sampling.repetition_penalty,
                        p.stop_strings};
  p.key = key.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return p;
}

void EngineBackend::check(const remote::ChatRequest& request) const {
  prepare(&request.messages, nullptr, request.sampling);
}

void EngineBackend::check(const remote::CompletionRequest& request) const {
  prepare(nullptr, &request.prompt, request.sampling);
}

namespace {

// One row of an engine batch: a choice of a request.
struct Row {
  std::size_t request = 0;
  int choice = 0;
};

}  // namespace

// Rows of the prepared requests, grouped by settings and cut into engine batches;
// each request's Result is reported as soon as its last row is done.
std::vector<Result> EngineBackend::run_batch(std::vector<Prepared> prepared, const remote::BatchOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<Result> results(prepared.size());
  std::vector<int> rows_left(prepared.size(), 0);
  remote::Progress progress;
  progress.total = prepared.size();
  auto finish = [&](std::size_t i) {
    Result& r = results[i];
    r.index = i;
    if (r.failure) ++progress.failed;
    ++progress.done;
    if (options.on_result) options.on_result(r);
    if (options.on_progress) options.on_progress(progress);
  };

  // Groups in first-appearance order; a sampled request with its own seed alone.
  std::vector<std::vector<Row>> groups;
  std::map<std::string, std::size_t> group_of;
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    Prepared& p = prepared[i];
    if (p.error) {
      results[i].failure = remote::Failure{*p.error, 0, 1};
      finish(i);
      continue;
    }
    Response& response = results[i].response.emplace();
    response.choices.resize(p.n);
    response.usage.prompt_tokens = static_cast<int64_t>(p.ids.size());
    response.attempts = 1;
    rows_left[i] = p.n;
    const bool alone = p.seed && p.sampling.do_sample;
    std::size_t g;
    if (!alone && group_of.count(p.key)) {
      g = group_of[p.key];
    } else {
      g = groups.size();
      groups.emplace_back();
      if (!alone) group_of[p.key] = g;
    }
    for (int c = 0; c < p.n; ++c) groups[g].push_back({i, c});
  }

  const State& s = *state_;
  std::lock_guard lock(lock_);
  for (const auto& group : groups) {
    const Prepared& settings = prepared[group.front().request];
    for (std::size_t begin = 0; begin < group.size(); begin += options_.max_batch_rows) {
      const std::size_t end = std::min(group.size(), begin + static_cast<std::size_t>(options_.max_batch_rows));
      std::vector<std::vector<model::TokenId>> prompts;
      for (std::size_t r = begin; r < end; ++r) prompts.push_back(prepared[group[r].request].ids);
      model::GenerationOptions g;
      g.max_new_tokens = settings.max_new_tokens;
      g.sampling = settings.sampling;
      g.seed = settings.seed && settings.sampling.do_sample ? *settings.seed + begin : next_seed_++;
      g.stop_token_ids = settings.chat ? s.chat_stop_ids : s.text_stop_ids;
      g.stop_strings = settings.stop_strings;
      std::vector<model::GenerationResult> generated;
      std::optional<std::string> error;
      try {
        generated = model::generate(*s.model, s.tokenizer.get(), prompts, g);
      } catch (const std::exception& e) {  // this batch's requests fail, the others go on
        error = e.what();
      }
      for (std::size_t r = begin; r < end; ++r) {
        const Row& row = group[r];
        Result& result = results[row.request];
        if (error && !result.failure) {
          result.response.reset();
          result.failure = remote::Failure{*error, 0, 1};
        }
        if (result.response) {
          const auto& out = generated[r - begin];
          result.response->choices[row.choice] = {out.text, out.finish_reason};
          result.response->usage.completion_tokens += static_cast<int64_t>(out.ids.size());
        }
        if (--rows_left[row.request] == 0) {
          if (result.response) {
            result.response->latency = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
          }
          finish(row.request);
        }
      }
    }
  }
  return results;
}

// Renders and tokenizes the requests of a batch in parallel (oneTBB); a request
// that cannot be prepared carries its error to run_batch.
std::vector<EngineBackend::Prepared> EngineBackend::prepare_all(
    std::size_t count, const std::function<Prepared(std::size_t)>& one) const {
  std::vector<Prepared> prepared(count);
  tbb::parallel_for(std::size_t{0}, count, [&](std::size_t i) {
    try {
      prepared[i] = one(i);
    } catch (const Error& e) {
      prepared[i].error = e.what();
    }
  });
  return prepared;
}

std::vector<Result> EngineBackend::complete_chat_batch(const std::vector<remote::ChatRequest>& requests,
                                                       const remote::BatchOptions& options) {
  return run_batch(prepare_all(requests.size(),
                               [&](std::size_t i) {
                                 return prepare(&requests[i].messages, nullptr, requests[i].sampling);
                               }),
                   options);
}

std::vector<Result> EngineBackend::complete_text_batch(const std::vector<remote::CompletionRequest>& requests,
                                                       const remote::BatchOptions& options) {
  return run_batch(prepare_all(requests.size(),
                               [&](std::size_t i) {
                                 return prepare(nullptr, &requests[i].prompt, requests[i].sampling);
                               }),
                   options);
}

namespace {

// One request whose rows are choices 0..n-1 of one prompt, streamed through
// on_delta; n above max_batch_rows runs as several engine batches.
Response generate_one(model::CausalLMImpl& model, const model::Tokenizer& tokenizer,
                      const std::vector<model::TokenId>& ids, int n, int64_t max_batch_rows,
                      model::GenerationOptions g, const remote::CallOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  Response response;
  response.attempts = 1;
  response.usage.prompt_tokens = static_cast<int64_t>(ids.size());
  const uint64_t seed = g.seed;
  for (int begin = 0; begin < n; begin += static_cast<int>(max_batch_rows)) {
    const int end = std::min<int>(n, begin + static_cast<int>(max_batch_rows));
    g.seed = seed + static_cast<uint64_t>(begin);
    if (options.on_delta) {
      g.on_text = [&, begin](int64_t row, std::string_view piece) {
        options.on_delta(begin + static_cast<int>(row), piece);
      };
    }
    const std::vector<std::vector<model::TokenId>> prompts(end - begin, ids);
    for (const auto& out : model::generate(model, &tokenizer, prompts, g)) {
      response.choices.push_back({out.text, out.finish_reason});
      response.usage.completion_tokens += static_cast<int64_t>(out.ids.size());
    }
  }
  response.latency = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return response;
}

}  // namespace

Response EngineBackend::run_one(const Prepared& p, const remote::CallOptions& options) {
  std::lock_guard lock(lock_);
  model::GenerationOptions g;
  g.max_new_tokens = p.max_new_tokens;
  g.sampling = p.sampling;
  g.seed = p.seed ? *p.seed : next_seed_++;
  g.stop_token_ids = p.chat ? state_->chat_stop_ids : state_->text_stop_ids;
  g.stop_strings = p.stop_strings;
  return generate_one(*state_->model, *state_->tokenizer, p.ids, p.n, options_.max_batch_rows, std::move(g), options);
}

Response EngineBackend::complete_chat(const remote::ChatRequest& request, const remote::CallOptions& options) {
  return run_one(prepare(&request.messages, nullptr, request.sampling), options);
}

Response EngineBackend::complete_text(const remote::CompletionRequest& request, const remote::CallOptions& options) {
  return run_one(prepare(nullptr, &request.prompt, request.sampling), options);
}

}  // namespace character::pipeline
