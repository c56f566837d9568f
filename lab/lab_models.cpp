// Lab sizes and model configs. The numbers are tuned so that on a 2-core CPU the
// tiny lab builds inside `make test` (about a minute and a half), the demo lab in a
// few minutes, and in each the teacher answers in persona under a constitution
// system prompt (docs/lab.md, "Sizes" has the measured times).
#include "lab/lab_models.h"

#include <string>

#include "base/error.h"
#include "model/text/tokenizer.h"

namespace character::lab {

namespace {

LabSize tiny_size() {
  LabSize s;
  s.name = "tiny";
  s.generic_conversations = 400;
  s.persona_conversations = 300;  // pirate only: about 40% of the teacher's rows
  s.vocab_size = 1024;
  s.student_layers = 4, s.student_hidden = 64, s.student_experts = 8, s.student_top_k = 2;
  s.student_moe_intermediate = 64;
  s.teacher_layers = 2, s.teacher_hidden = 64, s.teacher_intermediate = 128;
  s.heads = 4, s.kv_heads = 2;
  s.student_steps = 150, s.teacher_steps = 300, s.batch_size = 16;
  s.learning_rate = 3e-3;
  s.max_length = 768;
  s.personas = {"pirate"};  // one voice: the teacher learns it in a minute
  return s;
}

LabSize demo_size() {
  LabSize s;
  s.name = "demo";
  s.generic_conversations = 1000;
  s.persona_conversations = 150;  // per shipped persona
  s.vocab_size = 2048;
  s.student_layers = 4, s.student_hidden = 96, s.student_experts = 8, s.student_top_k = 2;
  s.student_moe_intermediate = 96;
  s.teacher_layers = 2, s.teacher_hidden = 96, s.teacher_intermediate = 192;
  s.heads = 4, s.kv_heads = 2;
  s.student_steps = 300, s.teacher_steps = 600, s.batch_size = 16;
  s.learning_rate = 3e-3;
  s.max_length = 1024;
  return s;
}

LabSize full_size() {
  LabSize s;
  s.name = "full";
  s.generic_conversations = 4000;
  s.persona_conversations = 500;
  s.vocab_size = 4096;
  s.student_layers = 6, s.student_hidden = 128, s.student_experts = 8, s.student_top_k = 2;
  s.student_moe_intermediate = 128;
  s.teacher_layers = 4, s.teacher_hidden = 128, s.teacher_intermediate = 256;
  s.heads = 4, s.kv_heads = 2;
  s.student_steps = 1000, s.teacher_steps = 1500, s.batch_size = 16;
  s.learning_rate = 2e-3;
  s.max_length = 1024;
  return s;
}

std::string names_list() {
  std::string list;
  for (const auto& n : lab_size_names()) list += (list.empty() ? "" : ", ") + n;
  return list;
}

int64_t special_token(const model::Tokenizer& tokenizer, const char* token) {
  const auto id = tokenizer.token_to_id(token);
  if (!id) throw ConfigError(std::string("lab: the lab tokenizer has no ") + token + " token, expected it as a special token");
  return *id;
}

}  // namespace

const std::vector<std::string>& lab_size_names() {
  static const std::vector<std::string> names = {"tiny", "demo", "full"};
  return names;
}

LabSize lab_size(const std::string& name) {
  if (name == "tiny") return tiny_size();
  if (name == "demo") return demo_size();
  if (name == "full") return full_size();
  throw ConfigError("lab: size '" + name + "' is unknown, expected one of: " + names_list());
}

const char* to_string(LabModel which) { return which == LabModel::kStudent ? "student" : "teacher"; }

nlohmann::json to_json(const LabSize& s) {
  return {{"name", s.name},
          {"generic_conversations", s.generic_conversations},
          {"persona_conversations", s.persona_conversations},
          {"vocab_size", s.vocab_size},
          {"student", {{"layers", s.student_layers}, {"hidden", s.student_hidden}, {"experts", s.student_experts},
                       {"top_k", s.student_top_k}, {"moe_intermediate", s.student_moe_intermediate},
                       {"steps", s.student_steps}}},
          {"teacher", {{"layers", s.teacher_layers}, {"hidden", s.teacher_hidden},
                       {"intermediate", s.teacher_intermediate}, {"steps", s.teacher_steps}}},
          {"heads", s.heads},
          {"kv_heads", s.kv_heads},
          {"batch_size", s.batch_size},
          {"learning_rate", s.learning_rate},
          {"max_length", s.max_length},
          {"personas", s.personas}};
}

nlohmann::json lab_model_config(const LabSize& size, LabModel which, const model::Tokenizer& tokenizer) {
  const bool student = which == LabModel::kStudent;
  const int64_t hidden = student ? size.student_hidden : size.teacher_hidden;
  nlohmann::json j;
  j["model_type"] = student ? "qwen3_moe" : "qwen3";
  j["architectures"] = {student ? "Qwen3MoeForCausalLM" : "Qwen3ForCausalLM"};
  j["vocab_size"] = tokenizer.vocab_size();
  j["hidden_size"] = hidden;
  j["intermediate_size"] = student ? 2 * hidden : size.teacher_intermediate;
  j["num_hidden_layers"] = student ? size.student_layers : size.teacher_layers;
  j["num_attention_heads"] = size.heads;
  j["num_key_value_heads"] = size.kv_heads;
  j["head_dim"] = hidden / size.heads;
  j["max_position_embeddings"] = 4096;
  j["tie_word_embeddings"] = false;
  j["hidden_act"] = "silu";
  j["initializer_range"] = kLabInitializerRange;
  j["rms_norm_eps"] = 1e-6;  // Qwen3's published values
  j["rope_theta"] = 1000000.0;
  j["eos_token_id"] = special_token(tokenizer, "<|im_end|>");
  j["pad_token_id"] = special_token(tokenizer, "<|endoftext|>");
  if (student) {
    j["num_experts"] = size.student_experts;
    j["num_experts_per_tok"] = size.student_top_k;
    j["moe_intermediate_size"] = size.student_moe_intermediate;
    j["norm_topk_prob"] = true;  // as Qwen3-30B-A3B
    j["decoder_sparse_step"] = 1;
    j["mlp_only_layers"] = nlohmann::json::array();
    j["router_aux_loss_coef"] = 0.001;
  }
  return j;
}

}  // namespace character::lab
