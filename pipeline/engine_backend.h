// The engine behind the completion interface (remote/completion.h): a model
// directory loaded once, optionally with a LoRA adapter, answering chat requests
// through its chat template and text completions on the raw prompt. `character
// serve` puts it behind the HTTP server; the data generators call it directly
// (complete_chat_batch generates many requests per engine batch).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/chat_input.h"
#include "remote/completion.h"

namespace character::pipeline {

struct EngineBackendOptions {
  std::string model_id;               // empty: the model directory's name
  std::string device = "cpu";         // "cpu" | "cuda"
  std::string dtype;                  // empty: the device default (model::LoadOptions)
  std::filesystem::path adapter_dir;  // empty: the base model (lora/adapter_file.h)
  ChatFlags chat;                     // family (empty: detected) and --no-thinking
  int64_t max_batch_rows = 16;        // prompts (choices) per engine batch
  uint64_t seed = 0;                  // seeds requests that give none, call by call
};

// Sampling of a request, as `character generate` does it: generation_config.json
// gives the defaults; temperature 0 = greedy, > 0 = sampling at that temperature;
// top_p, seed, stop (added to the chat family's stop strings) and Sampling::extra's
// top_k, min_p, repetition_penalty, chat_template_kwargs.enable_thinking override.
// max_tokens unset: generation_config's max_new_tokens or 256, cut to what the
// context (max_position_embeddings) leaves. Usage: prompt_tokens = the prompt's
// tokens, completion_tokens = the generated tokens of every choice (a final stop
// token included).
class EngineBackend : public remote::CompletionBackend {
 public:
  // Loads the model, tokenizer, chat family and adapter: CheckpointError,
  // ConfigError, FormatError as their loaders report them.
  EngineBackend(const std::filesystem::path& model_dir, EngineBackendOptions options);
  ~EngineBackend() override;

  std::string model_id() const override { return model_id_; }

  void check(const remote::ChatRequest& request) const override;
  void check(const remote::CompletionRequest& request) const override;

  // One request's n choices run as one engine batch. Safe to call from several
  // threads: calls take turns on the model.
  remote::Response complete_chat(const remote::ChatRequest& request,
                                 const remote::CallOptions& options = {}) override;
  remote::Response complete_text(const remote::CompletionRequest& request,
                                 const remote::CallOptions& options = {}) override;

  // Requests with the same generation settings share engine batches of up to
  // max_batch_rows rows; a sampled request with its own seed runs alone, so that
  // it gives the text it gives on its own. on_result is called per batch.
  std::vector<remote::Result> complete_chat_batch(const std::vector<remote::ChatRequest>& requests,
                                                  const remote::BatchOptions& options = {}) override;
  std::vector<remote::Result> complete_text_batch(const std::vector<remote::CompletionRequest>& requests,
                                                  const remote::BatchOptions& options = {}) override;

  const std::filesystem::path& model_dir() const { return model_dir_; }

 private:
  struct State;   // the model, tokenizer, renderer, adapter (torch lives in the .cpp)
  struct Prepared;
  Prepared prepare(const std::vector<remote::Message>* messages, const std::string* prompt,
                   const remote::Sampling& sampling) const;
  std::vector<Prepared> prepare_all(std::size_t count, const std::function<Prepared(std::size_t)>& one) const;
  remote::Response run_one(const Prepared& prepared, const remote::CallOptions& options);
  std::vector<remote::Result> run_batch(std::vector<Prepared> prepared, const remote::BatchOptions& options);

  std::filesystem::path model_dir_;
  EngineBackendOptions options_;
  std::string model_id_;
  std::unique_ptr<State> state_;
  std::mutex lock_;        // one generation at a time
  uint64_t next_seed_ = 0; // under lock_
};

}  // namespace character::pipeline
