// Building a model from config.json and filling it from safetensors, walking the
// module tree with the checkpoint's own names: every parameter must be found with
// its shape, and every checkpoint tensor must be used. Routed experts come either
// fused (transformers 5 layout) or per expert (Hub layout, stacked here with the
// architecture's ExpertNameRule).
#include <torch/torch.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>

#include "base/error.h"
#include "model/arch/architectures.h"
#include "model/arch/tensor_io.h"
#include "model/io/param_count.h"
#include "model/io/safetensors.h"

namespace character::model {
namespace {

const ArchSpec* const kArchitectures[] = {&llama_spec(), &qwen3_spec(), &qwen3_moe_spec(), &mixtral_spec(),
                                          &olmoe_spec()};

std::string shape_str(at::IntArrayRef shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

at::TensorOptions tensor_options(const LoadOptions& options) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(options.device);
  } catch (const std::exception&) {
    throw ConfigError("device \"" + options.device + "\" is not a device name, expected cpu or cuda[:N]");
  }
  if (device.is_cuda() && !torch::cuda::is_available())
    throw ConfigError("device \"" + options.device + "\" requested but CUDA is not available");
  at::ScalarType dtype = device.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (options.dtype == "float32") dtype = at::kFloat;
  else if (options.dtype == "bfloat16") dtype = at::kBFloat16;
  else if (options.dtype == "float16") dtype = at::kHalf;
  else if (!options.dtype.empty())
    throw ConfigError("dtype \"" + options.dtype + "\" is not supported, expected float32, bfloat16 or float16");
  return at::TensorOptions().device(device).dtype(dtype);
}

// Copies checkpoint tensors into parameters, remembering which names were used.
class WeightLoader {
 public:
  WeightLoader(const SafetensorsSet& set, std::string source, std::string model_type)
      : set_(set), source_(std::move(source)), model_type_(std::move(model_type)) {}

  // Copies tensor `name` (shape checked against `expected`) into `target`.
  void copy(const std::string& name, at::Tensor target, at::IntArrayRef expected) {
    if (!set_.contains(name))
      throw CheckpointError(source_ + ": missing tensor " + name + " (expected shape " + shape_str(expected) +
                            " for " + model_type_ + ")");
    const TensorView view = set_.view(name);
    if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16)
      throw CheckpointError(source_ + ": tensor " + name + " has dtype " + std::string(dtype_name(view.dtype)) +
                            ", expected F32, F16 or BF16");
    if (!at::IntArrayRef(view.shape).equals(expected))
      throw CheckpointError(source_ + ": tensor " + name + " has shape " + shape_str(view.shape) + ", expected " +
                            shape_str(expected) + " for " + model_type_);
    copy_into(view, target);
    used_.insert(name);
  }

  bool contains(const std::string& name) const { return set_.contains(name); }
  void mark_used(const std::string& name) { used_.insert(name); }

  // Every checkpoint tensor no parameter took, except buffers transformers also
  // ignores (rotary inv_freq).
  void check_all_used() const {
    std::vector<std::string> unexpected;
    for (const auto& name : set_.names()) {
      if (used_.count(name) || name.find("rotary_emb.inv_freq") != std::string::npos) continue;
      unexpected.push_back(name);
    }
    if (unexpected.empty()) return;
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 10; ++i) list += (i ? ", " : "") + unexpected[i];
    if (unexpected.size() > 10) list += ", ... (" + std::to_string(unexpected.size() - 10) + " more)";
    throw CheckpointError(source_ + ": " + std::to_string(unexpected.size()) + " unexpected tensor(s) not used by " +
                          model_type_ + ": " + list);
  }

 private:
  const SafetensorsSet& set_;
  std::string source_;
  std::string model_type_;
  std::set<std::string> used_;
};

// A fused expert parameter: from the fused tensor if present, else stacked from
// the Hub's per-expert tensors.
void load_expert_bank(WeightLoader& loader, const DecoderLMImpl& lm, int64_t layer) {
  const auto& c = lm.config();
  const auto& bank = lm.model->layer_list[static_cast<size_t>(layer)]->moe->experts;
  const bool fused = loader.contains(fused_gate_up_name(layer)) || loader.contains(fused_down_name(layer));
  if (fused) {
    loader.copy(fused_gate_up_name(layer), bank->gate_up_proj, bank->gate_up_proj.sizes());
    loader.copy(fused_down_name(layer), bank->down_proj, bank->down_proj.sizes());
    return;
  }
  for (const ExpertSlice& s :
       expert_slices(lm.spec().experts, layer, c.num_experts, c.expert_intermediate_size(), c.hidden_size)) {
    const at::Tensor& param = s.fused == fused_down_name(layer) ? bank->down_proj : bank->gate_up_proj;
    auto target = param[s.expert].narrow(0, s.row_begin, s.rows);  // [rows, cols] view into the bank
    loader.copy(s.hub_key, target, target.sizes());
  }
}

// CPU inference allocates and frees the same activation sizes at every layer and
// step. glibc serves blocks above its mmap threshold with fresh mmap'd pages (a
// page fault per 4 KiB on first touch) and hands freed heap tops back to the OS;
// raising both thresholds once keeps such blocks in the heap for reuse. Measured
// on the deep MoE bench (bench/make_deep_moe.py): ~29k page faults per
// prefill + 16 decode steps before, ~1.2k after. Process-wide, set on first load.
void reuse_freed_cpu_memory() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
    mallopt(M_TRIM_THRESHOLD, 1 << 30);   // keep up to 1 GiB of freed heap
  });
#endif
}

// config.json says how large the model is, the weights say how large it really is: compared
// before one parameter is allocated, so that a config.json claiming far more (a huge
// vocabulary, hidden size or expert count) is a CheckpointError, not an abort in the
// allocator; and on CPU the model must fit the machine's memory.
void check_config_fits_weights(const ModelConfig& config, const SafetensorsSet& set,
                               const std::filesystem::path& model_dir, const at::TensorOptions& topts) {
  int64_t stored = 0;
  for (const auto& name : set.names()) stored += set.view(name).numel();
  const int64_t expected = count_parameters(config).total;
  // Some checkpoints carry a little more (a tied lm_head, buffers), never much less.
  if (expected > stored + stored / 20 + 4096) {
    throw CheckpointError(model_dir.string() + ": config.json describes " + std::to_string(expected) +
                          " parameters, but the weights hold " + std::to_string(stored) +
                          "; expected a config.json that matches its model.safetensors");
  }
  if (set.contains("model.embed_tokens.weight")) {
    const auto shape = set.view("model.embed_tokens.weight").shape;
    if (shape != std::vector<int64_t>{config.vocab_size, config.hidden_size}) {
      throw CheckpointError(model_dir.string() + ": model.embed_tokens.weight has shape " + shape_str(shape) +
                            ", but config.json's vocab_size × hidden_size is [" + std::to_string(config.vocab_size) +
                            ", " + std::to_string(config.hidden_size) + "]");
    }
  }
  if (topts.device().is_cpu()) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    const double need =
        static_cast<double>(expected) * static_cast<double>(c10::elementSize(topts.dtype().toScalarType()));
    const double have = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
    if (have > 0 && need > have) {
      char text[160];
      std::snprintf(text, sizeof text, "%.1f GB of parameters in %s, more than this machine's %.1f GB of memory",
                    need / 1e9, c10::toString(topts.dtype().toScalarType()), have / 1e9);
      throw CheckpointError(model_dir.string() + ": " + text);
    }
  }
}

}  // namespace

const ArchSpec& arch_spec(const std::string& model_type) {
  for (const ArchSpec* spec : kArchitectures)
    if (spec->model_type == model_type) return *spec;
  std::string list;
  for (const ArchSpec* spec : kArchitectures) list += (list.empty() ? "" : ", ") + spec->model_type;
  throw CheckpointError("model_type \"" + model_type + "\" is not supported (supported: " + list + ")");
}

CausalLM create_model(const ModelConfig& config, const at::TensorOptions& options) {
  return std::make_shared<DecoderLMImpl>(config, arch_spec(config.model_type), options);
}

CausalLM create_model(const ModelConfig& config) { return create_model(config, at::TensorOptions().dtype(at::kFloat)); }

CausalLM load_model(const std::filesystem::path& model_dir, const LoadOptions& options) {
  const ModelConfig config = load_config(model_dir);
  const ArchSpec& spec = arch_spec(config.model_type);
  const auto topts = tensor_options(options);
  const SafetensorsSet set = SafetensorsSet::open_dir(model_dir);
  check_config_fits_weights(config, set, model_dir, topts);
  if (topts.device().is_cpu()) reuse_freed_cpu_memory();
  auto lm = std::make_shared<DecoderLMImpl>(config, spec, topts);
  WeightLoader loader(set, model_dir.string(), config.model_type);

  torch::NoGradGuard no_grad;
  static const std::regex kExpertParam(R"(^model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)$)");
  static const std::regex kRouterParam(R"(^model\.layers\.(\d+)\.mlp\.gate\.weight$)");
  std::smatch m;
  for (const auto& item : lm->named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    if (std::regex_match(name, m, kExpertParam)) {
      if (m[2] == "gate_up_proj") load_expert_bank(loader, *lm, std::stoll(m[1]));
      continue;
    }
    if (std::regex_match(name, m, kRouterParam) && !set.contains(name)) {
      const std::string hub = hub_router_name(spec.experts, std::stoll(m[1]));  // mixtral: block_sparse_moe.gate
      loader.copy(set.contains(hub) ? hub : name, item.value(), item.value().sizes());
      continue;
    }
    loader.copy(name, item.value(), item.value().sizes());
  }
  // A tied checkpoint may still carry lm_head.weight; transformers ties over it.
  if (config.tie_word_embeddings && set.contains("lm_head.weight")) loader.mark_used("lm_head.weight");
  loader.check_all_used();
  return lm;
}

}  // namespace character::model
