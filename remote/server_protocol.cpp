// Request checks and answer JSON for the OpenAI-compatible server. Field names,
// shapes and error messages follow the OpenAI API reference (chat/create,
// completions/create, the streaming chunk object); vLLM's extra sampling fields
// are accepted too.
#include "remote/server_protocol.h"

#include <chrono>
#include <random>

namespace character::remote {
namespace {

using nlohmann::json;

std::string type_name(const json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  return value.type_name();
}

[[noreturn]] void invalid(const std::string& param, const std::string& message) {
  throw InvalidRequest(message, param);
}

[[noreturn]] void wrong_type(const std::string& param, const json& value, const std::string& expected) {
  invalid(param, "'" + param + "' is " + type_name(value) + " " + value.dump() + ", expected " + expected);
}

// The field, or nullptr when absent or null (OpenAI treats null as unset).
const json* field(const json& body, const std::string& name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::int64_t> integer(const json& body, const std::string& name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) wrong_type(name, *v, "an integer");
  return v->get<std::int64_t>();
}

std::optional<double> number(const json& body, const std::string& name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(name, *v, "a number");
  return v->get<double>();
}

std::optional<bool> boolean(const json& body, const std::string& name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(name, *v, "a boolean");
  return v->get<bool>();
}

void check_object(const json& body) {
  if (!body.is_object()) {
    invalid("", "the request body is " + type_name(body) + ", expected a JSON object");
  }
}

void check_model(const json& body, const std::string& model_id) {
  const json* model = field(body, "model");
  if (!model) invalid("model", "you must provide a model parameter ('model' is missing)");
  if (!model->is_string()) wrong_type("model", *model, "a string");
  if (model->get<std::string>() != model_id) {
    throw InvalidRequest("The model `" + model->get<std::string>() + "` does not exist; this server serves `" +
                             model_id + "`",
                         "model", 404, "model_not_found");
  }
}

// Fields whose meaning this server cannot honour: refusing is better than an
// answer that silently ignores them.
void refuse_unsupported(const json& body, bool chat) {
  auto refuse = [](const std::string& name, const std::string& why) {
    invalid(name, "'" + name + "' is not supported by this server (" + why + ")");
  };
  for (const char* name : {"tools", "tool_choice", "functions", "function_call"}) {
    if (field(body, name)) refuse(name, "no tool calling");
  }
  if (const json* v = field(body, "logprobs"); v && !(v->is_boolean() && !v->get<bool>())) {
    refuse("logprobs", "no log probabilities");
  }
  if (field(body, "top_logprobs")) refuse("top_logprobs", "no log probabilities");
  if (const json* v = field(body, "logit_bias"); v && !(v->is_object() && v->empty())) {
    refuse("logit_bias", "no logit bias");
  }
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    if (const json* v = field(body, name); v && !(v->is_number() && v->get<double>() == 0.0)) {
      refuse(name, "use repetition_penalty");
    }
  }
  if (chat) {
    if (const json* v = field(body, "response_format");
        v && !(v->is_object() && v->value("type", "") == "text")) {
      refuse("response_format", "plain text only");
    }
  } else {
    if (const json* v = field(body, "echo"); v && !(v->is_boolean() && !v->get<bool>())) {
      refuse("echo", "the prompt is never echoed");
    }
    if (const json* v = field(body, "suffix"); v && !(v->is_string() && v->get<std::string>().empty())) {
      refuse("suffix", "no insertion");
    }
  }
}

// n, max_tokens, temperature, top_p, stop, seed and vLLM's top_k, min_p,
// repetition_penalty; stream and stream_options.
void parse_sampling(const json& body, const RequestLimits& limits, bool chat, Sampling& sampling, bool& stream,
                    bool& include_usage) {
  if (auto n = integer(body, "n")) {
    if (*n < 1 || *n > limits.max_n) {
      invalid("n", "'n' is " + std::to_string(*n) + ", expected 1 to " + std::to_string(limits.max_n));
    }
    sampling.n = static_cast<int>(*n);
  }
  if (const json* v = field(body, "best_of")) {
    if (!v->is_number_integer() || v->get<std::int64_t>() != sampling.n) {
      invalid("best_of", "'best_of' is " + v->dump() + "; this server only supports best_of = n");
    }
  }
  std::optional<std::int64_t> max_tokens = integer(body, "max_tokens");
  if (chat) {
    if (auto v = integer(body, "max_completion_tokens")) max_tokens = v;
  }
  if (max_tokens) {
    const std::string name = chat && field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (*max_tokens < 1) invalid(name, "'" + name + "' is " + std::to_string(*max_tokens) + ", expected ≥ 1");
    sampling.max_tokens = static_cast<int>(std::min<std::int64_t>(*max_tokens, 1 << 30));
  }
  if (auto t = number(body, "temperature")) {
    if (*t < 0 || *t > 2) invalid("temperature", "'temperature' is " + json(*t).dump() + ", expected 0 to 2");
    sampling.temperature = *t;
  }
  if (auto p = number(body, "top_p")) {
    if (*p <= 0 || *p > 1) invalid("top_p", "'top_p' is " + json(*p).dump() + ", expected in (0, 1]");
    sampling.top_p = *p;
  }
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      sampling.stop = {stop->get<std::string>()};
    } else if (stop->is_array()) {
      if (stop->size() > limits.max_stop) {
        invalid("stop", "'stop' has " + std::to_string(stop->size()) + " sequences, expected at most " +
                            std::to_string(limits.max_stop));
      }
      for (std::size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) wrong_type("stop[" + std::to_string(i) + "]", (*stop)[i], "a string");
        sampling.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      wrong_type("stop", *stop, "a string or an array of strings");
    }
    for (std::size_t i = 0; i < sampling.stop.size(); ++i) {
      if (sampling.stop[i].empty()) invalid("stop", "'stop' sequence " + std::to_string(i) + " is empty");
    }
  }
  if (auto seed = integer(body, "seed")) sampling.seed = *seed;
  if (auto k = integer(body, "top_k")) {
    if (*k < -1) invalid("top_k", "'top_k' is " + std::to_string(*k) + ", expected ≥ 0 (or -1 = off)");
    sampling.extra["top_k"] = std::max<std::int64_t>(*k, 0);
  }
  if (auto m = number(body, "min_p")) {
    if (*m < 0 || *m > 1) invalid("min_p", "'min_p' is " + json(*m).dump() + ", expected 0 to 1");
    sampling.extra["min_p"] = *m;
  }
  if (auto r = number(body, "repetition_penalty")) {
    if (*r <= 0) invalid("repetition_penalty", "'repetition_penalty' is " + json(*r).dump() + ", expected > 0");
    sampling.extra["repetition_penalty"] = *r;
  }
  stream = boolean(body, "stream").value_or(false);
  if (const json* options = field(body, "stream_options")) {
    if (!stream) invalid("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (!options->is_object()) wrong_type("stream_options", *options, "an object");
    if (auto usage = boolean(*options, "include_usage")) include_usage = *usage;
  }
}

std::string message_content(const json& message, const std::string& where, const std::string& role) {
  const json* content = field(message, "content");
  if (!content) {
    if (role == "assistant") return "";
    invalid(where + ".content", "'" + where + ".content' is missing");
  }
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) wrong_type(where + ".content", *content, "a string or an array of text parts");
  std::string text;
  for (std::size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string at = where + ".content[" + std::to_string(i) + "]";
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      invalid(at, "'" + at + "' is " + part.dump() + ", expected {\"type\": \"text\", \"text\": string}");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<Message> parse_messages(const json& body) {
  const json* messages = field(body, "messages");
  if (!messages) invalid("messages", "'messages' is missing");
  if (!messages->is_array()) wrong_type("messages", *messages, "an array of messages");
  if (messages->empty()) invalid("messages", "'messages' is empty, expected at least one message");
  std::vector<Message> out;
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) wrong_type(where, m, "an object");
    const json* role = field(m, "role");
    if (!role) invalid(where + ".role", "'" + where + ".role' is missing");
    if (!role->is_string()) wrong_type(where + ".role", *role, "a string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant") {
      invalid(where + ".role", "'" + where + ".role' is \"" + r +
                                   "\", expected \"system\", \"developer\", \"user\" or \"assistant\"");
    }
    out.push_back({r, message_content(m, where, r)});
  }
  return out;
}

}  // namespace

ParsedChat parse_chat_body(const json& body, const std::string& model_id, const RequestLimits& limits) {
  check_object(body);
  check_model(body, model_id);
  refuse_unsupported(body, /*chat=*/true);
  ParsedChat out;
  out.request.messages = parse_messages(body);
  parse_sampling(body, limits, /*chat=*/true, out.request.sampling, out.stream, out.include_usage);
  if (const json* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) wrong_type("chat_template_kwargs", *kwargs, "an object");
    for (const auto& [key, value] : kwargs->items()) {
      if (key != "enable_thinking") {
        invalid("chat_template_kwargs." + key,
                "'chat_template_kwargs." + key + "' is not supported (only enable_thinking is)");
      }
      if (!value.is_boolean()) wrong_type("chat_template_kwargs.enable_thinking", value, "a boolean");
    }
    out.request.sampling.extra["chat_template_kwargs"] = *kwargs;
  }
  return out;
}

ParsedCompletion parse_completion_body(const json& body, const std::string& model_id, const RequestLimits& limits) {
  check_object(body);
  check_model(body, model_id);
  refuse_unsupported(body, /*chat=*/false);
  ParsedCompletion out;
  const json* prompt = field(body, "prompt");
  if (!prompt) invalid("prompt", "'prompt' is missing");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    out.request.prompt = (*prompt)[0].get<std::string>();
  } else if (prompt->is_string()) {
    out.request.prompt = prompt->get<std::string>();
  } else {
    wrong_type("prompt", *prompt, "a string (or an array of one string)");
  }
  parse_sampling(body, limits, /*chat=*/false, out.request.sampling, out.stream, out.include_usage);
  return out;
}

json error_json(int status, const std::string& message, const std::string& param, const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", status >= 500 ? "server_error" : "invalid_request_error"},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

std::string new_completion_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kHex[rng() % 16];
  return id;
}

json usage_json(const TokenUsage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

namespace {

json envelope(const AnswerMeta& meta, const char* object) {
  return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model},
          {"system_fingerprint", nullptr}};
}

json finish(const std::string& reason) { return reason.empty() ? json(nullptr) : json(reason); }

}  // namespace

json chat_answer_json(const AnswerMeta& meta, const Response& response) {
  json out = envelope(meta, "chat.completion");
  json choices = json::array();
  for (std::size_t i = 0; i < response.choices.size(); ++i) {
    choices.push_back({{"index", i},
                       {"message", {{"role", "assistant"}, {"content", response.choices[i].text}}},
                       {"logprobs", nullptr},
                       {"finish_reason", finish(response.choices[i].finish_reason)}});
  }
  out["choices"] = std::move(choices);
  out["usage"] = usage_json(response.usage);
  return out;
}

json completion_answer_json(const AnswerMeta& meta, const Response& response) {
  json out = envelope(meta, "text_completion");
  json choices = json::array();
  for (std::size_t i = 0; i < response.choices.size(); ++i) {
    choices.push_back({{"text", response.choices[i].text},
                       {"index", i},
                       {"logprobs", nullptr},
                       {"finish_reason", finish(response.choices[i].finish_reason)}});
  }
  out["choices"] = std::move(choices);
  out["usage"] = usage_json(response.usage);
  return out;
}

namespace {

json chat_chunk(const AnswerMeta& meta, int index, json delta, json finish_reason) {
  json out = envelope(meta, "chat.completion.chunk");
  out["choices"] = json::array(
      {{{"index", index}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}});
  return out;
}

json completion_chunk(const AnswerMeta& meta, int index, const std::string& text, json finish_reason) {
  json out = envelope(meta, "text_completion");
  out["choices"] =
      json::array({{{"text", text}, {"index", index}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}});
  return out;
}

}  // namespace

json chat_role_chunk(const AnswerMeta& meta, int index) {
  return chat_chunk(meta, index, {{"role", "assistant"}, {"content", ""}}, nullptr);
}

json chat_delta_chunk(const AnswerMeta& meta, int index, const std::string& piece) {
  return chat_chunk(meta, index, {{"content", piece}}, nullptr);
}

json chat_finish_chunk(const AnswerMeta& meta, int index, const std::string& finish_reason) {
  return chat_chunk(meta, index, json::object(), finish(finish_reason));
}

json completion_delta_chunk(const AnswerMeta& meta, int index, const std::string& piece) {
  return completion_chunk(meta, index, piece, nullptr);
}

json completion_finish_chunk(const AnswerMeta& meta, int index, const std::string& finish_reason) {
  return completion_chunk(meta, index, "", finish(finish_reason));
}

json usage_chunk(const AnswerMeta& meta, bool chat, const TokenUsage& usage) {
  json out = envelope(meta, chat ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

std::string sse_event(const json& chunk) {
  return "data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string sse_done() { return "data: [DONE]\n\n"; }

}  // namespace character::remote
