#include "router_train/coverage.h"

#include <torch/torch.h>

#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::router_train {

namespace {

constexpr const char* kFormat = "character-coverage";
constexpr int64_t kVersion = 1;

std::string list_string(const std::vector<int64_t>& values) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < values.size(); ++i) s << (i ? ", " : "") << values[i];
  s << "]";
  return s.str();
}

// A field of a coverage state, with errors that name the source and the field.
const nlohmann::json& field(const nlohmann::json& object, const std::string& key, const std::string& where,
                            const std::string& source) {
  if (!object.is_object() || !object.contains(key)) {
    throw CheckpointError(source + ": missing field " + where + key + " in the coverage state");
  }
  return object.at(key);
}

int64_t integer_field(const nlohmann::json& object, const std::string& key, const std::string& where,
                      const std::string& source) {
  const auto& value = field(object, key, where, source);
  if (!value.is_number_integer()) {
    throw CheckpointError(source + ": coverage field " + where + key + " is " + value.dump() +
                          ", expected an integer");
  }
  return value.get<int64_t>();
}

std::vector<int64_t> counts_field(const nlohmann::json& object, const std::string& key, const std::string& where,
                                  int64_t expected_size, const std::string& source) {
  const auto& value = field(object, key, where, source);
  if (!value.is_array() || static_cast<int64_t>(value.size()) != expected_size) {
    throw CheckpointError(source + ": coverage field " + where + key + " has " +
                          (value.is_array() ? std::to_string(value.size()) + " entries" : value.type_name()) +
                          ", expected " + std::to_string(expected_size) + " counts (num_experts)");
  }
  std::vector<int64_t> out;
  out.reserve(value.size());
  for (const auto& v : value) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      throw CheckpointError(source + ": coverage field " + where + key + " holds " + v.dump() +
                            ", expected non-negative integer counts");
    }
    out.push_back(v.get<int64_t>());
  }
  return out;
}

}  // namespace

at::Tensor loss_bearing_positions(const at::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 2, "loss_bearing_positions: labels must be [B, T], got ", labels.sizes());
  const int64_t t = labels.size(1);
  auto out = at::zeros(labels.sizes(), labels.options().dtype(at::kBool));  // [B, T]
  if (t > 1) out.narrow(1, 0, t - 1).copy_(labels.narrow(1, 1, t - 1).ne(-100));  // position t ← labels[t+1]
  return out;
}

CoverageCounter::CoverageCounter(std::vector<int64_t> moe_layers, int64_t num_experts, int64_t top_k)
    : layers_(std::move(moe_layers)), num_experts_(num_experts), top_k_(top_k) {
  TORCH_CHECK(num_experts >= 1 && top_k >= 1 && top_k <= num_experts, "CoverageCounter: num_experts ", num_experts,
              ", top_k ", top_k);
  const auto cells = layers_.size() * static_cast<size_t>(num_experts);
  loss_tokens_.assign(cells, 0);
  all_tokens_.assign(cells, 0);
}

CoverageCounter CoverageCounter::for_model(const model::ModelConfig& config) {
  if (!config.is_moe()) {
    throw ConfigError("training coverage: model_type " + config.model_type +
                      " has no MoE layers (num_experts=0), expected a mixture-of-experts model");
  }
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    if (config.is_moe_layer(l)) layers.push_back(l);
  }
  return CoverageCounter(std::move(layers), config.num_experts, config.num_experts_per_tok);
}

void CoverageCounter::add(const std::vector<model::LayerRouting>& routing, const at::Tensor& attention_mask,
                          const at::Tensor& loss_mask) {
  TORCH_CHECK(routing.size() == layers_.size(), "CoverageCounter::add: routing of ", routing.size(),
              " MoE layers, expected ", layers_.size(), " (capture.router off?)");
  if (routing.empty()) return;
  std::vector<at::Tensor> ids;
  ids.reserve(routing.size());
  for (size_t j = 0; j < routing.size(); ++j) {
    const auto& r = routing[j];
    TORCH_CHECK(r.layer == layers_[j], "CoverageCounter::add: routing entry ", j, " is layer ", r.layer,
                ", expected layer ", layers_[j]);
    TORCH_CHECK(r.topk_ids.defined() && r.topk_ids.dim() == 2 && r.topk_ids.size(1) == top_k_,
                "CoverageCounter::add: layer ", r.layer, " topk_ids must be [N, ", top_k_, "]");
    ids.push_back(r.topk_ids);
  }
  const int64_t l = static_cast<int64_t>(ids.size()), n = ids.front().size(0), e = num_experts_;
  const auto device = ids.front().device();
  auto stacked = at::stack(ids, 0).to(at::kLong);  // L × [N, K] → [L, N, K]
  // Each layer's experts get their own bins: layer j, expert e → bin j·E + e.
  auto bins = stacked + (at::arange(l, stacked.options()) * e).view({l, 1, 1});  // [L, N, K]

  auto real = attention_mask.defined() ? attention_mask.to(device).reshape({-1}).ne(0)
                                       : at::ones({n}, stacked.options().dtype(at::kBool));  // [N]
  TORCH_CHECK(real.numel() == n, "CoverageCounter::add: attention_mask ", attention_mask.sizes(), " does not cover ",
              n, " routed positions");
  TORCH_CHECK(loss_mask.defined() && loss_mask.numel() == n,
              "CoverageCounter::add: loss_mask must be [B, T] with B·T = ", n);
  auto bearing = loss_mask.to(device).reshape({-1}).ne(0).logical_and(real);  // [N]

  // Counts over the selected positions' slots: [L, N', K] → [L·E].
  auto count = [&](const at::Tensor& keep) {
    return bins.index_select(1, keep.nonzero().squeeze(1)).reshape({-1}).bincount(/*weights=*/{}, /*minlength=*/l * e);
  };
  auto totals = at::stack({real.sum(), bearing.sum()}).to(at::kLong);  // [2]
  auto all = at::cat({count(bearing), count(real), totals}).to(at::kCPU).contiguous();  // one host copy
  const int64_t* p = all.data_ptr<int64_t>();
  for (int64_t i = 0; i < l * e; ++i) {
    loss_tokens_[static_cast<size_t>(i)] += p[i];
    all_tokens_[static_cast<size_t>(i)] += p[l * e + i];
  }
  real_positions_ += p[2 * l * e];
  loss_positions_ += p[2 * l * e + 1];
}

void CoverageCounter::merge(const CoverageCounter& other) {
  if (other.layers_ != layers_ || other.num_experts_ != num_experts_ || other.top_k_ != top_k_) {
    throw ConfigError("coverage merge: counts for MoE layers " + list_string(other.layers_) + ", " +
                      std::to_string(other.num_experts_) + " experts, top-k " + std::to_string(other.top_k_) +
                      "; expected layers " + list_string(layers_) + ", " + std::to_string(num_experts_) +
                      " experts, top-k " + std::to_string(top_k_));
  }
  for (size_t i = 0; i < loss_tokens_.size(); ++i) {
    loss_tokens_[i] += other.loss_tokens_[i];
    all_tokens_[i] += other.all_tokens_[i];
  }
  real_positions_ += other.real_positions_;
  loss_positions_ += other.loss_positions_;
}

int64_t CoverageCounter::loss_tokens(size_t layer_index, int64_t expert) const {
  return loss_tokens_.at(layer_index * static_cast<size_t>(num_experts_) + static_cast<size_t>(expert));
}

int64_t CoverageCounter::all_tokens(size_t layer_index, int64_t expert) const {
  return all_tokens_.at(layer_index * static_cast<size_t>(num_experts_) + static_cast<size_t>(expert));
}

int64_t CoverageCounter::experts_below(int64_t threshold) const {
  int64_t below = 0;
  for (int64_t c : loss_tokens_) below += c < threshold ? 1 : 0;
  return below;
}

double CoverageCounter::share_below(int64_t threshold) const {
  if (loss_tokens_.empty()) return 0.0;
  return static_cast<double>(experts_below(threshold)) / static_cast<double>(loss_tokens_.size());
}

nlohmann::json CoverageCounter::state() const {
  nlohmann::json layers = nlohmann::json::array();
  const auto e = static_cast<size_t>(num_experts_);
  auto row = [e](const std::vector<int64_t>& counts, size_t j) {
    return std::vector<int64_t>(counts.begin() + static_cast<std::ptrdiff_t>(j * e),
                                counts.begin() + static_cast<std::ptrdiff_t>((j + 1) * e));
  };
  for (size_t j = 0; j < layers_.size(); ++j) {
    layers.push_back(
        {{"layer", layers_[j]}, {"loss_tokens", row(loss_tokens_, j)}, {"all_tokens", row(all_tokens_, j)}});
  }
  return {{"format", kFormat},
          {"version", kVersion},
          {"num_experts", num_experts_},
          {"top_k", top_k_},
          {"positions", {{"real", real_positions_}, {"loss_bearing", loss_positions_}}},
          {"layers", layers}};
}

void CoverageCounter::load_state(const nlohmann::json& state, const std::string& source) {
  const auto& format = field(state, "format", "", source);
  if (format != kFormat) {
    throw CheckpointError(source + ": coverage field format is " + format.dump() + ", expected \"" + kFormat + "\"");
  }
  if (const int64_t version = integer_field(state, "version", "", source); version != kVersion) {
    throw CheckpointError(source + ": coverage version " + std::to_string(version) + ", expected " +
                          std::to_string(kVersion));
  }
  const int64_t experts = integer_field(state, "num_experts", "", source);
  const int64_t top_k = integer_field(state, "top_k", "", source);
  if (experts != num_experts_ || top_k != top_k_) {
    throw CheckpointError(source + ": coverage for num_experts=" + std::to_string(experts) + ", top_k=" +
                          std::to_string(top_k) + "; expected num_experts=" + std::to_string(num_experts_) +
                          ", top_k=" + std::to_string(top_k_) + " (the model's)");
  }
  const auto& positions = field(state, "positions", "", source);
  const int64_t real = integer_field(positions, "real", "positions.", source);
  const int64_t bearing = integer_field(positions, "loss_bearing", "positions.", source);

  const auto& layers = field(state, "layers", "", source);
  std::vector<int64_t> found_layers;
  if (layers.is_array()) {
    for (const auto& layer : layers) found_layers.push_back(integer_field(layer, "layer", "layers[].", source));
  }
  if (found_layers != layers_) {
    throw CheckpointError(source + ": coverage for MoE layers " + list_string(found_layers) + ", expected " +
                          list_string(layers_) + " (the model's)");
  }
  std::vector<int64_t> loss, all;
  for (size_t j = 0; j < layers_.size(); ++j) {
    const std::string where = "layers[" + std::to_string(j) + "].";
    auto l = counts_field(layers[j], "loss_tokens", where, num_experts_, source);
    auto a = counts_field(layers[j], "all_tokens", where, num_experts_, source);
    loss.insert(loss.end(), l.begin(), l.end());
    all.insert(all.end(), a.begin(), a.end());
  }
  loss_tokens_ = std::move(loss);
  all_tokens_ = std::move(all);
  real_positions_ = real;
  loss_positions_ = bearing;
}

nlohmann::json CoverageCounter::to_json(int64_t threshold) const {
  auto j = state();
  const auto e = static_cast<size_t>(num_experts_);
  for (size_t l = 0; l < layers_.size(); ++l) {
    std::vector<int64_t> below;
    for (size_t x = 0; x < e; ++x) {
      if (loss_tokens_[l * e + x] < threshold) below.push_back(static_cast<int64_t>(x));
    }
    auto& layer = j["layers"][l];
    layer["share_below_threshold"] = static_cast<double>(below.size()) / static_cast<double>(e);
    layer["below_threshold"] = below;
  }
  j["threshold"] = threshold;
  j["threshold_counts"] = "loss_tokens";
  j["experts_total"] = static_cast<int64_t>(loss_tokens_.size());
  j["experts_below_threshold"] = experts_below(threshold);
  j["share_below_threshold"] = share_below(threshold);
  return j;
}

void CoverageCounter::write_json(const std::filesystem::path& path, int64_t threshold) const {
  write_file_atomic(path, to_json(threshold).dump(2) + "\n");
}

CoverageCounter CoverageCounter::read_json(const std::filesystem::path& path) {
  std::string why;
  const auto parsed = try_parse_json(read_file(path), &why);
  if (!parsed) throw CheckpointError(path.string() + ": " + why + ", expected a coverage.json");
  const nlohmann::json& j = *parsed;
  const std::string source = path.string();
  std::vector<int64_t> layers;
  const auto& list = field(j, "layers", "", source);
  if (list.is_array()) {
    for (const auto& layer : list) layers.push_back(integer_field(layer, "layer", "layers[].", source));
  }
  const int64_t experts = integer_field(j, "num_experts", "", source);
  const int64_t top_k = integer_field(j, "top_k", "", source);
  if (experts < 1 || top_k < 1 || top_k > experts) {
    throw CheckpointError(source + ": coverage num_experts=" + std::to_string(experts) + ", top_k=" +
                          std::to_string(top_k) + ", expected 1 ≤ top_k ≤ num_experts");
  }
  CoverageCounter counter(std::move(layers), experts, top_k);
  counter.load_state(j, source);
  return counter;
}

}  // namespace character::router_train
