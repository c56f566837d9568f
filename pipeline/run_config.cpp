// RunConfig: defaults, the YAML file, the JSON form of the manifest and the
// checks. One table (kKeys below) names every key once, with its path in the
// YAML/JSON tree and how it is read and written, so the YAML reader, the JSON
// round trip and docs/pipeline.md cannot drift apart.
#include "pipeline/run_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <sstream>
#include <functional>
#include <memory>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/log.h"
#include "base/yaml_check.h"
#include "lab/lab.h"
#include "personas/yaml_fields.h"
#include "remote/credentials.h"

namespace character::pipeline {

namespace {

using nlohmann::json;

// One value of the config tree, read from a YAML node (errors carry
// file:line:col) or from JSON (errors carry the source and the key path).
class Value {
 public:
  virtual ~Value() = default;
  virtual bool is_null() const = 0;
  virtual bool is_map() const = 0;
  // Entries of a map, in file order; fail()s when this is not a map.
  struct Entry {
    std::string name;
    std::unique_ptr<Value> key;    // where the key is (for "unknown key")
    std::unique_ptr<Value> value;
  };
  virtual std::vector<Entry> entries() const = 0;
  virtual bool as_bool() const = 0;
  virtual int64_t as_int() const = 0;
  virtual uint64_t as_uint() const = 0;
  virtual double as_double() const = 0;
  virtual std::string as_string() const = 0;
  virtual std::vector<std::string> as_strings() const = 0;
  virtual std::string where() const = 0;  // "run.yaml:12:5: training.lora.rank"
  [[noreturn]] void fail(const std::string& message) const { throw ConfigError(where() + ": " + message); }
};

class YamlValue final : public Value {
 public:
  YamlValue(const personas::FieldReader& reader, YAML::Node node, std::string path)
      : reader_(reader), node_(std::move(node)), path_(std::move(path)) {}

  bool is_null() const override { return !node_.IsDefined() || node_.IsNull(); }
  bool is_map() const override { return node_.IsMap(); }
  std::vector<Entry> entries() const override {
    if (!node_.IsMap()) fail("found " + personas::FieldReader::kind(node_) + ", expected a map");
    std::vector<Entry> out;
    std::set<std::string> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      const std::string path = personas::FieldReader::child(path_, key);
      if (!it->first.IsScalar()) YamlValue(reader_, it->first, path_).fail("expected a string key");
      // yaml-cpp keeps both entries of a repeated key and reads the first: say so instead.
      if (!seen.insert(key).second) YamlValue(reader_, it->first, path).fail("key \"" + key + "\" appears twice");
      out.push_back({key, std::make_unique<YamlValue>(reader_, it->first, path),
                     std::make_unique<YamlValue>(reader_, it->second, path)});
    }
    return out;
  }
  bool as_bool() const override {
    const std::string s = scalar("true or false");
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail("found \"" + s + "\", expected true or false");
  }
  int64_t as_int() const override {
    const std::string s = scalar("an integer");
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) fail("found \"" + s + "\", expected an integer");
    return v;
  }
  uint64_t as_uint() const override {
    const std::string s = scalar("a non-negative integer");
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) fail("found \"" + s + "\", expected a non-negative integer");
    return v;
  }
  double as_double() const override {
    const std::string s = scalar("a number");
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) fail("found \"" + s + "\", expected a number");
    return v;
  }
  std::string as_string() const override {
    if (is_null()) return "";
    return scalar("a string");
  }
  std::vector<std::string> as_strings() const override {
    if (is_null()) return {};
    if (!node_.IsSequence()) fail("found " + personas::FieldReader::kind(node_) + ", expected a list of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < node_.size(); ++i)
      out.push_back(YamlValue(reader_, node_[i], personas::FieldReader::item(path_, i)).scalar("a string"));
    return out;
  }
  std::string where() const override { return reader_.where(reader_.mark(node_), path_); }

 private:
  std::string scalar(const std::string& expected) const {
    if (!node_.IsScalar()) fail("found " + personas::FieldReader::kind(node_) + ", expected " + expected);
    return node_.Scalar();
  }
  const personas::FieldReader& reader_;
  YAML::Node node_;
  std::string path_;
};

class JsonValue final : public Value {
 public:
  JsonValue(const json& value, const std::string& source, std::string path)
      : value_(value), source_(source), path_(std::move(path)) {}

  bool is_null() const override { return value_.is_null(); }
  bool is_map() const override { return value_.is_object(); }
  std::vector<Entry> entries() const override {
    if (!value_.is_object()) fail("found " + kind() + ", expected an object");
    std::vector<Entry> out;
    for (const auto& [key, item] : value_.items()) {
      const std::string path = personas::FieldReader::child(path_, key);
      out.push_back({key, std::make_unique<JsonValue>(item, source_, path),
                     std::make_unique<JsonValue>(item, source_, path)});
    }
    return out;
  }
  bool as_bool() const override {
    if (!value_.is_boolean()) fail("found " + kind() + ", expected true or false");
    return value_.get<bool>();
  }
  int64_t as_int() const override {
    if (!value_.is_number_integer()) fail("found " + kind() + ", expected an integer");
    return value_.get<int64_t>();
  }
  uint64_t as_uint() const override {
    if (value_.is_number_unsigned()) return value_.get<uint64_t>();
    if (!value_.is_number_integer() || value_.get<int64_t>() < 0) fail("found " + kind() + ", expected a non-negative integer");
    return static_cast<uint64_t>(value_.get<int64_t>());
  }
  double as_double() const override {
    if (!value_.is_number()) fail("found " + kind() + ", expected a number");
    return value_.get<double>();
  }
  std::string as_string() const override {
    if (!value_.is_string()) fail("found " + kind() + ", expected a string");
    return value_.get<std::string>();
  }
  std::vector<std::string> as_strings() const override {
    if (!value_.is_array()) fail("found " + kind() + ", expected a list of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < value_.size(); ++i)
      out.push_back(JsonValue(value_[i], source_, personas::FieldReader::item(path_, i)).as_string());
    return out;
  }
  std::string where() const override { return source_ + ": " + path_; }

 private:
  std::string kind() const { return std::string(value_.type_name()) + " " + value_.dump(); }
  const json& value_;
  const std::string& source_;
  std::string path_;
};

// Typed reads and writes of one field.
void read(const Value& v, bool& out) { out = v.as_bool(); }
void read(const Value& v, std::string& out) { out = v.as_string(); }
void read(const Value& v, std::filesystem::path& out) { out = v.as_string(); }
void read(const Value& v, double& out) { out = v.as_double(); }
void read(const Value& v, int64_t& out) { out = v.as_int(); }
void read(const Value& v, uint64_t& out) { out = v.as_uint(); }
void read(const Value& v, int& out) {
  const int64_t x = v.as_int();
  if (x < INT32_MIN || x > INT32_MAX) v.fail("found " + std::to_string(x) + ", expected a 32-bit integer");
  out = static_cast<int>(x);
}
void read(const Value& v, std::vector<std::string>& out) { out = v.as_strings(); }
template <class T>
void read(const Value& v, std::optional<T>& out) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  T x{};
  read(v, x);
  out = x;
}
void read(const Value& v, lora::RouterTraining& out) { out = lora::parse_router_training(v.as_string(), v.where()); }
void read(const Value& v, lora::ExpertLora& out) { out = lora::parse_expert_lora(v.as_string(), v.where()); }

template <class T>
json write(const T& value) {
  return value;
}
json write(const std::filesystem::path& value) { return value.string(); }
template <class T>
json write(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}
json write(const lora::RouterTraining& value) { return lora::to_string(value); }
json write(const lora::ExpertLora& value) { return lora::to_string(value); }

struct Key {
  std::string path;  // dotted: "training.lora.rank"
  std::function<void(RunConfig&, const Value&)> read;
  std::function<json(const RunConfig&)> write;
};

// `field` is a generic lambda giving the member for a const or non-const RunConfig.
template <class Field>
Key key(std::string path, Field field) {
  return {std::move(path), [field](RunConfig& c, const Value& v) { read(v, field(c)); },
          [field](const RunConfig& c) { return write(field(c)); }};
}

#define CHARACTER_KEY(path, member) key(path, [](auto& c) -> auto& { return c.member; })

std::vector<Key> endpoint_keys(const std::string& prefix, EndpointConfig RunConfig::*endpoint) {
  auto f = [endpoint](auto member) {
    return [endpoint, member](auto& c) -> auto& { return (c.*endpoint).*member; };
  };
  return {key(prefix + ".url", f(&EndpointConfig::url)),
          key(prefix + ".model", f(&EndpointConfig::model)),
          key(prefix + ".api_key_env", f(&EndpointConfig::api_key_env)),
          key(prefix + ".in_flight", f(&EndpointConfig::in_flight)),
          key(prefix + ".retries", f(&EndpointConfig::retries)),
          key(prefix + ".timeout_s", f(&EndpointConfig::timeout_s)),
          key(prefix + ".price_in", f(&EndpointConfig::price_in)),
          key(prefix + ".price_out", f(&EndpointConfig::price_out))};
}

// Every key, in the order --print-config shows them. docs/pipeline.md lists them.
const std::vector<Key>& keys() {
  static const std::vector<Key> table = [] {
    std::vector<Key> k = {
        CHARACTER_KEY("persona", persona),
        CHARACTER_KEY("scale", scale),
        CHARACTER_KEY("counts.dpo_pairs", counts.dpo_pairs),
        CHARACTER_KEY("counts.reflections", counts.reflections),
        CHARACTER_KEY("counts.interactions", counts.interactions),
        CHARACTER_KEY("counts.interaction_turns", counts.interaction_turns),
        CHARACTER_KEY("paper_scale", paper_scale),
        CHARACTER_KEY("student", student),
        CHARACTER_KEY("device", device),
        CHARACTER_KEY("dtype", dtype),
        CHARACTER_KEY("seed", seed),
    };
    for (auto& e : endpoint_keys("teacher", &RunConfig::teacher)) k.push_back(std::move(e));
    for (auto& e : endpoint_keys("judge", &RunConfig::judge)) k.push_back(std::move(e));
    const std::vector<Key> rest = {
        CHARACTER_KEY("training.lora.rank", training.lora.rank),
        CHARACTER_KEY("training.lora.alpha", training.lora.alpha),
        CHARACTER_KEY("training.lora.train_attn", training.lora.train_attn),
        CHARACTER_KEY("training.lora.train_mlp", training.lora.train_mlp),
        CHARACTER_KEY("training.lora.train_unembed", training.lora.train_unembed),
        CHARACTER_KEY("training.lora.train_router", training.lora.train_router),
        CHARACTER_KEY("training.lora.router_lr_multiplier", training.lora.router_lr_multiplier),
        CHARACTER_KEY("training.lora.expert_lora", training.lora.expert_lora),
        CHARACTER_KEY("training.learning_rate", training.learning_rate),
        CHARACTER_KEY("training.sft_lr_factor", training.sft_lr_factor),
        CHARACTER_KEY("training.paper_mode", training.paper_mode),
        CHARACTER_KEY("training.batch_size", training.batch_size),
        CHARACTER_KEY("training.grad_accum", training.grad_accum),
        CHARACTER_KEY("training.epochs", training.epochs),
        CHARACTER_KEY("training.max_steps", training.max_steps),
        CHARACTER_KEY("training.schedule", training.schedule),
        CHARACTER_KEY("training.warmup_steps", training.warmup_steps),
        CHARACTER_KEY("training.dpo_beta", training.dpo_beta),
        CHARACTER_KEY("training.dpo_nll_coef", training.dpo_nll_coef),
        CHARACTER_KEY("training.max_length", training.max_length),
        CHARACTER_KEY("training.max_prompt_length", training.max_prompt_length),
        CHARACTER_KEY("training.held_out", training.held_out),
        CHARACTER_KEY("training.checkpoint_every", training.checkpoint_every),
        CHARACTER_KEY("training.aux_loss_coef", training.aux_loss_coef),
        CHARACTER_KEY("training.z_loss_coef", training.z_loss_coef),
        CHARACTER_KEY("training.coverage_threshold", training.coverage_threshold),
        CHARACTER_KEY("probe.samples", probe.samples),
        CHARACTER_KEY("probe.greedy", probe.greedy),
        CHARACTER_KEY("probe.max_new_tokens", probe.max_new_tokens),
        CHARACTER_KEY("probe.temperature", probe.temperature),
        CHARACTER_KEY("probe.top_p", probe.top_p),
        CHARACTER_KEY("probe.seed", probe.seed),
        CHARACTER_KEY("probe.variants", probe.variants),
        CHARACTER_KEY("probe.categories", probe.categories),
        CHARACTER_KEY("probe.extra_prompts", probe.extra_prompts),
        CHARACTER_KEY("probe.batch_rows", probe.batch_rows),
        CHARACTER_KEY("base_routing", base_routing),
        CHARACTER_KEY("gates.min_in_character_rate", gates.min_in_character_rate),
        CHARACTER_KEY("gates.min_category_rate", gates.min_category_rate),
        CHARACTER_KEY("gates.max_paraphrase_flip_rate", gates.max_paraphrase_flip_rate),
        CHARACTER_KEY("gates.min_probe_coverage", gates.min_probe_coverage),
        CHARACTER_KEY("gates.coverage_min_loss_tokens", gates.coverage_min_loss_tokens),
        CHARACTER_KEY("gates.require_no_nan", gates.require_no_nan),
        CHARACTER_KEY("gates.untrained_router", gates.untrained_router),
        CHARACTER_KEY("exports", exports),
        CHARACTER_KEY("force_export", force_export),
        CHARACTER_KEY("allow_drop_router", allow_drop_router),
        CHARACTER_KEY("runs_dir", runs_dir),
        CHARACTER_KEY("max_tokens", max_tokens),
        CHARACTER_KEY("introspection_max_tokens", introspection_max_tokens),
        CHARACTER_KEY("min_chars", min_chars),
        CHARACTER_KEY("max_chars", max_chars),
        CHARACTER_KEY("keep_unfinished", keep_unfinished),
        CHARACTER_KEY("question_max_tokens", question_max_tokens),
        CHARACTER_KEY("generation_chunk", generation_chunk),
        CHARACTER_KEY("constitution_share", constitution_share),
        CHARACTER_KEY("coverage_augment", coverage_augment),
        CHARACTER_KEY("coverage_pool_factor", coverage_pool_factor),
        CHARACTER_KEY("lab.size", lab.size),
        CHARACTER_KEY("lab.dir", lab.dir),
        CHARACTER_KEY("lab.seed", lab.seed),
    };
    for (const auto& e : rest) k.push_back(e);
    return k;
  }();
  return table;
}

#undef CHARACTER_KEY

const Key* find_key(const std::string& path) {
  for (const auto& k : keys())
    if (k.path == path) return &k;
  return nullptr;
}

// The names allowed directly under `prefix` ("" = top level): leaves and sections.
std::vector<std::string> children(const std::string& prefix) {
  std::vector<std::string> out;
  const std::string start = prefix.empty() ? "" : prefix + ".";
  for (const auto& k : keys()) {
    if (k.path.compare(0, start.size(), start) != 0) continue;
    const std::string rest = k.path.substr(start.size());
    const std::string name = rest.substr(0, rest.find('.'));
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

// Applies the map `node` (at `prefix`) onto `config`: leaves through their key,
// sections recursively; anything else is an unknown key.
void apply_tree(RunConfig& config, const Value& node, const std::string& prefix) {
  const std::vector<std::string> allowed = children(prefix);
  for (const auto& [name, key_at, value] : node.entries()) {
    const std::string path = personas::FieldReader::child(prefix, name);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      key_at->fail("unknown key \"" + name + "\", expected one of " + list);
    }
    if (const Key* k = find_key(path)) {
      k->read(config, *value);
    } else if (value->is_null()) {
      // An empty section ("gates:" with nothing under it) keeps the defaults.
    } else {
      apply_tree(config, *value, path);
    }
  }
}

// paper_scale is a preset beneath explicit values: applied first, so that the same
// file's training.lora.rank (or a flag) still wins over it.
void apply_with_presets(RunConfig& config, const Value& root) {
  for (const auto& [name, key_at, value] : root.entries())
    if (name == "paper_scale" && value->as_bool()) apply_paper_scale(config);
  apply_tree(config, root, "");
}

}  // namespace

RunConfig default_run_config() { return RunConfig{}; }

void apply_paper_scale(RunConfig& config) {
  config.paper_scale = true;
  config.training.lora.rank = 64;
  config.training.batch_size = 32;
  config.training.learning_rate = 5e-5;
  config.training.dpo_beta = 0.1;
  config.training.dpo_nll_coef = 0.1;
  config.training.epochs = 1;
  config.training.max_steps = 0;
}

void apply_config_file(RunConfig& config, const std::filesystem::path& file) {
  if (!std::filesystem::is_regular_file(file)) throw IoError(file.string() + ": config file not found");
  const std::string text = read_file(file);
  YAML::Node root;
  try {
    check_yaml(text);  // no aliases, bounded depth (base/yaml_check.h)
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    const bool refused = dynamic_cast<const YamlRefused*>(&e) != nullptr;
    throw ConfigError(file.string() + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      (refused ? ": " : ": not valid YAML: ") + e.msg);
  }
  personas::FieldReader reader(file.string());
  reader.index_empty_values(root);
  if (!root.IsDefined() || root.IsNull()) return;  // an empty file changes nothing
  apply_with_presets(config, YamlValue(reader, root, ""));
}

nlohmann::json to_json(const RunConfig& config) {
  json out = json::object();
  for (const auto& k : keys()) {
    json* node = &out;
    std::size_t start = 0;
    for (std::size_t dot = k.path.find('.'); dot != std::string::npos; dot = k.path.find('.', start)) {
      node = &(*node)[k.path.substr(start, dot - start)];
      start = dot + 1;
    }
    (*node)[k.path.substr(start)] = k.write(config);
  }
  return out;
}

RunConfig run_config_from_json(const nlohmann::json& json, const std::string& source) {
  RunConfig config = default_run_config();
  apply_with_presets(config, JsonValue(json, source, ""));
  return config;
}

std::vector<std::string> run_config_keys() {
  std::vector<std::string> out;
  for (const auto& k : keys()) out.push_back(k.path);
  return out;
}

void validate(const RunConfig& c) {
  auto bad = [](const std::string& key, const std::string& found, const std::string& expected) {
    throw ConfigError("config " + key + ": found " + found + ", expected " + expected);
  };
  auto num = [](double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  };
  if (c.persona.empty()) bad("persona", "nothing", "a shipped persona name or a YAML file");
  resolve_scale(c.scale, c.counts);  // unknown preset, negative counts
  if (c.device != "cpu" && c.device.rfind("cuda", 0) != 0) bad("device", "\"" + c.device + "\"", "cpu or cuda[:N]");
  if (!c.dtype.empty() && c.dtype != "float32" && c.dtype != "bfloat16" && c.dtype != "float16")
    bad("dtype", "\"" + c.dtype + "\"", "float32, bfloat16, float16 or empty (the device's default)");
  for (const auto& [name, e] : {std::pair<const char*, const EndpointConfig*>{"teacher", &c.teacher},
                                std::pair<const char*, const EndpointConfig*>{"judge", &c.judge}}) {
    const std::string p = name;
    if (!e->api_key_env.empty() && !remote::is_key_variable_name(e->api_key_env)) {
      log::register_secret(e->api_key_env);  // in case it is the key: redacted wherever it might still show
      bad(p + ".api_key_env", "a value that is not a variable name (not shown: it may be the key itself)",
          "the NAME of the environment variable holding the key, in upper-case letters, digits and '_', e.g. "
          "OPENAI_API_KEY");
    }
    if (const auto where = remote::credentials_in_url(e->url))
      bad(p + ".url", remote::url_for_messages(e->url) + " with credentials (" + *where + ")",
          "a URL without them; the key goes in an environment variable named by " + p + ".api_key_env");
    if (!e->url.empty() && e->model.empty()) bad(p + ".model", "nothing", "the model name the endpoint serves");
    if (e->in_flight < 1) bad(p + ".in_flight", std::to_string(e->in_flight), "≥ 1");
    if (e->retries < 0) bad(p + ".retries", std::to_string(e->retries), "≥ 0");
    if (!(e->timeout_s > 0)) bad(p + ".timeout_s", num(e->timeout_s), "> 0");
    if (e->price_in && *e->price_in < 0) bad(p + ".price_in", num(*e->price_in), "≥ 0");
    if (e->price_out && *e->price_out < 0) bad(p + ".price_out", num(*e->price_out), "≥ 0");
  }
  const TrainingConfig& t = c.training;
  lora::validate(t.lora);
  if (t.learning_rate && !(*t.learning_rate > 0)) bad("training.learning_rate", num(*t.learning_rate), "> 0");
  if (!(t.sft_lr_factor > 0)) bad("training.sft_lr_factor", num(t.sft_lr_factor), "> 0");
  if (t.batch_size < 1) bad("training.batch_size", std::to_string(t.batch_size), "≥ 1");
  if (t.grad_accum < 1) bad("training.grad_accum", std::to_string(t.grad_accum), "≥ 1");
  if (t.epochs < 1) bad("training.epochs", std::to_string(t.epochs), "≥ 1");
  if (t.max_steps < 0) bad("training.max_steps", std::to_string(t.max_steps), "≥ 0 (0: by epochs)");
  // lora/trainer.h's parse_lr_schedule would pull torch into this file; the names are its.
  if (t.schedule != "constant" && t.schedule != "linear" && t.schedule != "cosine")
    bad("training.schedule", "\"" + t.schedule + "\"", "constant, linear or cosine");
  if (t.warmup_steps < 0) bad("training.warmup_steps", std::to_string(t.warmup_steps), "≥ 0");
  if (!(t.dpo_beta > 0)) bad("training.dpo_beta", num(t.dpo_beta), "> 0");
  if (t.dpo_nll_coef < 0) bad("training.dpo_nll_coef", num(t.dpo_nll_coef), "≥ 0");
  if (t.max_length < 2) bad("training.max_length", std::to_string(t.max_length), "≥ 2");
  if (t.max_prompt_length < 1 || t.max_prompt_length >= t.max_length)
    bad("training.max_prompt_length", std::to_string(t.max_prompt_length), "≥ 1 and < training.max_length");
  if (t.held_out < 0 || t.held_out >= 1) bad("training.held_out", num(t.held_out), "a fraction in [0, 1)");
  if (t.checkpoint_every < 0) bad("training.checkpoint_every", std::to_string(t.checkpoint_every), "≥ 0");
  if (t.aux_loss_coef && *t.aux_loss_coef < 0) bad("training.aux_loss_coef", num(*t.aux_loss_coef), "≥ 0");
  if (t.z_loss_coef < 0) bad("training.z_loss_coef", num(t.z_loss_coef), "≥ 0");
  if (t.coverage_threshold < 1) bad("training.coverage_threshold", std::to_string(t.coverage_threshold), "≥ 1");
  const eval::ProbeSettings& p = c.probe;
  if (p.samples < 0) bad("probe.samples", std::to_string(p.samples), "≥ 0");
  if (p.samples == 0 && !p.greedy) bad("probe.samples", "0 with probe.greedy false", "at least one response per prompt");
  if (p.max_new_tokens < 1) bad("probe.max_new_tokens", std::to_string(p.max_new_tokens), "≥ 1");
  if (p.temperature && *p.temperature < 0) bad("probe.temperature", num(*p.temperature), "≥ 0");
  if (p.top_p && (*p.top_p <= 0 || *p.top_p > 1)) bad("probe.top_p", num(*p.top_p), "in (0, 1]");
  if (p.batch_rows < 1) bad("probe.batch_rows", std::to_string(p.batch_rows), "≥ 1");
  for (const auto& v : p.variants)
    if (v != "please" && v != "lower" && v != "punct" && v != "long")
      bad("probe.variants", "\"" + v + "\"", "please, lower, punct or long (eval/probe_set.h)");
  // eval/gates.cpp refuses rates outside [0, 1] too, but only when the gate stage
  // runs; checked here, a typo fails before hours of generation and training.
  const eval::GateThresholds& g = c.gates;
  for (const auto& [name, v] : {std::pair{"gates.min_in_character_rate", g.min_in_character_rate},
                                std::pair{"gates.min_category_rate", g.min_category_rate},
                                std::pair{"gates.max_paraphrase_flip_rate", g.max_paraphrase_flip_rate},
                                std::pair{"gates.min_probe_coverage", g.min_probe_coverage}})
    if (!(v >= 0 && v <= 1)) bad(name, num(v), "a rate in [0, 1]");
  if (g.coverage_min_loss_tokens < 0) bad("gates.coverage_min_loss_tokens", std::to_string(g.coverage_min_loss_tokens), "≥ 0");
  if (g.untrained_router != "warn" && g.untrained_router != "fail")
    bad("gates.untrained_router", "\"" + g.untrained_router + "\"", "warn or fail");
  std::set<std::string> formats;
  for (const auto& e : c.exports) {
    // lora::parse_export_format's names (lora/export.h brings torch with it).
    if (e != "tinker" && e != "peft" && e != "merged") bad("exports", "\"" + e + "\"", "tinker, peft or merged");
    if (!formats.insert(e).second) bad("exports", "\"" + e + "\" twice", "each format once");
  }
  if (c.runs_dir.empty()) bad("runs_dir", "nothing", "a directory");
  if (c.max_tokens < 1) bad("max_tokens", std::to_string(c.max_tokens), "≥ 1");
  if (c.introspection_max_tokens < 1) bad("introspection_max_tokens", std::to_string(c.introspection_max_tokens), "≥ 1");
  if (c.min_chars < 0) bad("min_chars", std::to_string(c.min_chars), "≥ 0");
  if (c.max_chars <= c.min_chars) bad("max_chars", std::to_string(c.max_chars), "> min_chars (" + std::to_string(c.min_chars) + ")");
  if (c.question_max_tokens < 0) bad("question_max_tokens", std::to_string(c.question_max_tokens), "≥ 0 (0: the generator's default)");
  if (c.generation_chunk < 0) bad("generation_chunk", std::to_string(c.generation_chunk), "≥ 0 (0: the defaults)");
  if (!(c.constitution_share >= 0 && c.constitution_share <= 1))
    bad("constitution_share", num(c.constitution_share), "a share in [0, 1]");
  if (!(c.coverage_pool_factor >= 1)) bad("coverage_pool_factor", num(c.coverage_pool_factor), "≥ 1 (the pool's size over the DPO prompts)");
  // Checked even when the run does not use the lab, so that a typo fails at once.
  const std::vector<std::string>& sizes = lab::lab_size_names();
  if (std::find(sizes.begin(), sizes.end(), c.lab.size) == sizes.end()) {
    std::string list;
    for (const auto& name : sizes) list += (list.empty() ? "" : ", ") + name;
    bad("lab.size", "\"" + c.lab.size + "\"", "one of " + list + " (lab/lab.h)");
  }
}

}  // namespace character::pipeline
