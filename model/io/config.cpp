#include "model/io/config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::model {
namespace {

using nlohmann::json;

// Reads typed fields from one config.json and names it in every error.
class FieldReader {
 public:
  FieldReader(const json& j, std::string source, std::string model_type)
      : j_(j), source_(std::move(source)), model_type_(std::move(model_type)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  // First present key among `keys` (aliases: Hub name, then transformers 5 name).
  const json* find(std::initializer_list<const char*> keys) const {
    for (const char* k : keys)
      if (has(k)) return &j_.at(k);
    return nullptr;
  }

  int64_t required_int(std::initializer_list<const char*> keys, int64_t min_value = 1) const {
    const json* v = find(keys);
    if (!v) throw ConfigError(source_ + ": missing field " + *keys.begin() + " (required for " + model_type_ + ")");
    return checked_int(*v, *keys.begin(), min_value);
  }

  int64_t optional_int(std::initializer_list<const char*> keys, int64_t fallback, int64_t min_value = 0) const {
    const json* v = find(keys);
    return v ? checked_int(*v, *keys.begin(), min_value) : fallback;
  }

  double optional_double(std::initializer_list<const char*> keys, double fallback) const {
    const json* v = find(keys);
    if (!v) return fallback;
    if (!v->is_number())
      throw ConfigError(source_ + ": field " + *keys.begin() + "=" + describe_json(*v) + ", expected a number");
    return v->get<double>();
  }

  bool optional_bool(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) throw ConfigError(source_ + ": field " + key + "=" + describe_json(v) + ", expected true or false");
    return v.get<bool>();
  }

  std::string optional_string(const char* key, std::string fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_string()) throw ConfigError(source_ + ": field " + key + "=" + describe_json(v) + ", expected a string");
    return v.get<std::string>();
  }

  // An int or a list of ints (eos_token_id may be either).
  std::vector<int64_t> int_list(const char* key) const {
    std::vector<int64_t> out;
    if (!has(key)) return out;
    const json& v = j_.at(key);
    if (v.is_array()) {
      for (const auto& e : v) out.push_back(checked_int(e, key, 0));
    } else {
      out.push_back(checked_int(v, key, 0));
    }
    return out;
  }

  [[noreturn]] void fail(const std::string& what) const { throw ConfigError(source_ + ": " + what); }

  const std::string& source() const { return source_; }

 private:
  int64_t checked_int(const json& v, const char* key, int64_t min_value) const {
    if (!v.is_number_integer())
      throw ConfigError(source_ + ": field " + key + "=" + describe_json(v) + ", expected an integer");
    const int64_t value = v.get<int64_t>();
    if (value < min_value)
      throw ConfigError(source_ + ": " + key + "=" + std::to_string(value) + ", expected >= " +
                        std::to_string(min_value) + " for " + model_type_);
    return value;
  }

  const json& j_;
  std::string source_;
  std::string model_type_;
};

// What each transformers 5.5.4 config class (configuration_<type>.py) assumes for
// a field that config.json leaves out.
struct ClassDefaults {
  std::optional<int64_t> head_dim;             // nullopt: hidden_size / num_attention_heads
  std::optional<int64_t> num_key_value_heads;  // nullopt: num_attention_heads
  double rms_norm_eps;
  int64_t max_position_embeddings;
  double rope_theta;  // the class's default_theta
  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;
};

ClassDefaults class_defaults(const std::string& model_type) {
  if (model_type == "llama") return {std::nullopt, std::nullopt, 1e-6, 2048, 10000.0, 1, 2, std::nullopt};
  if (model_type == "qwen3") return {128, 32, 1e-6, 32768, 10000.0, std::nullopt, std::nullopt, std::nullopt};
  if (model_type == "qwen3_moe") return {std::nullopt, 4, 1e-6, 32768, 10000.0, std::nullopt, std::nullopt, std::nullopt};
  if (model_type == "mixtral") return {std::nullopt, 8, 1e-5, 4096 * 32, 1e6, 1, 2, std::nullopt};
  return {std::nullopt, std::nullopt, 1e-5, 4096, 10000.0, std::nullopt, 50279, 1};  // olmoe
}

// A number inside a nested object (rope_scaling ...), named `parent.key` in errors.
double nested_number(const json& object, const char* key, double fallback, const FieldReader& f, const char* parent) {
  if (!object.contains(key) || object.at(key).is_null()) return fallback;
  const json& v = object.at(key);
  if (!v.is_number()) f.fail(std::string("field ") + parent + "." + key + "=" + describe_json(v) + ", expected a number");
  return v.get<double>();
}

// rope_theta and rope_scaling as the Hub writes them, or transformers 5's
// rope_parameters {rope_theta, rope_type, factor, ...}.
void read_rope(const json& j, const FieldReader& f, ModelConfig& c) {
  c.rope_theta = f.optional_double({"rope_theta"}, c.rope_theta);
  const json* scaling = nullptr;
  const char* scaling_name = "rope_scaling";
  if (f.has("rope_parameters")) {
    const json& p = j.at("rope_parameters");
    if (!p.is_object()) f.fail("field rope_parameters=" + describe_json(p) + ", expected an object");
    c.rope_theta = nested_number(p, "rope_theta", c.rope_theta, f, "rope_parameters");
    scaling = &p;
    scaling_name = "rope_parameters";
  }
  if (f.has("rope_scaling")) {
    scaling = &j.at("rope_scaling");
    scaling_name = "rope_scaling";
    if (!scaling->is_object()) f.fail("field rope_scaling=" + describe_json(*scaling) + ", expected an object");
  }
  if (!scaling) return;
  const json* type_field = scaling->contains("rope_type") ? &scaling->at("rope_type")
                           : scaling->contains("type")    ? &scaling->at("type")
                                                          : nullptr;
  if (type_field && !type_field->is_string())
    f.fail(std::string("field ") + scaling_name + ".rope_type=" + describe_json(*type_field) + ", expected a string");
  const std::string type = type_field ? type_field->get<std::string>() : "default";
  if (type == "default") return;
  if (type != "llama3")
    f.fail(std::string(scaling_name) + " type \"" + type + "\" is not supported (supported: default, llama3)");
  RopeScaling r;
  r.rope_type = type;
  r.factor = nested_number(*scaling, "factor", 1.0, f, scaling_name);
  r.low_freq_factor = nested_number(*scaling, "low_freq_factor", 1.0, f, scaling_name);
  r.high_freq_factor = nested_number(*scaling, "high_freq_factor", 4.0, f, scaling_name);
  const double original = nested_number(*scaling, "original_max_position_embeddings", 8192, f, scaling_name);
  if (!(original >= 1 && original <= 1e15) || original != std::floor(original))  // range first: the cast below
    f.fail(std::string("field ") + scaling_name + ".original_max_position_embeddings=" + std::to_string(original) +
           ", expected a positive integer");
  r.original_max_position_embeddings = static_cast<int64_t>(original);
  c.rope_scaling = r;
}

// A token id: absent → the class default; explicit null → none.
std::optional<int64_t> token_id(const json& j, const FieldReader& f, const char* key, std::optional<int64_t> fallback) {
  if (!j.contains(key)) return fallback;
  if (j.at(key).is_null()) return std::nullopt;
  return f.optional_int({key}, 0);
}

// Upper bounds far above any published model (Llama 3.1 405B: hidden 16384, 126 layers,
// 128 heads; DeepSeek-V3: 256 experts; Gemma 3: 262k vocabulary), so that a config.json
// claiming more is refused here, before a loop runs over its layers or a tensor of its
// size is allocated, and the parameter count below cannot overflow.
void check_sizes(const ModelConfig& c, const FieldReader& f) {
  const std::pair<const char*, std::pair<int64_t, int64_t>> limits[] = {
      {"vocab_size", {c.vocab_size, int64_t{1} << 22}},
      {"hidden_size", {c.hidden_size, int64_t{1} << 16}},
      {"num_hidden_layers", {c.num_hidden_layers, 1024}},
      {"num_attention_heads", {c.num_attention_heads, 1024}},
      {"num_key_value_heads", {c.num_key_value_heads, 1024}},
      {"head_dim", {c.head_dim, 4096}},
      {"max_position_embeddings", {c.max_position_embeddings, int64_t{1} << 24}},
      {"num_experts", {c.num_experts, 4096}},
      {"moe_intermediate_size", {c.moe_intermediate_size, int64_t{1} << 20}},
  };
  for (const auto& [name, value_limit] : limits) {
    const auto [value, limit] = value_limit;
    if (value > limit) {
      f.fail(std::string(name) + "=" + std::to_string(value) + " is beyond what this engine loads, expected at most " +
             std::to_string(limit));
    }
  }
}

}  // namespace

bool ModelConfig::is_moe_layer(int64_t layer) const {
  if (!is_moe()) return false;
  if (model_type != "qwen3_moe") return true;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) return false;
  return (layer + 1) % decoder_sparse_step == 0;
}

int64_t ModelConfig::expert_intermediate_size() const {
  return model_type == "qwen3_moe" ? moe_intermediate_size : intermediate_size;
}

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types{"llama", "qwen3", "qwen3_moe", "mixtral", "olmoe"};
  return types;
}

ModelConfig parse_config(const json& j, const std::string& source) {
  if (!j.is_object()) throw ConfigError(source + ": expected a JSON object");
  if (!j.contains("model_type") || !j.at("model_type").is_string())
    throw ConfigError(source + ": missing field model_type");
  ModelConfig c;
  c.model_type = j.at("model_type").get<std::string>();
  const auto& types = supported_model_types();
  if (std::find(types.begin(), types.end(), c.model_type) == types.end()) {
    std::string list;
    for (const auto& t : types) list += (list.empty() ? "" : ", ") + t;
    throw ConfigError(source + ": model_type \"" + c.model_type + "\" is not supported (supported: " + list + ")");
  }
  FieldReader f(j, source, c.model_type);
  const ClassDefaults defaults = class_defaults(c.model_type);
  if (f.has("architectures")) {
    const json& a = j.at("architectures");
    if (!a.is_array() || !std::all_of(a.begin(), a.end(), [](const json& e) { return e.is_string(); }))
      f.fail("field architectures=" + describe_json(a) + ", expected a list of class names");
    c.architectures = a.get<std::vector<std::string>>();
  }

  c.vocab_size = f.required_int({"vocab_size"});
  c.hidden_size = f.required_int({"hidden_size"});
  c.num_hidden_layers = f.required_int({"num_hidden_layers"});
  c.num_attention_heads = f.required_int({"num_attention_heads"});
  c.num_key_value_heads =
      f.optional_int({"num_key_value_heads"}, defaults.num_key_value_heads.value_or(c.num_attention_heads), 1);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    f.fail("num_attention_heads=" + std::to_string(c.num_attention_heads) +
           " is not a multiple of num_key_value_heads=" + std::to_string(c.num_key_value_heads));
  // Explicit null means "derive it" (modeling: `getattr(config, "head_dim", None) or ...`).
  const bool head_dim_absent = !j.contains("head_dim");
  c.head_dim = f.optional_int({"head_dim"}, head_dim_absent ? defaults.head_dim.value_or(0) : 0, 1);
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_attention_heads != 0)
      f.fail("hidden_size is not a multiple of num_attention_heads and head_dim is missing");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.max_position_embeddings = f.optional_int({"max_position_embeddings"}, defaults.max_position_embeddings, 1);
  c.rms_norm_eps = f.optional_double({"rms_norm_eps"}, defaults.rms_norm_eps);
  c.rope_theta = defaults.rope_theta;
  read_rope(j, f, c);
  c.tie_word_embeddings = f.optional_bool("tie_word_embeddings", false);
  c.attention_bias = f.optional_bool("attention_bias", false);
  c.mlp_bias = f.optional_bool("mlp_bias", false);
  c.hidden_act = f.optional_string("hidden_act", "silu");
  if (c.hidden_act != "silu") f.fail("hidden_act=\"" + c.hidden_act + "\", expected \"silu\"");
  c.torch_dtype = f.optional_string("torch_dtype", f.optional_string("dtype", ""));
  c.bos_token_id = token_id(j, f, "bos_token_id", defaults.bos_token_id);
  c.eos_token_id = f.int_list("eos_token_id");
  if (!j.contains("eos_token_id") && defaults.eos_token_id) c.eos_token_id = {*defaults.eos_token_id};
  c.pad_token_id = token_id(j, f, "pad_token_id", defaults.pad_token_id);
  if ((c.model_type == "qwen3" || c.model_type == "qwen3_moe") && f.optional_bool("use_sliding_window", false))
    f.fail("use_sliding_window=true; sliding-window attention is not supported, expected false");

  if (c.model_type == "qwen3_moe" || c.model_type == "mixtral" || c.model_type == "olmoe") {
    c.num_experts = f.required_int({"num_experts", "num_local_experts"});
    c.num_experts_per_tok = f.required_int({"num_experts_per_tok"});
    if (c.num_experts_per_tok > c.num_experts)
      f.fail("num_experts_per_tok=" + std::to_string(c.num_experts_per_tok) + " exceeds num_experts=" +
             std::to_string(c.num_experts));
    c.router_aux_loss_coef = f.optional_double({"router_aux_loss_coef"}, c.model_type == "olmoe" ? 0.01 : 0.001);
    c.output_router_logits = f.optional_bool("output_router_logits", false);
  }
  if (c.model_type == "qwen3_moe") {
    c.moe_intermediate_size = f.required_int({"moe_intermediate_size"});
    c.norm_topk_prob = f.optional_bool("norm_topk_prob", false);
    c.decoder_sparse_step = f.optional_int({"decoder_sparse_step"}, 1, 1);
    c.mlp_only_layers = f.int_list("mlp_only_layers");
    for (int64_t l : c.mlp_only_layers)
      if (l >= c.num_hidden_layers)
        f.fail("mlp_only_layers contains " + std::to_string(l) + ", expected < num_hidden_layers=" +
               std::to_string(c.num_hidden_layers));
  } else if (c.model_type == "mixtral") {
    c.norm_topk_prob = true;  // Mixtral always renormalises its top-k weights
    c.router_jitter_noise = f.optional_double({"router_jitter_noise"}, 0.0);
  } else if (c.model_type == "olmoe") {
    c.norm_topk_prob = f.optional_bool("norm_topk_prob", false);
    if (f.has("clip_qkv")) f.fail("clip_qkv is set; clipped QKV (OLMoE variants) is not supported");
  }
  check_sizes(c, f);
  // Every layer has a dense MLP in dense models and in qwen3_moe's dense layers.
  const bool needs_dense_mlp = !c.is_moe() || c.model_type == "qwen3_moe";
  const bool needs_expert_size = c.model_type == "mixtral" || c.model_type == "olmoe";
  bool any_dense_layer = !c.is_moe();
  for (int64_t l = 0; l < c.num_hidden_layers && !any_dense_layer; ++l) any_dense_layer = !c.is_moe_layer(l);
  if ((needs_dense_mlp && any_dense_layer) || needs_expert_size) {
    c.intermediate_size = f.required_int({"intermediate_size"});
  } else {
    c.intermediate_size = f.optional_int({"intermediate_size"}, 0, 0);
  }
  if (c.intermediate_size > (int64_t{1} << 20)) {
    f.fail("intermediate_size=" + std::to_string(c.intermediate_size) +
           " is beyond what this engine loads, expected at most " + std::to_string(int64_t{1} << 20));
  }
  return c;
}

ModelConfig load_config(const std::filesystem::path& path) {
  const auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  if (!std::filesystem::exists(file)) throw CheckpointError(file.string() + ": not found (a model directory needs config.json)");
  return parse_config(read_json_file(file), file.string());
}

json config_to_json(const ModelConfig& c) {
  json j;
  j["model_type"] = c.model_type;
  j["architectures"] = c.architectures;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling) {
    j["rope_scaling"] = {{"rope_type", c.rope_scaling->rope_type},
                         {"factor", c.rope_scaling->factor},
                         {"low_freq_factor", c.rope_scaling->low_freq_factor},
                         {"high_freq_factor", c.rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling->original_max_position_embeddings}};
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  if (c.model_type == "llama") j["mlp_bias"] = c.mlp_bias;
  j["hidden_act"] = c.hidden_act;
  if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_id.size() == 1) j["eos_token_id"] = c.eos_token_id[0];
  else if (!c.eos_token_id.empty()) j["eos_token_id"] = c.eos_token_id;
  if (c.pad_token_id) j["pad_token_id"] = *c.pad_token_id;
  if (c.is_moe()) {
    j[c.model_type == "mixtral" ? "num_local_experts" : "num_experts"] = c.num_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["router_aux_loss_coef"] = c.router_aux_loss_coef;
    j["output_router_logits"] = c.output_router_logits;
    if (c.model_type != "mixtral") j["norm_topk_prob"] = c.norm_topk_prob;
  }
  if (c.model_type == "qwen3_moe") {
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["decoder_sparse_step"] = c.decoder_sparse_step;
    j["mlp_only_layers"] = c.mlp_only_layers;
  }
  if (c.model_type == "mixtral") j["router_jitter_noise"] = c.router_jitter_noise;
  return j;
}

}  // namespace character::model
