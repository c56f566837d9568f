#include "remote/protocol.h"

#include <algorithm>

namespace character::remote {
namespace {

void add_sampling(nlohmann::json& body, const Sampling& s) {
  if (s.temperature) body["temperature"] = *s.temperature;
  if (s.top_p) body["top_p"] = *s.top_p;
  if (s.max_tokens) body["max_tokens"] = *s.max_tokens;
  if (!s.stop.empty()) body["stop"] = s.stop;
  if (s.n != 1) body["n"] = s.n;
  if (s.seed) body["seed"] = *s.seed;
  if (s.extra.is_object()) {
    for (const auto& [key, value] : s.extra.items()) body[key] = value;
  }
}

}  // namespace

std::string_view endpoint_path(Endpoint endpoint) {
  return endpoint == Endpoint::kChat ? "/chat/completions" : "/completions";
}

nlohmann::json chat_body(const std::string& model, const ChatRequest& request) {
  nlohmann::json messages = nlohmann::json::array();
  for (const auto& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::json body = {{"model", model}, {"messages", std::move(messages)}};
  add_sampling(body, request.sampling);
  return body;
}

nlohmann::json completion_body(const std::string& model, const CompletionRequest& request) {
  nlohmann::json body = {{"model", model}, {"prompt", request.prompt}};
  add_sampling(body, request.sampling);
  return body;
}

std::optional<ParsedAnswer> parse_answer(Endpoint endpoint, const nlohmann::json& answer,
                                         int expected_choices, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<ParsedAnswer> {
    *error = "malformed answer: " + std::move(why);
    return std::nullopt;
  };
  if (!answer.is_object()) return fail("expected a JSON object, found " + std::string(answer.type_name()));
  const auto choices = answer.find("choices");
  if (choices == answer.end() || !choices->is_array() || choices->empty()) {
    return fail("no \"choices\" array (or it is empty)");
  }
  if (static_cast<int>(choices->size()) < expected_choices) {
    return fail(std::to_string(choices->size()) + " choices, expected n=" + std::to_string(expected_choices));
  }
  ParsedAnswer parsed;
  std::vector<std::pair<std::int64_t, Choice>> indexed;
  for (std::size_t i = 0; i < choices->size(); ++i) {
    const auto& c = (*choices)[i];
    if (!c.is_object()) return fail("choices[" + std::to_string(i) + "] is not an object");
    const nlohmann::json* text = nullptr;
    if (endpoint == Endpoint::kChat) {
      const auto message = c.find("message");
      if (message != c.end() && message->is_object() && message->contains("content")) {
        text = &(*message)["content"];
      }
    } else if (c.contains("text")) {
      text = &c["text"];
    }
    const char* field = endpoint == Endpoint::kChat ? "message.content" : "text";
    // null content is what OpenAI sends for a refusal or tool call: an empty text.
    if (text == nullptr || !(text->is_string() || text->is_null())) {
      return fail("choices[" + std::to_string(i) + "] has no string " + field);
    }
    Choice choice;
    choice.text = text->is_string() ? text->get<std::string>() : std::string();
    if (const auto reason = c.find("finish_reason"); reason != c.end() && reason->is_string()) {
      choice.finish_reason = reason->get<std::string>();
    }
    const auto index = c.find("index");
    indexed.emplace_back(index != c.end() && index->is_number_integer() ? index->get<std::int64_t>()
                                                                          : static_cast<std::int64_t>(i),
                         std::move(choice));
  }
  std::stable_sort(indexed.begin(), indexed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [index, choice] : indexed) parsed.choices.push_back(std::move(choice));
  if (const auto usage = answer.find("usage"); usage != answer.end() && usage->is_object()) {
    // Usage is bookkeeping: a server that reports it oddly still gave a usable answer.
    const auto count = [&](const char* name) -> std::int64_t {
      const auto it = usage->find(name);
      return it != usage->end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
    };
    parsed.usage.prompt_tokens = count("prompt_tokens");
    parsed.usage.completion_tokens = count("completion_tokens");
  }
  return parsed;
}

}  // namespace character::remote
