#include "model/arch/tensor_io.h"

#include <torch/torch.h>

#include "base/error.h"

namespace character::model {

at::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  TORCH_CHECK(false, "unhandled safetensors dtype");
}

DType to_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kLong: return DType::I64;
    case at::kInt: return DType::I32;
    case at::kByte: return DType::U8;
    case at::kBool: return DType::BOOL;
    default: throw FormatError(std::string("tensor dtype ") + c10::toString(type) + " has no safetensors name");
  }
}

namespace {
// A tensor over the mapped bytes: never written (the mapping is read-only) and
// never kept (it does not own them).
at::Tensor borrow(const TensorView& view) {
  return torch::from_blob(const_cast<std::byte*>(view.data), view.shape,
                          torch::TensorOptions().dtype(to_scalar_type(view.dtype)));
}
}  // namespace

at::Tensor to_tensor(const TensorView& view, const at::TensorOptions& options) {
  // Always a copy: .to() copies when dtype/device change, clone() otherwise.
  auto source = borrow(view);
  const auto dtype = options.has_dtype() ? options.dtype().toScalarType() : source.scalar_type();
  const auto device = options.has_device() ? options.device() : torch::Device(torch::kCPU);
  if (dtype == source.scalar_type() && device.is_cpu()) return source.clone();
  return source.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
}

void copy_into(const TensorView& view, at::Tensor& target) {
  TORCH_CHECK(target.sizes().equals(view.shape), "copy_into: shape mismatch for ", view.name);
  target.copy_(borrow(view));
}

void TensorsToWrite::add(const std::string& name, const at::Tensor& tensor) {
  auto cpu = tensor.detach().to(torch::kCPU).contiguous();
  std::vector<int64_t> shape(cpu.sizes().begin(), cpu.sizes().end());
  records_.push_back(TensorToWrite{name, to_dtype(cpu.scalar_type()), std::move(shape), cpu.data_ptr(),
                                   static_cast<std::size_t>(cpu.nbytes())});
  keep_.push_back(std::move(cpu));
}

}  // namespace character::model
