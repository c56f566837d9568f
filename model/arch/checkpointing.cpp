#include "model/arch/checkpointing.h"

#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include "model/arch/adapter_hooks.h"
#include "model/arch/decoder.h"

namespace character::model {

namespace {

thread_local bool checkpointing_on = false;

// What the recomputation needs besides the layer input, kept alive in the
// autograd context (a capsule holds any CustomClassHolder).
struct LayerInputs : torch::CustomClassHolder {
  std::shared_ptr<DecoderLayerImpl> layer;
  RotaryTables rope;
  AttentionMask mask;
  bool capture_router = false;
  // Thread-local modes of the forward, restored in backward, which may run on
  // the autograd engine's device thread (as torch.utils.checkpoint does).
  bool adapters_on = true;
  bool autocast_cuda = false;
  at::ScalarType autocast_dtype = at::kBFloat16;
};

class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  // out: {h_out [B, T, D]} or {h_out, router_logits [N, E]} when routing is captured
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h,
                                                c10::intrusive_ptr<LayerInputs> inputs, LayerRouting* routing) {
    at::Tensor out;
    {
      at::NoGradGuard no_grad;
      out = inputs->layer->forward(h, inputs->rope, inputs->mask, /*cache=*/nullptr, routing);
    }
    inputs->capture_router = routing && routing->router_logits.defined();
    ctx->save_for_backward({h});
    ctx->saved_data["inputs"] = c10::IValue::make_capsule(inputs);
    if (inputs->capture_router) return {out, routing->router_logits};
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto h = ctx->get_saved_variables()[0];
    auto inputs = c10::static_intrusive_pointer_cast<LayerInputs>(ctx->saved_data["inputs"].toCapsule());
    auto x = h.detach().requires_grad_(h.requires_grad());
    {
      at::AutoGradMode grad_on(true);
      std::optional<AdaptersDisabled> adapters_off;
      if (!inputs->adapters_on) adapters_off.emplace();
      const bool autocast_was = at::autocast::is_autocast_enabled(at::kCUDA);
      const auto dtype_was = at::autocast::get_autocast_dtype(at::kCUDA);
      at::autocast::set_autocast_enabled(at::kCUDA, inputs->autocast_cuda);
      at::autocast::set_autocast_dtype(at::kCUDA, inputs->autocast_dtype);
      LayerRouting routing;
      auto out = inputs->layer->forward(x, inputs->rope, inputs->mask, /*cache=*/nullptr,
                                        inputs->capture_router ? &routing : nullptr);
      at::autocast::set_autocast_enabled(at::kCUDA, autocast_was);
      at::autocast::set_autocast_dtype(at::kCUDA, dtype_was);
      std::vector<at::Tensor> outputs{out}, grad_outputs{grads[0]};
      if (inputs->capture_router && grads.size() > 1 && grads[1].defined()) {
        outputs.push_back(routing.router_logits);
        grad_outputs.push_back(grads[1]);
      }
      torch::autograd::backward(outputs, grad_outputs);
    }
    return {x.requires_grad() ? x.grad() : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool layer_checkpointing_enabled() { return checkpointing_on; }

LayerCheckpointing::LayerCheckpointing() : previous_(checkpointing_on) { checkpointing_on = true; }
LayerCheckpointing::~LayerCheckpointing() { checkpointing_on = previous_; }

at::Tensor checkpointed_layer(const std::shared_ptr<DecoderLayerImpl>& layer, const at::Tensor& h,
                              const RotaryTables& rope, const AttentionMask& mask, LayerRouting* routing) {
  auto inputs = c10::make_intrusive<LayerInputs>();
  inputs->layer = layer;
  inputs->rope = rope;
  inputs->mask = mask;
  inputs->adapters_on = adapters_enabled();
  inputs->autocast_cuda = at::autocast::is_autocast_enabled(at::kCUDA);
  inputs->autocast_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
  // The recomputation in backward only runs when the input needs a gradient;
  // the first layer's input (frozen embeddings) would not, so it is made a leaf that does.
  const auto input = h.requires_grad() ? h : h.detach().requires_grad_(true);
  auto outs = CheckpointedLayer::apply(input, inputs, routing);
  if (outs.size() > 1) routing->router_logits = outs[1];
  return outs[0];
}

}  // namespace character::model
