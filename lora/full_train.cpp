#include "lora/full_train.h"

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "lora/trainable.h"
#include "model/arch/tensor_io.h"
#include "model/io/safetensors.h"

namespace character::lora {

namespace fs = std::filesystem;

namespace {

// The weights file of a full-parameter checkpoint: every parameter under its
// registered name (fused expert banks), in the model's dtype, so a resume
// restores the exact values.
constexpr const char* kWeightsFile = "model.safetensors";

// Every parameter of the model as the trained set. Switches requires_grad on for
// all of them while it lives and puts the previous flags back (and drops the
// gradients) when it goes, also when training stops with an error.
class FullParameters : public Trainable {
 public:
  FullParameters(const model::CausalLM& model, const FullTrainOutput& output) : model_(model), output_(output) {
    for (const auto& item : model_->named_parameters(/*recurse=*/true)) {
      named_.push_back({item.key(), item.value()});
      was_trainable_.push_back(item.value().requires_grad());
      item.value().set_requires_grad(true);
      item.value().mutable_grad() = at::Tensor();
    }
    if (named_.empty()) throw ConfigError("full-parameter training: the model has no parameters");
  }
  ~FullParameters() override {
    for (size_t i = 0; i < named_.size(); ++i) {
      named_[i].second.mutable_grad() = at::Tensor();
      named_[i].second.set_requires_grad(was_trainable_[i]);
    }
  }
  FullParameters(const FullParameters&) = delete;
  FullParameters& operator=(const FullParameters&) = delete;

  std::vector<at::Tensor> parameters() const override {
    std::vector<at::Tensor> out;
    out.reserve(named_.size());
    for (const auto& [name, tensor] : named_) out.push_back(tensor);
    return out;
  }
  std::vector<at::Tensor> router_parameters() const override { return {}; }
  double router_lr_multiplier() const override { return 1.0; }

  void describe(nlohmann::json& config) const override {
    int64_t values = 0;
    for (const auto& [name, tensor] : named_) values += tensor.numel();
    config["full_parameters"] = {{"model_type", model_->config().model_type},
                                 {"tensors", static_cast<int64_t>(named_.size())},
                                 {"values", values},
                                 {"dtype", std::string(c10::toString(named_.front().second.scalar_type()))}};
  }

  std::string output_name() const override { return "model"; }
  void write_output(const fs::path& dir) const override {
    model::write_model_dir(*model_, output_.config, dir, output_.model_dir);
  }

  void save(const fs::path& checkpoint_dir) const override {
    model::TensorsToWrite tensors;
    for (const auto& [name, tensor] : named_) tensors.add(name, tensor);
    model::write_safetensors(checkpoint_dir / kWeightsFile, tensors.records(), {{"format", "pt"}});
  }

  void load(const fs::path& checkpoint_dir) override {
    const auto path = checkpoint_dir / kWeightsFile;
    if (!fs::exists(path)) {
      throw CheckpointError(checkpoint_dir.string() + ": " + kWeightsFile +
                            " is missing, expected the weights of a full-parameter run");
    }
    const auto file = model::SafetensorsFile::open(path);
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : named_) {
      if (!file->contains(name)) throw CheckpointError(path.string() + ": no tensor " + name + ", expected every parameter");
      const auto view = file->view(name);
      if (!tensor.sizes().equals(view.shape)) {
        throw CheckpointError(path.string() + ": " + name + " has shape " + c10::str(c10::IntArrayRef(view.shape)) +
                              ", expected " + c10::str(tensor.sizes()));
      }
      model::copy_into(view, tensor);
    }
    if (file->names().size() != named_.size()) {
      throw CheckpointError(path.string() + ": " + std::to_string(file->names().size()) + " tensors, expected the " +
                            std::to_string(named_.size()) + " parameters of the model");
    }
  }

 private:
  model::CausalLM model_;
  const FullTrainOutput& output_;
  std::vector<std::pair<std::string, at::Tensor>> named_;
  std::vector<bool> was_trainable_;
};

}  // namespace

TrainResult train_full_sft(const model::CausalLM& model, const SftDataset& train, const SftDataset& held_out,
                           const TrainOptions& options, const FullTrainOutput& output, StepHook* hook) {
  if (options.kind != TrainKind::kSft) {
    throw ConfigError("full-parameter training: kind " + to_string(options.kind) +
                      " is not supported, expected sft (DPO trains adapters against the frozen base)");
  }
  if (output.config.model_type != model->config().model_type) {
    throw ConfigError("full-parameter training: the output config describes model_type " + output.config.model_type +
                      ", the model is " + model->config().model_type);
  }
  FullParameters trainable(model, output);
  return train_sft_over(trainable, model, train, held_out, options, hook);
}

}  // namespace character::lora
