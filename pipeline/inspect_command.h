// `character inspect MODEL_DIR [--json]`: what a model directory holds before any
// training touches it — architecture, parameter counts (total and active per token,
// from config.json and cross-checked against the safetensors headers), attention and
// expert shapes, weight dtypes, tokenizer and chat family, and MoE warnings.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}

namespace character::pipeline {

// Everything `inspect` reports, as one JSON object (what --json prints).
// Throws CheckpointError/ConfigError/FormatError when config.json or the weights
// cannot be read; tokenizer and chat-template problems are reported in the object.
nlohmann::json inspect_model(const std::filesystem::path& model_dir);

// The human-readable form of inspect_model()'s object.
std::string format_inspect(const nlohmann::json& report);

void add_inspect_command(CLI::App& app);

}  // namespace character::pipeline
