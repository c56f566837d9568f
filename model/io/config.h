// config.json → a typed model config. One struct carries the fields of every
// supported architecture, named exactly as in Hugging Face's config classes;
// per-architecture parsing decides which are required and validates them.
// Supported model_type: llama, qwen3, qwen3_moe, mixtral, olmoe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace character::model {

// rope_scaling of type "llama3" (Llama 3.1+); other types are rejected by name.
struct RopeScaling {
  std::string rope_type;  // "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;  // llama | qwen3 | qwen3_moe | mixtral | olmoe
  std::vector<std::string> architectures;

  // Shared by every architecture.
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless given (qwen3: independent)
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::string hidden_act = "silu";
  std::string torch_dtype;  // as written ("bfloat16", "float32"); "dtype" in transformers 5
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_id;  // int or list in the file
  std::optional<int64_t> pad_token_id;

  // Mixture of experts (qwen3_moe, mixtral, olmoe). num_experts == 0 for dense models.
  int64_t num_experts = 0;           // mixtral: num_local_experts
  int64_t num_experts_per_tok = 0;   // top-k
  int64_t moe_intermediate_size = 0; // qwen3_moe; mixtral/olmoe use intermediate_size
  bool norm_topk_prob = false;       // renormalise top-k weights (mixtral: always true)
  int64_t decoder_sparse_step = 1;   // qwen3_moe: layer l is MoE iff (l+1) % step == 0
  std::vector<int64_t> mlp_only_layers;  // qwen3_moe: dense layers despite the step
  double router_aux_loss_coef = 0.0;
  double router_jitter_noise = 0.0;      // mixtral; training-time only
  bool output_router_logits = false;

  // Qk-norm: qwen3 / qwen3_moe normalise per head (RMSNorm over head_dim);
  // olmoe normalises over the full projection (RMSNorm over heads*head_dim).
  bool is_moe() const { return num_experts > 0; }
  // Whether decoder layer `layer` has an MoE block (false for dense models).
  bool is_moe_layer(int64_t layer) const;
  // Intermediate size of one routed expert.
  int64_t expert_intermediate_size() const;
};

// Parses config.json at `path` (a file or a model directory). Errors name the file
// and the field: "config.json: missing field num_experts_per_tok (required for qwen3_moe)".
ModelConfig load_config(const std::filesystem::path& path);
ModelConfig parse_config(const nlohmann::json& json, const std::string& source_name);
// The inverse, as transformers writes it (used by init-model and merged export).
nlohmann::json config_to_json(const ModelConfig& config);

// Architectures this build supports, for error messages and `--help`.
const std::vector<std::string>& supported_model_types();

}  // namespace character::model
