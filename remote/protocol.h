// The OpenAI wire format: request bodies for /chat/completions and /completions,
// and the checks that turn an answer into choices and token usage. An answer that
// does not fit (no choices, a choice without text) is "malformed": retried by the
// client, never half-used.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "remote/types.h"

namespace character::remote {

enum class Endpoint { kChat, kCompletions };

// Appended to the base URL ("https://api.openai.com/v1" + "/chat/completions").
std::string_view endpoint_path(Endpoint endpoint);

nlohmann::json chat_body(const std::string& model, const ChatRequest& request);
nlohmann::json completion_body(const std::string& model, const CompletionRequest& request);

struct ParsedAnswer {
  std::vector<Choice> choices;
  TokenUsage usage;
};

// The choices and usage of a 2xx answer; nullopt with `*error` saying what is
// missing when the answer is malformed. `expected_choices` is the request's n.
std::optional<ParsedAnswer> parse_answer(Endpoint endpoint, const nlohmann::json& answer,
                                         int expected_choices, std::string* error);

}  // namespace character::remote
