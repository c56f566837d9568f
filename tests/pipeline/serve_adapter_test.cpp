// `character serve --adapter`: the engine backend applies a saved LoRA adapter
// (lora/adapter_file.h). Its greedy answer equals model::generate on the same
// model with the same adapter attached in memory, and differs from the base
// model's answer (the transformers-checked base answer, fixture serve/cases.json),
// so the adapter is really in the forward pass.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "lora/adapter_file.h"
#include "lora/adapters.h"
#include "model/arch/generate.h"
#include "pipeline/chat_input.h"
#include "pipeline/engine_backend.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using character::testing::fixture;
using character::testing::TempDir;

TEST(ServeAdapter, AnswersWithTheAdapterApplied) {
  std::ifstream in(fixture("serve/cases.json"));
  ASSERT_TRUE(in);
  const auto cases = nlohmann::json::parse(in);
  const auto dir = fixture(cases["model_dir"]);
  nlohmann::json base_case;
  for (const auto& c : cases["cases"]) {
    if (c["name"] == "chat_greedy") base_case = c;
  }
  ASSERT_FALSE(base_case.is_null());

  // An adapter with non-zero B factors, saved as training saves it.
  TempDir tmp;
  const model::CausalLM model = model::load_model(dir);
  model->eval();
  lora::LoraConfig config;
  config.rank = 4;
  config.alpha = 8;
  const auto adapters = lora::attach_adapters(model, config);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);
    for (const auto& p : adapters->named_parameters()) p.tensor.copy_(torch::randn_like(p.tensor) * 0.5);
  }
  lora::save_adapter(*adapters, dir, tmp / "adapter");

  // The reference: generate on the in-memory model with the adapter attached.
  const auto tokenizer = model::load_tokenizer(dir);
  std::vector<model::ChatMessage> messages;
  for (const auto& m : base_case["messages"]) messages.push_back({m["role"], m["content"]});
  const RenderedPrompt prompt = render_prompt(dir, *tokenizer, messages, ChatFlags{});
  model::GenerationOptions g;
  g.max_new_tokens = base_case["max_tokens"];
  g.stop_token_ids = model::default_stop_token_ids(dir, *tokenizer, prompt.renderer.get());
  const auto expected = model::generate(*model, tokenizer.get(), {prompt.ids}, g).front();

  EngineBackendOptions options;
  options.adapter_dir = tmp / "adapter";
  EngineBackend backend(dir, options);
  remote::ChatRequest request;
  request.messages = {};
  for (const auto& m : base_case["messages"]) request.messages.push_back({m["role"], m["content"]});
  request.sampling.temperature = 0.0;
  request.sampling.max_tokens = base_case["max_tokens"].get<int>();
  const remote::Response served = backend.complete_chat(request);
  EXPECT_EQ(served.choices.at(0).text, expected.text);
  EXPECT_EQ(served.usage.completion_tokens, static_cast<int64_t>(expected.ids.size()));
  EXPECT_NE(served.choices.at(0).text, base_case["text"].get<std::string>()) << "the adapter changed nothing";
}

}  // namespace
}  // namespace character::pipeline
