// The weights of a Hugging Face model directory: one model.safetensors, or the
// shards listed by model.safetensors.index.json (the layout transformers'
// save_pretrained writes past max_shard_size). Every tensor name maps to one file.
#include "model/io/safetensors.h"

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::model {
namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// weight_map of the index: tensor name → shard file name.
std::map<std::string, std::string> read_weight_map(const std::filesystem::path& index_path) {
  const std::string where = index_path.string();
  nlohmann::json index = read_json_file(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw FormatError(where + ": expected an object with a \"weight_map\" object");
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string())
      throw FormatError(where + ": weight_map['" + name + "'] is " + describe_json(shard) + ", expected a file name");
    const auto& file = shard.get_ref<const std::string&>();
    // Shards live beside the index; a path would let an index point anywhere.
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      throw FormatError(where + ": weight_map['" + name + "'] is '" + file + "', expected a file name in the same directory");
    weight_map[name] = file;
  }
  return weight_map;
}

}  // namespace

SafetensorsSet SafetensorsSet::open_dir(const std::filesystem::path& model_dir) {
  SafetensorsSet set;
  set.dir_ = model_dir;
  const auto index_path = model_dir / kIndexFile;
  const auto single_path = model_dir / kSingleFile;

  auto add_file = [&](std::shared_ptr<SafetensorsFile> file) {
    const std::size_t index = set.files_.size();
    for (const auto& name : file->names()) {
      auto [it, inserted] = set.file_index_.emplace(name, index);
      if (!inserted)
        throw CheckpointError(model_dir.string() + ": tensor '" + name + "' is in both " +
                              set.files_[it->second]->path().filename().string() + " and " +
                              file->path().filename().string() + ", expected it in one file");
    }
    set.files_.push_back(std::move(file));
  };

  if (std::filesystem::exists(index_path)) {
    const auto weight_map = read_weight_map(index_path);
    std::map<std::string, std::size_t> shard_index;  // shard file name → files_ index
    for (const auto& [name, shard] : weight_map) {
      if (shard_index.count(shard)) continue;
      const auto shard_path = model_dir / shard;
      std::error_code ec;  // a name the file system refuses (too long, ...) is no shard either
      if (!std::filesystem::exists(shard_path, ec))
        throw CheckpointError(model_dir.string() + ": missing shard " + clip_utf8(shard, 80) +
                              " listed in " + kIndexFile + " (for tensor '" + name + "')" +
                              (ec ? " (" + ec.message() + ")" : ""));
      shard_index[shard] = set.files_.size();
      add_file(SafetensorsFile::open(shard_path));
    }
    for (const auto& [name, shard] : weight_map) {
      const auto& file = *set.files_[shard_index.at(shard)];
      if (!file.contains(name))
        throw CheckpointError(index_path.string() + ": weight_map puts tensor '" + name + "' in " + shard +
                              ", but " + shard + " has no such tensor");
    }
  } else if (std::filesystem::exists(single_path)) {
    add_file(SafetensorsFile::open(single_path));
  } else {
    throw CheckpointError(model_dir.string() + ": no " + kSingleFile + " or " + kIndexFile +
                          ", expected the weights of a Hugging Face model directory");
  }
  return set;
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  out.reserve(file_index_.size());
  for (const auto& [name, index] : file_index_) out.push_back(name);
  return out;
}

bool SafetensorsSet::contains(const std::string& name) const { return file_index_.count(name) > 0; }

TensorView SafetensorsSet::view(const std::string& name) const {
  auto it = file_index_.find(name);
  if (it == file_index_.end())
    throw CheckpointError(dir_.string() + ": no tensor named '" + name + "' in the model's safetensors files");
  return files_[it->second]->view(name);
}

std::filesystem::path SafetensorsSet::file_of(const std::string& name) const {
  auto it = file_index_.find(name);
  if (it == file_index_.end())
    throw CheckpointError(dir_.string() + ": no tensor named '" + name + "' in the model's safetensors files");
  return files_[it->second]->path();
}

}  // namespace character::model
