#include "lora/export_files.h"

#include <torch/torch.h>

#include <unistd.h>

#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <cstring>
#include <ctime>
#include <fstream>
#include <system_error>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/adapter_file.h"
#include "model/arch/architectures.h"
#include "model/io/config.h"
#include "model/arch/tensor_io.h"
#include "model/io/safetensors.h"

namespace character::lora {

namespace fs = std::filesystem;

fs::path output_path(const fs::path& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  return p;
}

fs::path hidden_sibling(const fs::path& target, const char* suffix) {
  // Appended piecewise: GCC 12 warns falsely on `"." + std::string`.
  std::string name = ".";
  name += target.filename().string();
  name += suffix;
  name += std::to_string(::getpid());
  return target.parent_path() / name;
}

fs::path make_staging_dir(const fs::path& target) {
  const fs::path staging = hidden_sibling(target, ".tmp-");
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) throw IoError(staging.string() + ": cannot create directory: " + ec.message());
  return staging;
}

void replace_path(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::path old;
  if (fs::is_directory(to)) {
    old = hidden_sibling(to, ".old-");
    fs::remove_all(old, ec);
    fs::rename(to, old, ec);
    if (ec) throw IoError(to.string() + ": cannot move the existing directory aside: " + ec.message());
  }
  fs::rename(from, to, ec);
  if (ec) throw IoError(to.string() + ": cannot rename " + from.string() + " into place: " + ec.message());
  if (!old.empty()) fs::remove_all(old, ec);
}

void write_tensors(const fs::path& path, const std::map<std::string, at::Tensor>& tensors, at::ScalarType dtype) {
  model::TensorsToWrite records;
  for (const auto& [name, tensor] : tensors) records.add(name, tensor.detach().to(torch::kCPU, dtype));
  model::write_safetensors(path, records.records(), {{"format", "pt"}});
}

model::ModelConfig check_adapter_fits(const AdapterFile& adapter, const fs::path& base_model) {
  const model::ModelConfig config = model::load_config(base_model);
  const fs::path source = adapter.dir / kAdapterConfigFile;
  if (config.model_type != adapter.model_type) {
    throw CheckpointError(source.string() + ": model_type " + adapter.model_type + ", but the base model " +
                          base_model.string() + " is " + config.model_type);
  }
  // The architecture without weights (meta tensors): attach adapters for the
  // adapter's config and let Adapters::load compare every name and shape.
  const auto skeleton = model::create_model(config, torch::TensorOptions().dtype(torch::kFloat).device(torch::kMeta));
  try {
    attach_adapters(skeleton, adapter.config)->load(adapter.tensors, (adapter.dir / kAdapterWeightsFile).string());
  } catch (const ConfigError& e) {
    throw CheckpointError(source.string() + ": " + e.what());
  }
  return config;
}

nlohmann::json alpha_json(double alpha) {
  if (alpha == std::floor(alpha) && std::abs(alpha) < 1e15) return static_cast<int64_t>(alpha);
  return alpha;
}

namespace {

constexpr std::size_t kBlock = 512;

// `value` as `width - 1` octal digits and a NUL, as ustar numeric fields are;
// sizes past the 11-digit limit (8 GiB) use the GNU base-256 form, which
// Python's tarfile and GNU tar read.
void put_number(char* field, std::size_t width, uint64_t value) {
  if (value >= (uint64_t{1} << (3 * (width - 1)))) {
    std::memset(field, 0, width);
    field[0] = static_cast<char>(0x80);
    for (std::size_t i = width - 1; i > 0 && value; --i, value >>= 8) field[i] = static_cast<char>(value & 0xff);
    return;
  }
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(value));
}

std::array<char, kBlock> tar_header(const std::string& name, uint64_t size, uint64_t mtime) {
  std::array<char, kBlock> h{};
  if (name.empty() || name.size() > 99 || name.find('/') != std::string::npos) {
    throw ConfigError("tar entry name '" + name + "': expected a plain file name of 1-99 characters");
  }
  std::memcpy(h.data(), name.data(), name.size());  // name[100]
  put_number(h.data() + 100, 8, 0644);               // mode
  put_number(h.data() + 108, 8, 0);                  // uid
  put_number(h.data() + 116, 8, 0);                  // gid
  put_number(h.data() + 124, 12, size);              // size
  put_number(h.data() + 136, 12, mtime);             // mtime
  std::memset(h.data() + 148, ' ', 8);               // chksum: spaces while summing
  h[156] = '0';                                      // typeflag: regular file
  std::memcpy(h.data() + 257, "ustar", 6);           // magic "ustar\0"
  std::memcpy(h.data() + 263, "00", 2);              // version
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  std::snprintf(h.data() + 148, 7, "%06o", sum);  // six digits, NUL, then the space left in place
  return h;
}

}  // namespace

void write_tar(const fs::path& path, const std::vector<TarEntry>& entries) {
  const uint64_t mtime = static_cast<uint64_t>(std::time(nullptr));
  write_file_atomic_streamed(path, [&](const ByteSink& sink) {
    static const std::array<char, kBlock> kZeros{};
    for (const auto& entry : entries) {
      uint64_t size = entry.content.size();
      if (!entry.source.empty()) {
        std::error_code ec;
        size = fs::file_size(entry.source, ec);
        if (ec) throw IoError(entry.source.string() + ": cannot read its size: " + ec.message());
      }
      const auto header = tar_header(entry.name, size, mtime);
      sink(header.data(), header.size());
      if (entry.source.empty()) {
        sink(entry.content.data(), entry.content.size());
      } else {
        std::ifstream in(entry.source, std::ios::binary);
        std::vector<char> buffer(1 << 20);
        uint64_t copied = 0;
        while (in && copied < size) {
          in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
          const auto n = static_cast<std::size_t>(in.gcount());
          sink(buffer.data(), n);
          copied += n;
        }
        if (copied != size) throw IoError(entry.source.string() + ": short read while archiving into " + path.string());
      }
      if (size % kBlock) sink(kZeros.data(), kBlock - size % kBlock);
    }
    sink(kZeros.data(), kBlock);  // end of archive: two zero blocks
    sink(kZeros.data(), kBlock);
  });
}

}  // namespace character::lora
