// What the adapter directory and the exports share: outputs are built in a
// hidden sibling of their destination and renamed into place, so a reader (or
// a killed export) never sees half an adapter or half a model; safetensors
// writing from a name → tensor map; the small ustar writer the tinker archive
// needs; and the check of an adapter against its base model.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace character::model {
struct ModelConfig;
}

namespace character::lora {

struct AdapterFile;

// `path` absolute and normalised, without a trailing separator.
std::filesystem::path output_path(const std::filesystem::path& path);

// DIR/.NAME.SUFFIX-PID beside `target` (same filesystem, so rename is atomic).
std::filesystem::path hidden_sibling(const std::filesystem::path& target, const char* suffix);

// A fresh, empty hidden sibling directory of `target` for building it.
std::filesystem::path make_staging_dir(const std::filesystem::path& target);

// Renames `from` to `to`, replacing what is at `to` (file or directory; a
// directory is first moved aside, as POSIX rename cannot replace a non-empty one).
void replace_path(const std::filesystem::path& from, const std::filesystem::path& to);

// Writes `tensors` (any device; converted to `dtype` on CPU) to a .safetensors file.
void write_tensors(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors,
                   at::ScalarType dtype);

// One regular file of a tar archive.
struct TarEntry {
  std::string name;                   // a plain file name (no directories)
  std::filesystem::path source;       // file to copy in; empty → `content`
  std::string content;
};

// Writes a POSIX ustar archive of regular files (mode 0644) to `path`,
// atomically. Hand-written: Debian ships libarchive13 here but not its headers
// (libarchive-dev), and three flat files need only 512-byte headers and
// padding (POSIX.1-1988 ustar, readable by Python's tarfile and GNU tar).
void write_tar(const std::filesystem::path& path, const std::vector<TarEntry>& entries);

// The base model's config.json, after checking that the adapter fits it: the
// same model_type, and every adapter tensor named and shaped as attaching
// adapters with the adapter's config to that architecture produces (checked on
// torch's meta device, so no weights are read). CheckpointError naming the
// adapter file, the tensor, what was found and what was expected.
model::ModelConfig check_adapter_fits(const AdapterFile& adapter, const std::filesystem::path& base_model);

// lora_alpha as JSON: an integer when it is one (PEFT and Tinker write 32, not 32.0).
nlohmann::json alpha_json(double alpha);

}  // namespace character::lora
