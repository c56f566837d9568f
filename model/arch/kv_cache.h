// Key/value cache for incremental decoding: per decoder layer, the keys and
// values of every token seen so far, so a decode step attends to the past
// without recomputing it. Shapes: [B, Hkv, P, Dh] per layer.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace character::model {

class KVCache {
 public:
  explicit KVCache(int64_t num_layers);

  // Appends this step's keys and values for `layer` and returns all of them.
  // in: keys, values [B, Hkv, T, Dh]; out: [B, Hkv, P+T, Dh]
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& keys, const at::Tensor& values);

  // P: tokens cached so far (layer 0's count; equal for all layers after a forward).
  int64_t length() const;
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }

  // Keeps only the batch rows listed in `rows` ([B'] int64), e.g. to drop finished
  // sequences during generation.
  void select_rows(const at::Tensor& rows);
  void clear();

 private:
  struct Layer {
    at::Tensor keys;    // [B, Hkv, capacity, Dh]
    at::Tensor values;  // [B, Hkv, capacity, Dh]
    int64_t length = 0;
  };
  std::vector<Layer> layers_;
};

}  // namespace character::model
