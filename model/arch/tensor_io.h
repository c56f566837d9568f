// Bridges model/io's torch-free safetensors views and libtorch tensors: a view
// becomes a tensor of the wanted dtype on the wanted device (one copy), and
// tensors become TensorToWrite records for write_safetensors.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <string>
#include <vector>

#include "model/io/safetensors.h"

namespace character::model {

at::ScalarType to_scalar_type(DType dtype);
// FormatError for scalar types safetensors has no name for (here: complex, quantized ...).
DType to_dtype(at::ScalarType type);

// Copies the bytes of `view` into a new tensor with `options` (dtype and device);
// without a dtype in `options` the file's dtype is kept.
at::Tensor to_tensor(const TensorView& view, const at::TensorOptions& options = {});

// Copies the bytes of `view` into `target` (same shape), converting dtype and
// moving to target's device in one step, without an intermediate tensor.
void copy_into(const TensorView& view, at::Tensor& target);

// Tensors to write, kept alive (contiguous, on CPU) for as long as the records are used.
class TensorsToWrite {
 public:
  void add(const std::string& name, const at::Tensor& tensor);
  const std::vector<TensorToWrite>& records() const { return records_; }

 private:
  std::vector<at::Tensor> keep_;
  std::vector<TensorToWrite> records_;
};

}  // namespace character::model
