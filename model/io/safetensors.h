// Reading and writing .safetensors files without torch. A file is memory-mapped
// read-only and its JSON header is validated completely before any tensor byte is
// touched; views point into the mapping. A model directory is either one
// model.safetensors or an index JSON plus shards (SafetensorsSet). The writer
// produces the byte layout of the reference `safetensors` writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace character::model {

enum class DType { F32, F16, BF16, I64, I32, U8, BOOL };

// "F32", "F16", "BF16", "I64", "I32", "U8", "BOOL": as spelled in the safetensors header.
std::string_view dtype_name(DType dtype);
// Bytes per element.
std::size_t dtype_size(DType dtype);

// Bytes of one tensor inside a mapped file (valid while its SafetensorsFile lives).
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // [] is a scalar
  const std::byte* data;       // little-endian, row-major
  std::size_t nbytes;
  int64_t numel() const;
};

// One memory-mapped .safetensors file (read-only, MAP_PRIVATE/PROT_READ).
class SafetensorsFile {
 public:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::size_t begin;  // offsets into the data region (after the header)
    std::size_t end;
  };

  // Validates the header; FormatError (bad content) or IoError (cannot open/map).
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  // CheckpointError naming the file and the tensor when it is missing.
  TensorView view(const std::string& name) const;
  // The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  SafetensorsFile() = default;

  std::filesystem::path path_;
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  const std::byte* data_region_ = nullptr;  // first byte after the header
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a model directory.
class SafetensorsSet {
 public:
  // model.safetensors, or model.safetensors.index.json + its shards (every shard listed
  // must exist: CheckpointError "… missing shard model-00002-of-00003.safetensors listed
  // in …"); index weight_map entries must be in the shard they name.
  static SafetensorsSet open_dir(const std::filesystem::path& model_dir);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  // CheckpointError naming the directory and the tensor when it is missing.
  TensorView view(const std::string& name) const;
  std::filesystem::path file_of(const std::string& name) const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::filesystem::path dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::size_t> file_index_;  // tensor name → index into files_
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  std::size_t nbytes;
};

// Atomic (temp + fsync + rename); header JSON padded with spaces to a multiple of 8
// bytes as the reference writer does; tensors in name order. ConfigError when a
// tensor's nbytes does not match dtype × shape or a name repeats.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace character::model
