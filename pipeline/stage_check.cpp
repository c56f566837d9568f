// The check stage of `character pipeline`: everything that can fail before any
// money or GPU time is spent. The persona loads; the student directory's
// config.json, tokenizer and chat family load; the learning rate resolves; the
// teacher (and judge) answer GET /v1/models with the key of their environment
// variable; the disk holds what the run will write (an estimate from the scale
// and the student). Architecture validation: an MoE student whose routers stay
// frozen gets a warning citing the routing problem of seed report 000.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "base/error.h"
#include "lora/lora_config.h"
#include "model/io/config.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "personas/persona.h"
#include "pipeline/scale.h"
#include "pipeline/stage_support.h"
#include "remote/client.h"
#include "router_train/frozen_router.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// LoRA parameters of the adapter the run trains (lora/adapters.h's shapes,
// per layer): attention q, k, v, o; the dense MLP or the experts in the chosen
// layout; the router; the unembedding. An estimate for the disk check only.
double adapter_parameters(const model::ModelConfig& m, const lora::LoraConfig& lc) {
  const double r = static_cast<double>(lc.rank);
  const double d = static_cast<double>(m.hidden_size);
  const double q = static_cast<double>(m.num_attention_heads * m.head_dim);
  const double kv = static_cast<double>(m.num_key_value_heads * m.head_dim);
  const double e = static_cast<double>(m.num_experts);
  double per_layer = 0;
  if (lc.train_attn) per_layer += r * ((d + q) + 2 * (d + kv) + (q + d));
  if (lc.train_mlp) {
    if (m.is_moe()) {
      const double f = static_cast<double>(m.expert_intermediate_size());
      per_layer += lc.expert_lora == lora::ExpertLora::kSharedOuter ? r * (2 * (d + e * f) + (e * f + d))
                                                                    : e * r * (d + 2 * f + f + d);
    } else {
      per_layer += 3 * r * (d + static_cast<double>(m.intermediate_size));
    }
  }
  if (m.is_moe() && lc.train_router == lora::RouterTraining::kLora) per_layer += r * (d + e);
  if (m.is_moe() && lc.train_router == lora::RouterTraining::kFull) per_layer += e * d;
  double total = per_layer * static_cast<double>(m.num_hidden_layers);
  if (lc.train_unembed) total += r * (d + static_cast<double>(m.vocab_size));
  return total;
}

// Bytes of the model's weight files (*.safetensors).
double weight_bytes(const fs::path& model_dir) {
  double bytes = 0;
  for (const auto& entry : fs::directory_iterator(model_dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") bytes += static_cast<double>(entry.file_size());
  }
  return bytes;
}

// What the run writes: data (each answer in its ledger, its output file and
// the cache: 3 copies at ~4 bytes per token), per train stage the adapter and
// `keep` checkpoints of adapter + two AdamW moments (fp32), the merged DPO base
// in paper mode and the exports (a merged export is a full model in bf16).
double estimated_bytes(const RunConfig& c, const model::ModelConfig& m, const fs::path& student) {
  const Scale scale = resolve_scale(c.scale, c.counts);
  const double answer = 4.0 * static_cast<double>(c.max_tokens) + 512;
  const double reflection = 4.0 * static_cast<double>(c.introspection_max_tokens) + 512;
  const double data = 3 * (static_cast<double>(scale.dpo_pairs) * 2 * answer +
                           static_cast<double>(scale.reflections) * reflection +
                           static_cast<double>(scale.interactions) * scale.interaction_turns * reflection);
  const double adapter = 4 * adapter_parameters(m, c.training.lora);
  const double keep = 3;  // lora::TrainOptions::keep_checkpoints
  const double training = 2 * (adapter + keep * 3 * adapter);
  double models = 0;
  const double student_bytes = weight_bytes(student);
  if (c.training.paper_mode) models += student_bytes;
  for (const auto& format : c.exports) {
    models += format == "merged" ? student_bytes : adapter * 2;  // peft's expansion of shared factors, at most ~2×
  }
  return data + training + models;
}

// GET /v1/models of an endpoint: reachable, the key accepted, the model listed.
void check_endpoint(const std::string& role, const EndpointConfig& endpoint, StageResult& r) {
  remote::ClientConfig config;
  config.base_url = endpoint.url;
  config.model = endpoint.model;
  config.api_key_env = endpoint.api_key_env;
  config.timeout = std::chrono::milliseconds(static_cast<long>(std::min(endpoint.timeout_s, 30.0) * 1000));
  remote::Client client(config);  // ConfigError naming the unset key variable
  const std::vector<std::string> models = client.list_models();
  bool listed = false;
  for (const auto& id : models) listed = listed || id == endpoint.model;
  if (!listed) {
    std::string some;
    for (std::size_t i = 0; i < models.size() && i < 5; ++i) some += (i ? ", " : "") + models[i];
    r.warnings.push_back(role + " model " + endpoint.model + " is not among the " + std::to_string(models.size()) +
                         " models " + endpoint.url + "/models lists (" + some +
                         "); requests may fail if the name is wrong");
  }
  r.counts[role + "_models_listed"] = models.size();
}

std::string frozen_router_warning(const fs::path& student, const model::ModelConfig& m) {
  return "student " + student.string() + " is a mixture-of-experts model (" + m.model_type + ", " +
         std::to_string(m.num_experts) + " experts, top-" + std::to_string(m.num_experts_per_tok) +
         ") and training.lora.train_router is none (seed report 000, \"MoE Expert Routing and Character "
         "Inconsistency\", trained Qwen3-30B-A3B this way). " + router_train::kFrozenRouterRisk;
}

}  // namespace

StageResult run_check_stage(const StageContext& ctx) {
  const RunConfig& c = ctx.config;
  StageResult r;

  // Persona.
  const personas::Persona persona = personas::find_persona(c.persona);
  if (fs::is_regular_file(c.persona)) r.inputs.push_back(c.persona);
  r.counts["constitution_lines"] = persona.constitution.size();

  // Student: config, tokenizer, chat family, learning rate.
  const fs::path student = student_dir(c);
  const model::ModelConfig m = model::load_config(student);
  const auto tokenizer = model::load_tokenizer(student);
  const std::string family = model::detect_chat_family(student);
  model::make_chat_renderer(family);
  const double lr = base_learning_rate(c);
  r.counts["learning_rate"] = lr;
  r.counts["experts"] = m.num_experts;
  lora::validate(c.training.lora);
  if (!m.is_moe() && c.training.lora.train_router != lora::RouterTraining::kNone) {
    throw ConfigError("training.lora.train_router: " + lora::to_string(c.training.lora.train_router) + ", but the student " +
                      student.string() + " (model_type " + m.model_type +
                      ") is dense and has no router; expected none for this student");
  }
  if (m.is_moe() && c.training.lora.train_router == lora::RouterTraining::kNone) {
    r.warnings.push_back(frozen_router_warning(student, m));
  }
  bool tinker = false;
  for (const auto& format : c.exports) tinker = tinker || format == "tinker";
  if (tinker && c.training.lora.train_router != lora::RouterTraining::kNone && !c.allow_drop_router) {
    r.warnings.push_back("exports: tinker will be skipped: the routers train (train_router " +
                         lora::to_string(c.training.lora.train_router) +
                         ") and a Tinker archive cannot hold router deltas; peft and merged keep them "
                         "(allow_drop_router writes the archive without them)");
  }

  // Teacher and judge.
  if (c.teacher.url.empty()) {
    throw ConfigError("teacher.url: empty, expected the teacher's OpenAI-compatible base URL (--teacher-url)");
  }
  check_endpoint("teacher", c.teacher, r);
  if (!c.judge.url.empty()) check_endpoint("judge", c.judge, r);

  // Disk space where the run directory lives.
  fs::create_directories(ctx.run_dir);
  const double needed = estimated_bytes(c, m, student);
  const double available = static_cast<double>(fs::space(ctx.run_dir).available);
  r.counts["disk_needed_bytes"] = needed;
  r.counts["disk_available_bytes"] = available;
  if (available < needed) {
    throw IoError(ctx.run_dir.string() + ": " + gib(available) + " free, the run needs about " + gib(needed) +
                  " (data, checkpoints, exports at scale " + c.scale + "); free space or choose another --runs-dir");
  }

  char rate[32];
  std::snprintf(rate, sizeof rate, "%.3g", lr);
  r.summary = "check: persona " + persona.name + ", student " + m.model_type +
              (m.is_moe() ? " (MoE, " + std::to_string(m.num_experts) + " experts)" : std::string(" (dense)")) +
              ", lr " + rate + (c.training.learning_rate ? "" : " (Tinker default)") + ", teacher " + c.teacher.model +
              " reachable, disk " + gib(available) + " free of ~" + gib(needed) + " needed";
  return r;
}

}  // namespace character::pipeline
