// The lab's sizes and the config.json of its two models: a Qwen3-MoE student and a
// dense Qwen3 teacher, spelled as transformers' config classes spell them, with the
// vocabulary and special tokens of the lab tokenizer. Internal to lab/.
#pragma once

#include <nlohmann/json.hpp>

#include "lab/lab.h"

namespace character::model {
class Tokenizer;
}

namespace character::lab {

enum class LabModel { kStudent, kTeacher };

const char* to_string(LabModel which);  // "student" | "teacher"

// The size's fields as JSON (lab.json "size_config", `lab build --json`).
nlohmann::json to_json(const LabSize& size);

// config.json for the student (qwen3_moe) or the teacher (qwen3): vocab_size from the
// tokenizer, eos <|im_end|>, pad <|endoftext|>. ConfigError naming the tokenizer's
// missing special token.
nlohmann::json lab_model_config(const LabSize& size, LabModel which, const model::Tokenizer& tokenizer);

constexpr double kLabInitializerRange = 0.02;  // transformers' default initializer_range

}  // namespace character::lab
