#include "lora/adapters.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>

#include "base/error.h"
#include "lora/deltas.h"
#include "model/arch/decoder.h"

namespace character::lora {

namespace {

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

// Creates the adapter tensors of one model in a fixed order from one seeded
// generator, so the same config and seed give the same A on every device.
class Builder {
 public:
  Builder(uint64_t seed, std::vector<NamedTensor>* named, std::vector<bool>* is_router)
      : named_(named), is_router_(is_router), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  // PEFT reset_lora_parameters: kaiming_uniform_(A, a=√5) on [r, in], i.e.
  // U(-1/√in, 1/√in) over the last dimension `in`, whatever the leading ones.
  at::Tensor random_a(const std::string& name, std::vector<int64_t> shape, const at::Device& device,
                      bool router = false) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(shape.back()));
    auto t = torch::empty(shape, torch::kFloat).uniform_(-bound, bound, generator_);
    return add(name, t.to(device), router);
  }
  at::Tensor zero_b(const std::string& name, std::vector<int64_t> shape, const at::Device& device,
                    bool router = false) {
    return add(name, torch::zeros(shape, torch::TensorOptions().dtype(torch::kFloat).device(device)), router);
  }
  at::Tensor add(const std::string& name, at::Tensor t, bool router) {
    t = t.detach().requires_grad_(true);
    named_->push_back({name, t});
    is_router_->push_back(router);
    return t;
  }

 private:
  std::vector<NamedTensor>* named_;
  std::vector<bool>* is_router_;
  at::Generator generator_;
};

// The first module of `lm` that already holds an adapter hook, or "" when none
// does. Checked before anything is attached, so a refused attach changes nothing.
std::string first_adapted(model::DecoderLMImpl& lm) {
  for (size_t l = 0; l < lm.model->layer_list.size(); ++l) {
    auto& layer = lm.model->layer_list[l];
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    auto& attn = layer->self_attn;
    const std::pair<const char*, model::Linear*> linears[] = {
        {"self_attn.q_proj", &attn->q_proj}, {"self_attn.k_proj", &attn->k_proj},
        {"self_attn.v_proj", &attn->v_proj}, {"self_attn.o_proj", &attn->o_proj}};
    for (const auto& [name, linear] : linears) {
      if ((*linear)->delta) return prefix + name;
    }
    if (layer->mlp) {
      if (layer->mlp->gate_proj->delta) return prefix + "mlp.gate_proj";
      if (layer->mlp->up_proj->delta) return prefix + "mlp.up_proj";
      if (layer->mlp->down_proj->delta) return prefix + "mlp.down_proj";
    }
    if (layer->moe && layer->moe->experts->delta) return prefix + "mlp.experts";
    if (layer->moe && layer->moe->gate->delta) return prefix + "mlp.gate";
  }
  if (lm.unembed_delta) return "lm_head";
  return "";
}

}  // namespace

std::shared_ptr<Adapters> attach_adapters(const model::CausalLM& causal_lm, const LoraConfig& config) {
  validate(config);
  auto lm = std::dynamic_pointer_cast<model::DecoderLMImpl>(causal_lm);
  TORCH_CHECK(lm, "attach_adapters: the model is not a DecoderLM");
  const auto& mc = lm->config();
  if (config.train_router != RouterTraining::kNone && mc.num_experts == 0) {
    throw ConfigError("--train-router " + to_string(config.train_router) + ": model_type " + mc.model_type +
                      " has no MoE router, expected none");
  }

  if (auto name = first_adapted(*lm); !name.empty()) {
    throw ConfigError("attach_adapters: " + name + " already has an adapter, expected a bare model");
  }

  auto adapters = std::shared_ptr<Adapters>(new Adapters());
  adapters->config_ = config;
  adapters->model_ = causal_lm;
  for (auto& p : lm->parameters()) p.set_requires_grad(false);  // the base is frozen

  Builder build(config.seed, &adapters->named_, &adapters->is_router_);
  const int64_t r = config.rank;
  const double scale = config.scale();
  auto& targets = adapters->targets_;

  // A dense Linear: A [r, in], B [out, r].
  auto adapt_linear = [&](model::Linear& linear, const std::string& name) {
    const auto& w = linear->weight;  // [out, in]
    auto delta = std::make_shared<LoraLinear>(build.random_a(name + ".lora_A", {r, w.size(1)}, w.device()),
                                              build.zero_b(name + ".lora_B", {w.size(0), r}, w.device()), scale);
    linear->delta = delta;
    model::Linear target = linear;
    targets.push_back({[target, delta] { target->weight.add_(delta->delta_weight().to(target->weight.dtype())); },
                       [target]() mutable { target->delta.reset(); }});
  };

  for (size_t l = 0; l < lm->model->layer_list.size(); ++l) {
    auto& layer = lm->model->layer_list[l];
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    if (config.train_attn) {
      auto& attn = layer->self_attn;
      adapt_linear(attn->q_proj, prefix + "self_attn.q_proj");
      adapt_linear(attn->k_proj, prefix + "self_attn.k_proj");
      adapt_linear(attn->v_proj, prefix + "self_attn.v_proj");
      adapt_linear(attn->o_proj, prefix + "self_attn.o_proj");
    }
    if (config.train_mlp && layer->mlp) {
      adapt_linear(layer->mlp->gate_proj, prefix + "mlp.gate_proj");
      adapt_linear(layer->mlp->up_proj, prefix + "mlp.up_proj");
      adapt_linear(layer->mlp->down_proj, prefix + "mlp.down_proj");
    }
    if (config.train_mlp && layer->moe) {
      model::ExpertBank bank = layer->moe->experts;
      const std::string name = prefix + "mlp.experts";
      const int64_t e = bank->num_experts, f = bank->intermediate_size, d = bank->down_proj.size(1);
      const auto dev = bank->down_proj.device();
      auto delta = std::make_shared<ExpertLoraDelta>();
      delta->scale = scale;
      if (config.expert_lora == ExpertLora::kSharedOuter) {
        // Tinker: w1 (gate) and w3 (up): A [1, r, D] shared, B [E, F, r];
        // w2 (down): A [E, r, F], B [1, D, r] shared.
        for (const char* proj : {"gate_proj", "up_proj"}) {
          auto a = build.random_a(name + "." + proj + ".lora_A", {1, r, d}, dev);
          auto b = build.zero_b(name + "." + proj + ".lora_B", {e, f, r}, dev);
          delta->gate_up_parts.push_back({a, b});
        }
        auto a = build.random_a(name + ".down_proj.lora_A", {e, r, f}, dev);
        delta->down_factors = {a, build.zero_b(name + ".down_proj.lora_B", {1, d, r}, dev)};
      } else {
        // PEFT target_parameters: gate_up_proj and down_proj, A and B per expert.
        auto a = build.random_a(name + ".gate_up_proj.lora_A", {e, r, d}, dev);
        delta->gate_up_parts.push_back({a, build.zero_b(name + ".gate_up_proj.lora_B", {e, 2 * f, r}, dev)});
        auto a2 = build.random_a(name + ".down_proj.lora_A", {e, r, f}, dev);
        delta->down_factors = {a2, build.zero_b(name + ".down_proj.lora_B", {e, d, r}, dev)};
      }
      bank->delta = delta;
      targets.push_back({[bank, delta] {
                           bank->gate_up_proj.add_(delta->delta_gate_up(bank->num_experts).to(bank->gate_up_proj.dtype()));
                           bank->down_proj.add_(delta->delta_down(bank->num_experts).to(bank->down_proj.dtype()));
                         },
                         [bank]() mutable { bank->delta.reset(); }});
    }
    if (layer->moe && config.train_router != RouterTraining::kNone) {
      model::TopKRouter router = layer->moe->gate;
      const std::string name = prefix + "mlp.gate";
      const auto& w = router->weight;  // [E, D]
      if (config.train_router == RouterTraining::kLora) {
        auto delta = std::make_shared<RouterLora>();
        delta->a = build.random_a(name + ".lora_A", {r, w.size(1)}, w.device(), /*router=*/true);
        delta->b = build.zero_b(name + ".lora_B", {w.size(0), r}, w.device(), /*router=*/true);
        delta->scale = scale;
        router->delta = delta;
        targets.push_back({[router, delta] { router->weight.add_(delta->delta_weight().to(router->weight.dtype())); },
                           [router]() mutable { router->delta.reset(); }});
      } else {
        auto delta = std::make_shared<RouterFull>();
        delta->weight = build.add(name + ".weight", w.detach().to(torch::kFloat).clone(), /*router=*/true);
        router->delta = delta;
        targets.push_back({[router, delta] { router->weight.copy_(delta->weight); },
                           [router]() mutable { router->delta.reset(); }});
      }
    }
  }

  if (config.train_unembed) {
    const auto& w = lm->output_embedding();  // [V, D]
    auto delta = std::make_shared<LoraLinear>(build.random_a("lm_head.lora_A", {r, w.size(1)}, w.device()),
                                              build.zero_b("lm_head.lora_B", {w.size(0), r}, w.device()), scale);
    lm->unembed_delta = delta;
    if (!lm->lm_head) {
      adapters->merge_blocker_ =
          "merge_into_base: lm_head LoRA on a model with tie_word_embeddings, expected an untied lm_head (merging "
          "would change the input embeddings too)";
    }
    std::weak_ptr<model::DecoderLMImpl> weak = lm;
    targets.push_back({[weak, delta] {
                         auto m = weak.lock();
                         m->lm_head->weight.add_(delta->delta_weight().to(m->lm_head->weight.dtype()));
                       },
                       [weak] {
                         if (auto m = weak.lock()) m->unembed_delta.reset();
                       }});
  }
  return adapters;
}

std::vector<at::Tensor> Adapters::parameters() const {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < named_.size(); ++i) {
    if (!is_router_[i]) out.push_back(named_[i].tensor);
  }
  return out;
}

std::vector<at::Tensor> Adapters::router_parameters() const {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < named_.size(); ++i) {
    if (is_router_[i]) out.push_back(named_[i].tensor);
  }
  return out;
}

const at::Tensor& Adapters::get(const std::string& name) const {
  for (const auto& n : named_) {
    if (n.name == name) return n.tensor;
  }
  throw CheckpointError("adapters: no tensor " + name + " (targets: " + std::to_string(named_.size()) +
                        " tensors, see lora/adapters.h for the names)");
}

void Adapters::load(const std::map<std::string, at::Tensor>& values, const std::string& source) {
  for (const auto& [name, value] : values) {
    bool known = false;
    for (const auto& n : named_) known = known || n.name == name;
    if (!known) throw CheckpointError(source + ": unexpected adapter tensor " + name + ", not among this config's targets");
  }
  torch::NoGradGuard no_grad;
  for (auto& n : named_) {
    auto it = values.find(n.name);
    if (it == values.end()) throw CheckpointError(source + ": adapter tensor " + n.name + " missing");
    if (it->second.sizes() != n.tensor.sizes()) {
      throw CheckpointError(source + ": adapter tensor " + n.name + " has shape " + shape_string(it->second.sizes()) +
                            ", expected " + shape_string(n.tensor.sizes()));
    }
    n.tensor.copy_(it->second);
  }
}

void Adapters::merge_into_base() {
  TORCH_CHECK(attached_, "merge_into_base: adapters already detached");
  if (!merge_blocker_.empty()) throw ConfigError(merge_blocker_);
  {
    torch::NoGradGuard no_grad;
    for (auto& t : targets_) t.merge();
  }
  detach();
}

void Adapters::detach() {
  for (auto& t : targets_) t.detach();
  attached_ = false;
}

}  // namespace character::lora
