#include "model/arch/kv_cache.h"

#include <torch/torch.h>

#include <algorithm>

namespace character::model {
namespace {

// Storage grows by doubling (at least this many positions), so a decode step
// writes into preallocated memory instead of concatenating the whole past.
constexpr int64_t kMinCapacity = 64;

// [B, Hkv, capacity, Dh] with the first `length` positions of `old` copied over.
at::Tensor grow(const at::Tensor& old, const at::Tensor& like, int64_t length, int64_t capacity) {
  auto sizes = like.sizes().vec();
  sizes[2] = capacity;
  auto storage = torch::empty(sizes, like.options());
  if (length > 0) storage.narrow(2, 0, length).copy_(old.narrow(2, 0, length));
  return storage;
}

}  // namespace

KVCache::KVCache(int64_t num_layers) : layers_(static_cast<std::size_t>(num_layers)) {}

std::pair<at::Tensor, at::Tensor> KVCache::append(int64_t layer, const at::Tensor& keys, const at::Tensor& values) {
  TORCH_CHECK(layer >= 0 && layer < num_layers(), "KVCache: layer ", layer, " out of range");
  Layer& l = layers_[static_cast<std::size_t>(layer)];
  const int64_t steps = keys.size(2);
  const int64_t needed = l.length + steps;
  const int64_t capacity = l.keys.defined() ? l.keys.size(2) : 0;
  if (needed > capacity) {
    const int64_t new_capacity = std::max({needed, 2 * capacity, kMinCapacity});
    l.keys = grow(l.keys, keys, l.length, new_capacity);
    l.values = grow(l.values, values, l.length, new_capacity);
  }
  TORCH_CHECK(l.keys.size(0) == keys.size(0), "KVCache: batch ", keys.size(0), " != cached batch ", l.keys.size(0));
  l.keys.narrow(2, l.length, steps).copy_(keys);
  l.values.narrow(2, l.length, steps).copy_(values);
  l.length = needed;
  // [B, Hkv, P+T, Dh] views into the storage
  return {l.keys.narrow(2, 0, needed), l.values.narrow(2, 0, needed)};
}

int64_t KVCache::length() const { return layers_.empty() ? 0 : layers_.front().length; }

void KVCache::select_rows(const at::Tensor& rows) {
  for (Layer& l : layers_) {
    if (!l.keys.defined()) continue;
    auto index = rows.to(l.keys.device());
    l.keys = l.keys.index_select(0, index);
    l.values = l.values.index_select(0, index);
  }
}

void KVCache::clear() {
  for (Layer& l : layers_) l = Layer{};
}

}  // namespace character::model
