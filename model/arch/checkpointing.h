// Per-layer activation checkpointing for training, switched on per thread like
// AdaptersDisabled: while a LayerCheckpointing is alive, DecoderLMImpl::forward
// (with grad enabled and no KV cache) keeps only each decoder layer's input and
// runs the layer again in backward (torch.utils.checkpoint, reentrant flavour).
// Parameter gradients are accumulated into .grad during that recomputation, so
// train with Tensor::backward(), not torch::autograd::grad.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

namespace character::model {

class DecoderLayerImpl;
struct RotaryTables;
struct AttentionMask;
struct LayerRouting;

bool layer_checkpointing_enabled();

// RAII: activation checkpointing on for this thread while alive. Nests.
class LayerCheckpointing {
 public:
  LayerCheckpointing();
  ~LayerCheckpointing();
  LayerCheckpointing(const LayerCheckpointing&) = delete;
  LayerCheckpointing& operator=(const LayerCheckpointing&) = delete;

 private:
  bool previous_;
};

// in: h [B, T, D]; out: [B, T, D], as layer->forward(h, rope, mask, nullptr, routing),
// but without the layer's activations kept for backward. routing->router_logits
// stays differentiable (the aux losses reach the router through the recomputation).
at::Tensor checkpointed_layer(const std::shared_ptr<DecoderLayerImpl>& layer, const at::Tensor& h,
                              const RotaryTables& rope, const AttentionMask& mask, LayerRouting* routing);

}  // namespace character::model
